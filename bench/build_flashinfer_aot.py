#!/usr/bin/env python3
"""Prebuilds the FlashInfer modules that bench/baselines.py uses, for Hopper (sm_90a), so that the
GPU machine loads them instead of JIT-compiling (which costs minutes of device time there).

    PYTHONPATH=SITE python3 bench/build_flashinfer_aot.py [--out .whl/flashinfer-aot] [--head-dims 128]

SITE holds the wheels of .whl/ (flashinfer-python, apache-tvm-ffi) installed with
`pip install --no-deps --target SITE .whl/*.whl`; torch, ninja and nvcc (the same CUDA major.minor
as the GPU machine's, 13.0 here) must be there too. No GPU is needed. The output folder holds
NAME/NAME.so per module plus manifest.json (versions, nvcc, arch); bench/peers.py points FlashInfer's
AOT directory at it when the manifest's flashinfer and tvm-ffi versions match the imported ones,
and falls back to the JIT for any module that is not there.

Modules (bf16 q/kv/o, int32 indices, no RoPE, no sliding window, no soft cap), for each head dim:
  batch_decode ...          BatchDecodeWithPagedKVCacheWrapper, CUDA-core decode (use_tensor_cores off)
  batch_prefill ... (fa2)   BatchDecodeWithPagedKVCacheWrapper with use_tensor_cores on
  batch_prefill ... _sm90   MultiLevelCascadeAttentionWrapper's levels (backend fa3 on Hopper)
  cascade                   merge_state_in_place (the cascade's merge of levels)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ARCH = "9.0a"


def specs(head_dims):
    import torch
    from flashinfer.jit.attention.modules import gen_batch_decode_module, gen_batch_prefill_module
    from flashinfer.jit.cascade import gen_cascade_module
    bf16 = torch.bfloat16
    out = [gen_cascade_module()]
    for d in head_dims:
        # Argument order as in flashinfer.decode / flashinfer.prefill plan(): dtypes q, kv, o, idx,
        # head_dim_qk, head_dim_vo, pos_encoding_mode (0 = NONE), use_sliding_window, use_logits_soft_cap
        # (+ use_fp16_qk_reduction for prefill).
        out.append(gen_batch_decode_module(bf16, bf16, bf16, torch.int32, d, d, 0, False, False))
        out.append(gen_batch_prefill_module("fa3", bf16, bf16, bf16, torch.int32, d, d, 0, False, False, False))
        out.append(gen_batch_prefill_module("fa2", bf16, bf16, bf16, torch.int32, d, d, 0, False, False, False))
    return out


def nvcc_version() -> str:
    from flashinfer.jit.cpp_ext import get_cuda_path
    nvcc = os.path.join(get_cuda_path(), "bin", "nvcc")
    text = subprocess.run([nvcc, "--version"], capture_output=True, text=True, check=True).stdout
    lines = [line for line in text.splitlines() if "release" in line]
    return (lines or text.strip().splitlines()[-1:])[0].strip()


def main(argv=None) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--out", default=os.path.join(root, ".whl", "flashinfer-aot"))
    parser.add_argument("--head-dims", default="128", help="comma-separated head dims (default 128)")
    parser.add_argument("--workspace", default=None,
                        help="FlashInfer JIT workspace (FLASHINFER_WORKSPACE_BASE); default: a temporary folder")
    args = parser.parse_args(argv)
    head_dims = [int(d) for d in args.head_dims.split(",") if d.strip()]

    os.environ["FLASHINFER_CUDA_ARCH_LIST"] = ARCH
    os.environ.setdefault("FLASHINFER_NO_DOWNLOAD", "1")
    workspace = args.workspace or tempfile.mkdtemp(prefix="flashinfer-aot-")
    os.environ["FLASHINFER_WORKSPACE_BASE"] = workspace
    import flashinfer
    import tvm_ffi

    os.makedirs(args.out, exist_ok=True)
    manifest = {
        "flashinfer": flashinfer.__version__,
        "tvm_ffi": tvm_ffi.__version__,
        "nvcc": nvcc_version(),
        "arch": ARCH,
        "built": datetime.date.today().isoformat(),
        "modules": [],
    }
    print(f"flashinfer {manifest['flashinfer']}, tvm-ffi {manifest['tvm_ffi']}, {manifest['nvcc']}, sm_{ARCH}, "
          f"workspace {workspace}", flush=True)
    for spec in specs(head_dims):
        start = time.time()
        spec.build(verbose=False)
        target = os.path.join(args.out, spec.name, spec.name + ".so")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(spec.jit_library_path, target)
        manifest["modules"].append(spec.name)
        print(f"{spec.name}: {time.time() - start:.0f} s, {os.path.getsize(target) / 2**20:.1f} MiB", flush=True)
    with open(os.path.join(args.out, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=1)
        handle.write("\n")
    print(f"wrote {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
