"""The peers' calls, and chunktree's engine-facing one, prepared for timing: each case's random data
(each unique segment stored once) and its float32 reference; the same KV laid out as each
implementation reads it (per-sequence tensors for torch SDPA, per-sequence pages for FlashInfer
decode, shared pages for FlashInfer's cascade, a flat page table over those pages for
chunktree.PagedAttention); FlashInfer imported once, with its prebuilt modules. torch, flashinfer and
chunktree are imported lazily (bench/test_rows.py runs the layouts on the CPU).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from cases import BF16_BYTES, Case, CaseError, case_metrics, short_error

DEVICE = "cuda"  # the tests set "cpu" to check data layouts without a GPU
CHECK_RTOL = 2e-2
CHECK_ATOL = 2e-2


def prepare_environment() -> None:
    """Environment for an offline machine: FlashInfer never downloads; nvcc is found for its JIT."""
    os.environ.setdefault("FLASHINFER_NO_DOWNLOAD", "1")        # no cubin/artifact downloads
    os.environ.setdefault("FLASHINFER_CUBIN_CHECKSUM_DISABLED", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not os.environ.get("CUDA_HOME") and not os.environ.get("CUDA_PATH") and shutil.which("nvcc") is None:
        for candidate in ("/usr/local/cuda", "/usr/local/cuda-13.0"):
            if os.path.exists(os.path.join(candidate, "bin", "nvcc")):
                os.environ["CUDA_HOME"] = candidate
                break
    if not os.environ.get("MAX_JOBS"):
        os.environ["MAX_JOBS"] = str(os.cpu_count() or 4)


@dataclass
class CaseData:
    """Random bf16 data of one case, each unique segment stored once.

    levels[i] = (Level, K, V) with K, V of shape [segments, tokens, kv_heads, d];
    suffix_k/suffix_v: [batch, suffix, kv_heads, d] (None when suffix is 0); q: [batch · queries, q_heads, d].
    Sequence s reads segment s // (batch / segments) of each level, then its own suffix."""
    case: Case
    levels: list
    suffix_k: object
    suffix_v: object
    q: object
    scale: float


def make_data(case: Case, seed: int):
    import torch
    gen = torch.Generator(device=DEVICE)
    gen.manual_seed(seed)
    opts = dict(device=DEVICE, dtype=torch.bfloat16, generator=gen)
    levels = []
    for level in case.active_levels:
        shape = (level.segments, level.tokens, case.kv_heads, case.head_dim)
        levels.append((level, torch.randn(shape, **opts), torch.randn(shape, **opts)))
    suffix_k = suffix_v = None
    if case.suffix > 0:
        shape = (case.batch, case.suffix, case.kv_heads, case.head_dim)
        suffix_k, suffix_v = torch.randn(shape, **opts), torch.randn(shape, **opts)
    q = torch.randn((case.batch * case.queries, case.q_heads, case.head_dim), **opts)
    return CaseData(case, levels, suffix_k, suffix_v, q, 1.0 / math.sqrt(case.head_dim))


def sequence_parts(data: CaseData):
    """(segments, K, V, token offset) for every level and the suffix, in the order a sequence reads them."""
    parts, offset = [], 0
    for level, k, v in data.levels:
        parts.append((level.segments, k, v, offset))
        offset += level.tokens
    if data.suffix_k is not None:
        parts.append((data.case.batch, data.suffix_k, data.suffix_v, offset))
    return parts


def reference_outputs(data: CaseData, seqs: Sequence[int]) -> Dict[int, object]:
    """float32 attention of the chosen sequences ([queries, q_heads, d] each), from the unique
    segments directly; query token i sees the sequence up to itself."""
    import torch
    case = data.case
    group = case.q_heads // case.kv_heads
    n = case.queries
    out = {}
    for s in seqs:
        ks, vs = [], []
        for segments, k, v, _ in sequence_parts(data):
            j = s // (case.batch // segments)
            ks.append(k[j].float())
            vs.append(v[j].float())
        k = torch.cat(ks).repeat_interleave(group, dim=1)  # [len, q_heads, d]
        v = torch.cat(vs).repeat_interleave(group, dim=1)
        length = k.shape[0]
        rows = []
        for i in range(n):
            seen = length - n + i + 1
            scores = torch.einsum("hd,lhd->hl", data.q[s * n + i].float(), k[:seen]) * data.scale
            rows.append(torch.einsum("hl,lhd->hd", torch.softmax(scores, dim=-1), v[:seen]))
        out[s] = torch.stack(rows)
    return out


def check_output(out, reference: Dict[int, object], what: str) -> None:
    """Asserts that out ([batch · queries, q_heads, d]) matches the float32 reference on its sequences."""
    import torch
    for s, ref in reference.items():
        n = ref.shape[0]
        got = out[s * n:(s + 1) * n].float()
        if not torch.isfinite(got).all():
            raise AssertionError(f"{what}: non-finite output for sequence {s}")
        err = (got - ref).abs()
        bound = CHECK_ATOL + CHECK_RTOL * ref.abs()
        if not bool((err <= bound).all()):
            raise AssertionError(f"{what}: sequence {s} differs from the float32 reference "
                                 f"(max |diff| {err.max().item():.4g}, max |ref| {ref.abs().max().item():.4g})")


def check_sequences(batch: int) -> List[int]:
    return sorted({0, batch // 2, batch - 1})


def write_tokens(dst, src, offset: int) -> None:
    """Copies tokens into pages. dst: [..., pages, page, heads, d]; src: [..., tokens, heads, d]
    (leading dims broadcast); src token t lands at position offset + t of dst's token stream."""
    page = dst.shape[-3]
    total = src.shape[-3]
    t = 0
    while t < total:
        position = offset + t
        p, slot = divmod(position, page)
        if slot == 0 and total - t >= page:
            n = (total - t) // page
            dst[..., p:p + n, :, :, :].copy_(src[..., t:t + n * page, :, :].unflatten(-3, (n, page)))
            t += n * page
        else:
            m = min(page - slot, total - t)
            dst[..., p, slot:slot + m, :, :].copy_(src[..., t:t + m, :, :])
            t += m


def free_bytes() -> int:
    import torch
    return torch.cuda.mem_get_info()[0]


def require_memory(needed: float, what: str) -> None:
    if DEVICE != "cuda":
        return
    available = free_bytes()
    if needed > 0.92 * available:
        raise MemoryError(f"skipped: {what} needs {needed / 2**30:.1f} GiB, {available / 2**30:.1f} GiB free")


@dataclass
class Prepared:
    """A ready-to-time call: fn() launches one decode step and returns the output [batch, q_heads, d]."""
    fn: Callable[[], object]
    notes: List[str] = field(default_factory=list)
    keep: list = field(default_factory=list)  # tensors and wrappers that must outlive the timing


def prepare_sdpa(data: CaseData) -> Prepared:
    import torch
    import torch.nn.functional as F
    case = data.case
    B, Hkv, D = case.batch, case.kv_heads, case.head_dim
    L = case_metrics(case).sequence_tokens
    require_memory(2.0 * B * Hkv * L * D * BF16_BYTES, "per-sequence KV for sdpa")
    k = torch.empty((B, Hkv, L, D), device=DEVICE, dtype=torch.bfloat16)
    v = torch.empty_like(k)
    for segments, sk, sv, offset in sequence_parts(data):
        tokens = sk.shape[1]
        dst_k = k.view(segments, B // segments, Hkv, L, D)[:, :, :, offset:offset + tokens]
        dst_v = v.view(segments, B // segments, Hkv, L, D)[:, :, :, offset:offset + tokens]
        dst_k.copy_(sk.permute(0, 2, 1, 3)[:, None])
        dst_v.copy_(sv.permute(0, 2, 1, 3)[:, None])
    n = case.queries
    q = data.q.view(B, n, case.q_heads, D).transpose(1, 2)  # [B, Hq, n, D]
    notes = ["KV materialised per sequence outside timing"]
    gqa = case.q_heads != case.kv_heads
    kwargs = dict(scale=data.scale)
    if n > 1:
        # Bottom-right causal: query i sees positions up to L - n + i (is_causal aligns top-left).
        positions = torch.arange(L, device=DEVICE)
        kwargs["attn_mask"] = positions[None, :] <= (L - n + torch.arange(n, device=DEVICE))[:, None]
        notes.append(f"{n} query tokens, causal mask")
    if gqa:
        try:
            kwargs["enable_gqa"] = True
            F.scaled_dot_product_attention(q[:1], k[:1], v[:1], **kwargs)
            notes.append("GQA via enable_gqa=True")
        except (TypeError, RuntimeError) as error:
            # Older torch: repeat the KV heads (outside timing).
            kwargs.pop("enable_gqa", None)
            group = case.q_heads // case.kv_heads
            require_memory(2.0 * B * case.q_heads * L * D * BF16_BYTES, "repeated KV heads for sdpa")
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
            notes.append(f"GQA via repeated KV heads (enable_gqa failed: {short_error(error, 80)})")
    else:
        notes.append("MHA")
    try:
        from torch.nn.attention import SDPBackend
        choice = torch._fused_sdp_choice(q, k, v, kwargs.get("attn_mask"), 0.0, False, scale=data.scale,
                                         enable_gqa=bool(kwargs.get("enable_gqa", False)))
        names = {member.value: name for name, member in SDPBackend.__members__.items()}
        notes.append(f"backend {names.get(int(choice), choice)}")
    except Exception:  # noqa: BLE001 - private API; the note is optional
        pass

    def fn():
        return F.scaled_dot_product_attention(q, k, v, **kwargs).transpose(1, 2).reshape(B * n, case.q_heads, D)

    return Prepared(fn, notes, [k, v, q])


_FLASHINFER = None
_FLASHINFER_ERROR: Optional[str] = None
AOT_OPTION = "auto"  # set from --flashinfer-aot
DEFAULT_AOT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".whl", "flashinfer-aot")


def choose_aot_dir(option: str, flashinfer_version: str, tvm_ffi_version: str, capability) -> Tuple[Optional[str], str]:
    """Which prebuilt-module folder (bench/build_flashinfer_aot.py) to use: (folder or None, why).
    option: 'auto' (DEFAULT_AOT_DIR if present), 'none', or a folder. The folder's manifest must name
    the imported flashinfer and tvm-ffi versions, and the GPU must be sm_90 (the modules are sm_90a)."""
    if option == "none":
        return None, "disabled by --flashinfer-aot none"
    folder = DEFAULT_AOT_DIR if option == "auto" else option
    manifest_path = os.path.join(folder, "manifest.json")
    if not os.path.exists(manifest_path):
        return None, f"no {manifest_path}"
    try:
        with open(manifest_path) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        return None, f"unreadable {manifest_path}: {short_error(error)}"
    if manifest.get("flashinfer") != flashinfer_version or manifest.get("tvm_ffi") != tvm_ffi_version:
        return None, (f"{folder} was built for flashinfer {manifest.get('flashinfer')} / tvm-ffi {manifest.get('tvm_ffi')}, "
                      f"imported {flashinfer_version} / {tvm_ffi_version}")
    arch = str(manifest.get("arch", ""))
    if capability is not None and tuple(capability) != (9, 0):
        return None, f"{folder} holds sm_{arch} modules, the GPU is sm_{capability[0]}{capability[1]}"
    return folder, f"prebuilt with {manifest.get('nvcc', '?')} for sm_{arch} on {manifest.get('built', '?')}"


def flashinfer_module():
    """Imports flashinfer once; raises RuntimeError with the import error afterwards."""
    global _FLASHINFER, _FLASHINFER_ERROR
    if _FLASHINFER is None and _FLASHINFER_ERROR is None:
        try:
            import flashinfer  # noqa: PLC0415
            _FLASHINFER = flashinfer
            print(f"flashinfer {flashinfer.__version__} from {os.path.dirname(flashinfer.__file__)}", flush=True)
            try:
                import pathlib  # noqa: PLC0415
                import torch  # noqa: PLC0415
                import tvm_ffi  # noqa: PLC0415
                from flashinfer.jit import env as jit_env  # noqa: PLC0415
                capability = torch.cuda.get_device_capability() if torch.cuda.is_available() else None
                folder, why = choose_aot_dir(AOT_OPTION, flashinfer.__version__, tvm_ffi.__version__, capability)
                if folder is not None:
                    jit_env.FLASHINFER_AOT_DIR = pathlib.Path(folder)
                elif AOT_OPTION == "none":
                    jit_env.FLASHINFER_AOT_DIR = pathlib.Path("/nonexistent/flashinfer-aot")
                aot = jit_env.FLASHINFER_AOT_DIR
                names = sorted(p.name for p in aot.iterdir() if p.is_dir()) if aot.is_dir() else []
                print(f"flashinfer prebuilt modules: {aot} ({why}): {len(names)}"
                      + "".join(f"\n  {n}" for n in names), flush=True)
                print(f"flashinfer JIT cache (modules not prebuilt are compiled here): {jit_env.FLASHINFER_JIT_DIR}",
                      flush=True)
            except Exception as error:  # noqa: BLE001 - the JIT still works
                print(f"flashinfer: prebuilt modules not used ({short_error(error)})", flush=True)
        except Exception as error:  # noqa: BLE001 - any import failure becomes the rows' note
            _FLASHINFER_ERROR = f"flashinfer import failed: {short_error(error)}"
            print(_FLASHINFER_ERROR, flush=True)
            traceback.print_exc()
    if _FLASHINFER is None:
        raise RuntimeError(_FLASHINFER_ERROR)
    return _FLASHINFER


def flashinfer_imported() -> bool:
    """Whether flashinfer_module() has imported flashinfer."""
    return _FLASHINFER is not None


_WORKSPACE = None


def flashinfer_workspace():
    """One zeroed float workspace (512 MiB) shared by the FlashInfer wrappers."""
    global _WORKSPACE
    import torch
    if _WORKSPACE is None:
        _WORKSPACE = torch.zeros(512 * 1024 * 1024, dtype=torch.uint8, device=DEVICE)
    return _WORKSPACE


_WARMED: Dict[str, bool] = {}


def warm_and_report(impl: str, prepared: Prepared, plan_seconds: float) -> None:
    """First run (builds or loads the JIT modules on first use), timed on the wall clock."""
    import torch
    start = time.perf_counter()
    prepared.fn()
    torch.cuda.synchronize()
    seconds = plan_seconds + time.perf_counter() - start
    label = "JIT warm-up (plan + first run)" if not _WARMED.get(impl) else "plan + first run"
    _WARMED[impl] = True
    print(f"  {impl}: {label} took {seconds:.2f} s", flush=True)
    prepared.notes.append(f"plan+first run {seconds:.2f} s")


def pages_of(tokens: int, page: int) -> int:
    return (tokens + page - 1) // page


def build_decode_pages(data: CaseData, page: int):
    """Per-sequence pages (no sharing): every sequence's whole KV in its own run of pages.
    Returns (cache [pages, 2, page, kv_heads, d], kv_indptr, kv_indices, last_page_len), int32 indices."""
    import torch
    case = data.case
    B, Hkv, D = case.batch, case.kv_heads, case.head_dim
    L = case_metrics(case).sequence_tokens
    P = pages_of(L, page)
    require_memory(float(B) * P * 2 * page * Hkv * D * BF16_BYTES, "per-sequence paged KV for flashinfer-decode")
    cache = torch.zeros((B * P, 2, page, Hkv, D), device=DEVICE, dtype=torch.bfloat16)
    for segments, sk, sv, offset in sequence_parts(data):
        view = cache.view(segments, B // segments, P, 2, page, Hkv, D)
        write_tokens(view[:, :, :, 0], sk[:, None], offset)
        write_tokens(view[:, :, :, 1], sv[:, None], offset)
    indptr = (torch.arange(B + 1, dtype=torch.int32) * P).to(DEVICE)
    indices = torch.arange(B * P, dtype=torch.int32, device=DEVICE)
    last = torch.full((B,), L - (P - 1) * page, dtype=torch.int32, device=DEVICE)
    return cache, indptr, indices, last


def build_cascade_pages(data: CaseData, page: int):
    """Shared pages: every unique segment, and every sequence's suffix, in its own run of pages, once.
    One level per case level that holds tokens, then one for the suffixes (when suffix > 0).
    Returns (cache, qo_indptr[], kv_indptr[], kv_indices[], last_page_len[]), one entry per level."""
    import torch
    case = data.case
    B, Hkv, D = case.batch, case.kv_heads, case.head_dim
    parts = sequence_parts(data)
    if not parts:
        raise CaseError("no tokens")
    layout, total_pages = [], 0
    for segments, sk, sv, _ in parts:
        per_segment = pages_of(sk.shape[1], page)
        layout.append((segments, sk, sv, total_pages, per_segment))
        total_pages += segments * per_segment
    require_memory(float(total_pages) * 2 * page * Hkv * D * BF16_BYTES, "paged KV for flashinfer-cascade")
    cache = torch.zeros((total_pages, 2, page, Hkv, D), device=DEVICE, dtype=torch.bfloat16)
    qo_indptr, kv_indptr, kv_indices, last_len = [], [], [], []
    for segments, sk, sv, first, per_segment in layout:
        tokens = sk.shape[1]
        view = cache[first:first + segments * per_segment].view(segments, per_segment, 2, page, Hkv, D)
        write_tokens(view[:, :, 0], sk, 0)
        write_tokens(view[:, :, 1], sv, 0)
        # The batch splits into `segments` equal contiguous ranges of sequences, `queries` query tokens each.
        qo_indptr.append((torch.arange(segments + 1, dtype=torch.int32) * (B // segments) * case.queries).to(DEVICE))
        kv_indptr.append((torch.arange(segments + 1, dtype=torch.int32) * per_segment).to(DEVICE))
        kv_indices.append(torch.arange(first, first + segments * per_segment, dtype=torch.int32, device=DEVICE))
        last_len.append(torch.full((segments,), tokens - (per_segment - 1) * page, dtype=torch.int32, device=DEVICE))
    return cache, qo_indptr, kv_indptr, kv_indices, last_len


def prepare_flashinfer_decode(data: CaseData, page: int, tensor_cores: str) -> Prepared:
    import torch
    flashinfer = flashinfer_module()
    case = data.case
    cache, indptr, indices, last = build_decode_pages(data, page)
    P = pages_of(case_metrics(case).sequence_tokens, page)
    group = case.q_heads // case.kv_heads
    use_tc = {"on": True, "off": False}.get(tensor_cores, group > 4)
    start = time.perf_counter()
    wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(flashinfer_workspace(), "NHD", use_tensor_cores=use_tc)
    wrapper.plan(indptr, indices, last, case.q_heads, case.kv_heads, case.head_dim, page, pos_encoding_mode="NONE",
                 q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16, sm_scale=data.scale)
    plan_seconds = time.perf_counter() - start
    q = data.q

    def fn():
        return wrapper.run(q, cache)

    notes = [f"flashinfer {flashinfer.__version__}", f"page {page}", f"{P} pages/seq",
             f"tensor cores {'on' if use_tc else 'off'}", "plan outside timing"]
    prepared = Prepared(fn, notes, [cache, indptr, indices, last, wrapper, q])
    warm_and_report("flashinfer-decode", prepared, plan_seconds)
    return prepared


def prepare_flashinfer_cascade(data: CaseData, page: int) -> Prepared:
    import torch
    flashinfer = flashinfer_module()
    case = data.case
    cache, qo_indptr, kv_indptr, kv_indices, last_len = build_cascade_pages(data, page)
    levels = len(qo_indptr)
    start = time.perf_counter()
    wrapper = flashinfer.MultiLevelCascadeAttentionWrapper(levels, flashinfer_workspace(), "NHD")
    wrapper.plan(qo_indptr, kv_indptr, kv_indices, last_len, case.q_heads, case.kv_heads, case.head_dim, page,
                 causal=case.queries > 1, pos_encoding_mode="NONE", sm_scale=data.scale,
                 q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
    plan_seconds = time.perf_counter() - start
    q = data.q

    def fn():
        # FlashInfer's LSE is base 2 (log2 of the sum of exp2); the wrapper merges its levels with it
        # internally and only the output is used here, so the base does not matter for timing.
        return wrapper.run(q, cache)

    backends = sorted({str(getattr(w, "_backend", "?")) for w in getattr(wrapper, "_batch_prefill_wrappers", [])})
    notes = [f"flashinfer {flashinfer.__version__}", f"{levels} levels", f"page {page}", f"{case.queries} query tokens",
             f"backend {'/'.join(backends)}", "plan outside timing"]
    prepared = Prepared(fn, notes, [cache, qo_indptr, kv_indptr, kv_indices, last_len, wrapper, q])
    warm_and_report("flashinfer-cascade", prepared, plan_seconds)
    return prepared


def build_shared_pages(data: CaseData, page: int):
    """flashinfer-cascade's pages (each unique segment once) as one flat page table per sequence, as
    an engine with prefix caching holds them: sequence s lists the pages of its segment of every
    level, then its own. Returns (cache, kv_indptr, kv_indices, last_page_len), the table on the host."""
    import torch
    cache, _, level_indptr, level_indices, level_last = build_cascade_pages(data, page)
    batch = data.case.batch
    rows = torch.arange(batch)
    columns, last = [], None
    for level, (indptr, indices, lasts) in enumerate(zip(level_indptr, level_indices, level_last)):
        indptr, indices, lasts = indptr.cpu(), indices.cpu(), lasts.cpu()
        if level + 1 < len(level_indptr) and int(lasts[0]) != page:
            raise ValueError(f"a shared segment's last page holds {int(lasts[0])} of {page} tokens; a flat page table "
                             "lists whole pages before a sequence's last")
        segment = rows // (batch // (indptr.numel() - 1))
        per_segment = int(indptr[1])
        columns.append(int(indices[0]) + segment[:, None] * per_segment + torch.arange(per_segment)[None, :])
        last = lasts[segment]
    table = torch.cat(columns, dim=1)
    kv_indptr = torch.arange(batch + 1, dtype=torch.int32) * table.shape[1]
    return cache, kv_indptr, table.flatten().to(torch.int32), last.to(torch.int32)


def head_major_pools(cache):
    """K and V of a [pages, 2, page, kv_heads, d] cache copied each into [kv_heads, pages, page, d]
    (every kv head's pages contiguous) and returned as views of HND's shape [pages, kv_heads, page, d]."""
    return tuple(cache[:, i].permute(2, 0, 1, 3).contiguous().permute(1, 0, 2, 3) for i in (0, 1))


def prepare_chunktree_paged(data: CaseData, page: int, layout: str) -> Prepared:
    import torch
    import chunktree
    case = data.case
    cache, kv_indptr, kv_indices, last = build_shared_pages(data, page)
    if layout == "HND":
        cache = cache.transpose(2, 3).contiguous()
    elif layout == "HMD":
        cache = head_major_pools(cache)
    qo_indptr = None if case.queries == 1 else torch.arange(case.batch + 1, dtype=torch.int32) * case.queries
    start = time.perf_counter()
    wrapper = chunktree.PagedAttention(device="cuda", kv_layout="NHD" if layout == "NHD" else "HND")
    wrapper.plan(kv_indptr, kv_indices, last, case.q_heads, case.kv_heads, case.head_dim, page, qo_indptr=qo_indptr,
                 causal=case.queries > 1, sm_scale=data.scale)
    plan_seconds = time.perf_counter() - start
    q = data.q
    out = torch.empty_like(q)

    def fn():
        return wrapper.run(q, cache, out=out)

    notes = [f"chunktree {chunktree.__version__}", f"{layout} page {page}", f"{int(kv_indptr[1])} pages/seq", f"plan {plan_seconds * 1e6:.0f} us",
             "plan outside timing"]
    prepared = Prepared(fn, notes, [cache, kv_indptr, kv_indices, last, wrapper, q, out])
    warm_and_report(f"chunktree-paged {layout}", prepared, plan_seconds)
    return prepared
