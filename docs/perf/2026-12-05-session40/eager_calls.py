#!/usr/bin/env python3
"""Eager (not graph-replayed) attention calls of the decode loop's layer shapes, timed with CUDA
events, L2 flushed before each (session 40, experiment 74: the CLI times graph replays, and its
eager warm-ups are where the launch order of the two states kernels showed in the traces).

    PYTHONPATH=SITE:bench python3 eager_calls.py LABEL
"""
import statistics
import sys

import torch

sys.path.insert(0, "bench")
import decode_loop as dl  # noqa: E402

CASES = {"b64_p4k_s20": (64, 4096, 20), "b256_p2k_s20": (256, 2048, 20), "gqa_b64_p8k_s512": (64, 8192, 512)}


def main():
    label = sys.argv[1]
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    for name, (batch, prompt, own) in CASES.items():
        inputs = dl.Inputs(torch, 1, batch)
        loop = dl.Chunktree(torch, 1, batch, prompt, False, own + 8, inputs)
        for i in range(own):
            slots = loop.cache.append_batch(loop.seqs, [50_000 + i] * batch)
            loop.cache.write_kv(0, slots, inputs.k[0], inputs.v[0])
        plan = loop.chunktree.make_plan(loop.cache, loop.seqs, num_q_heads=dl.Q_HEADS)
        times = []
        for r in range(45):
            flush.zero_()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            loop.chunktree.attend(loop.cache, plan, inputs.q[0], layer=0, out=inputs.out[0])
            end.record()
            torch.cuda.synchronize()
            if r >= 5:
                times.append(start.elapsed_time(end) * 1000)
        print(f"{label} {name}: eager call median {statistics.median(times):.1f} us (p10 {sorted(times)[len(times) // 10]:.1f}, "
              f"p90 {sorted(times)[len(times) * 9 // 10]:.1f})", flush=True)
        del loop, inputs
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
