#!/usr/bin/env python3
"""Peer baselines for `chunktree bench`: one decode step of attention, timed on the GPU.

    python3 bench/baselines.py --cases FILE [--cases FILE ...] --ceilings CEILINGS.json --out CSV
                               [--warm] [--repeats N] [--impl sdpa,flashinfer-cascade,flashinfer-decode,chunktree-paged]

FILE is what `chunktree bench --preset NAME --cases-json FILE` writes; CEILINGS.json is what
`chunktree bench --ceilings-json FILE` writes (measured HBM bandwidth and bf16 tensor rate, card,
driver, date, commit). One CSV row per (case, implementation) is appended to CSV, in the columns of
the C++ tool, so bench/plot.py and bench/report.py read both.

Implementations
  sdpa                torch scaled_dot_product_attention over per-sequence KV [batch, heads, len, d]
                      (no sharing; built outside the timed region; GQA through enable_gqa=True).
  flashinfer-decode   FlashInfer BatchDecodeWithPagedKVCacheWrapper; every sequence has its own pages
                      (no sharing); page size = the case's chunk (16 if that fails).
  flashinfer-cascade  FlashInfer MultiLevelCascadeAttentionWrapper: one level per shared level of the
                      case plus one for the suffixes; each shared segment is stored once.
  chunktree-paged     chunktree.PagedAttention (the engine-facing front end) over the same pages as
                      flashinfer-cascade, as one flat page table per sequence (FlashInfer decode's format,
                      the shared pages listed by every sequence that reads them): chunktree finds the
                      sharing from the page ids. NHD pages; chunktree-paged-hnd the same in HND;
                      chunktree-paged-hmd the same pages with each kv head's pages contiguous (K and
                      V each [kv_heads, pages, page, head_dim], passed as HND views: a sequence's
                      pages, allocated in a run, are one run per head). Needs shared segments of whole pages.

Cases with "queries" > 1 (speculative decoding) have that many query tokens per sequence, the last
ones of its suffix, each seeing the sequence up to itself: sdpa gets an explicit bottom-right
causal mask, flashinfer-cascade causal=True (which FlashInfer applies to its last level, the
suffixes), and flashinfer-decode, which takes one query token per sequence, is skipped.

Timing: plan() once outside the timed region; CUDA-graph capture of run() when it works (graph=yes),
else eager launches (graph=no); CUDA events around each call; before each repeat a buffer of twice
the L2 size is written (cold L2) unless --warm; the card idles --settle-ms before the timed repeats
(its power limiter must not carry one row's capped clock into the next). Each case's output is checked against a float32
reference on a few sequences before any time is reported.

torch and flashinfer are imported lazily: --help, the cases parser and the row arithmetic work
without them (bench/test_rows.py).
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import math
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

COLUMNS = [
    "preset", "case", "impl", "batch", "q_heads", "kv_heads", "head_dim", "chunk", "shared_tokens", "suffix",
    "median_us", "p10_us", "p90_us", "tflops", "unique_kv_tbps", "floor_us", "x_floor", "graph", "cold_l2",
    "card", "driver", "date", "commit", "note",
]
# chunktree-paged's variants and the page layout each runs over.
PAGED_LAYOUTS = {"chunktree-paged": "NHD", "chunktree-paged-hnd": "HND", "chunktree-paged-hmd": "HMD"}
IMPLS = ("sdpa", "flashinfer-cascade", "flashinfer-decode", *PAGED_LAYOUTS)
DEFAULT_IMPLS = "sdpa,flashinfer-cascade,flashinfer-decode,chunktree-paged"
MIN_WARMUPS = 5
MIN_REPEATS = 20
BF16_BYTES = 2
DEVICE = "cuda"  # the tests set "cpu" to check data layouts without a GPU
CHECK_RTOL = 2e-2
CHECK_ATOL = 2e-2


# ----------------------------------------------------------------------------------------------
# Cases (pure Python)
# ----------------------------------------------------------------------------------------------

class CaseError(ValueError):
    """A case that cannot be run as described."""


class Skipped(Exception):
    """An implementation that does not apply to a case (its row says why, without a time)."""


@dataclass(frozen=True)
class Level:
    segments: int
    tokens: int


@dataclass
class Case:
    preset: str
    name: str
    batch: int
    q_heads: int
    kv_heads: int
    head_dim: int
    chunk: int
    levels: List[Level]
    suffix: int
    queries: int = 1  # query tokens per sequence: the last `queries` tokens of the suffix, causal
    error: Optional[str] = None  # set when the case is malformed: its rows carry the error

    @property
    def active_levels(self) -> List[Level]:
        """The levels that hold tokens (levels of 0 tokens are dropped)."""
        return [level for level in self.levels if level.tokens > 0]


def _int_field(obj: dict, key: str, where: str, minimum: int) -> int:
    if key not in obj:
        raise CaseError(f"{where}: missing '{key}'")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise CaseError(f"{where}: '{key}' must be an integer, got {value!r}")
    if value < minimum:
        raise CaseError(f"{where}: '{key}' must be >= {minimum}, got {value}")
    return value


def validate_case(case: Case) -> None:
    """Raises CaseError when the case breaks the rules of the cases file."""
    where = f"case '{case.name}'"
    if case.q_heads % case.kv_heads:
        raise CaseError(f"{where}: q_heads {case.q_heads} is not a multiple of kv_heads {case.kv_heads}")
    previous = 1
    for i, level in enumerate(case.active_levels):
        if case.batch % level.segments:
            raise CaseError(f"{where}: batch {case.batch} is not a multiple of level {i}'s {level.segments} segments")
        if level.segments % previous:
            raise CaseError(f"{where}: level {i}'s {level.segments} segments do not refine the previous level's {previous}")
        previous = level.segments
    if sum(level.tokens for level in case.levels) + case.suffix <= 0:
        raise CaseError(f"{where}: no tokens at all (no shared tokens and suffix 0)")
    if case.queries > 1 and case.suffix < case.queries:
        raise CaseError(f"{where}: {case.queries} query tokens need a suffix of at least {case.queries} tokens, got {case.suffix}")


def parse_case(preset: str, obj: object, index: int) -> Case:
    """One entry of "cases"; a malformed entry comes back with .error set (its rows report it)."""
    name = obj.get("name") if isinstance(obj, dict) and isinstance(obj.get("name"), str) else f"case{index}"
    try:
        if not isinstance(obj, dict):
            raise CaseError(f"case {index}: not an object")
        where = f"case '{name}'"
        levels_obj = obj.get("levels")
        if not isinstance(levels_obj, list):
            raise CaseError(f"{where}: 'levels' must be a list")
        levels = []
        for i, level in enumerate(levels_obj):
            if not isinstance(level, dict):
                raise CaseError(f"{where}: level {i} is not an object")
            levels.append(Level(_int_field(level, "segments", f"{where} level {i}", 1),
                                _int_field(level, "tokens", f"{where} level {i}", 0)))
        case = Case(
            preset=preset,
            name=name,
            batch=_int_field(obj, "batch", where, 1),
            q_heads=_int_field(obj, "q_heads", where, 1),
            kv_heads=_int_field(obj, "kv_heads", where, 1),
            head_dim=_int_field(obj, "head_dim", where, 1),
            chunk=_int_field(obj, "chunk", where, 1),
            levels=levels,
            suffix=_int_field(obj, "suffix", where, 0),
            queries=_int_field(obj, "queries", where, 1) if "queries" in obj else 1,
        )
        validate_case(case)
        return case
    except CaseError as error:
        def field_or_zero(key):
            value = obj.get(key) if isinstance(obj, dict) else None
            return value if isinstance(value, int) and not isinstance(value, bool) else 0
        return Case(preset=preset, name=name, batch=field_or_zero("batch"), q_heads=field_or_zero("q_heads"),
                    kv_heads=field_or_zero("kv_heads"), head_dim=field_or_zero("head_dim"), chunk=field_or_zero("chunk"),
                    levels=[], suffix=field_or_zero("suffix"), error=str(error))


def parse_cases(doc: object, source: str = "<cases>") -> List[Case]:
    """{"preset": str, "cases": [...]} -> cases. A malformed document raises ValueError."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: top level must be an object")
    preset = doc.get("preset")
    if not isinstance(preset, str) or not preset:
        raise ValueError(f"{source}: 'preset' must be a non-empty string")
    cases = doc.get("cases")
    if not isinstance(cases, list):
        raise ValueError(f"{source}: 'cases' must be a list")
    return [parse_case(preset, obj, i) for i, obj in enumerate(cases)]


def load_cases(path: str) -> List[Case]:
    with open(path) as handle:
        doc = json.load(handle)
    return parse_cases(doc, path)


# ----------------------------------------------------------------------------------------------
# Row arithmetic (pure Python)
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metrics:
    shared_tokens: int      # Σ level tokens: what one sequence reads from shared levels
    sequence_tokens: int    # shared_tokens + suffix
    unique_kv_tokens: int   # Σ segments·tokens + batch·suffix: KV stored once
    flops: float            # 4 · batch · q_heads · d · Σ over query tokens of the positions each sees
    unique_bytes: float     # K and V of the unique tokens plus Q and O of every query token, bf16


def case_metrics(case: Case) -> Metrics:
    shared = sum(level.tokens for level in case.levels)
    sequence = shared + case.suffix
    unique = sum(level.segments * level.tokens for level in case.levels) + case.batch * case.suffix
    n = case.queries
    seen = n * (sequence - n) + n * (n + 1) / 2  # query i sees sequence - n + i + 1 positions
    flops = 4.0 * case.batch * case.q_heads * seen * case.head_dim
    kv_bytes = 2.0 * BF16_BYTES * case.kv_heads * case.head_dim * unique
    q_and_o_bytes = BF16_BYTES * case.batch * n * case.q_heads * case.head_dim * 2.0
    return Metrics(shared, sequence, unique, flops, kv_bytes + q_and_o_bytes)


def floor_us(metrics: Metrics, ceilings: dict) -> Optional[float]:
    """max(unique bytes / HBM bandwidth, FLOPs / bf16 tensor rate) in µs; None without ceilings."""
    hbm = float(ceilings.get("hbm_bytes_per_s") or 0)
    tensor = float(ceilings.get("bf16_flops_per_s") or 0)
    if hbm <= 0 or tensor <= 0:
        return None
    return max(metrics.unique_bytes / hbm, metrics.flops / tensor) * 1e6


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), q in [0, 1]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(times_us: Sequence[float]) -> Tuple[float, float, float]:
    return percentile(times_us, 0.5), percentile(times_us, 0.1), percentile(times_us, 0.9)


def _fmt(value: Optional[float], digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def make_row(case: Case, impl: str, ceilings: dict, times_us: Optional[Sequence[float]] = None,
             graph: Optional[bool] = None, cold_l2: bool = True, note: str = "") -> Dict[str, str]:
    """One CSV row. Without times (a failed or skipped run) the timing numbers stay empty;
    floor_us, a property of the case and the card, is still filled in."""
    m = case_metrics(case)
    floor = floor_us(m, ceilings) if case.error is None else None
    median = p10 = p90 = tflops = tbps = x_floor = None
    if times_us:
        median, p10, p90 = summarize(times_us)
        seconds = median * 1e-6
        tflops = m.flops / seconds / 1e12
        tbps = m.unique_bytes / seconds / 1e12
        x_floor = median / floor if floor else None
    return {
        "preset": case.preset,
        "case": case.name,
        "impl": impl,
        "batch": str(case.batch),
        "q_heads": str(case.q_heads),
        "kv_heads": str(case.kv_heads),
        "head_dim": str(case.head_dim),
        "chunk": str(case.chunk),
        "shared_tokens": str(m.shared_tokens),
        "suffix": str(case.suffix),
        "median_us": _fmt(median, 2),
        "p10_us": _fmt(p10, 2),
        "p90_us": _fmt(p90, 2),
        "tflops": _fmt(tflops, 3),
        "unique_kv_tbps": _fmt(tbps, 3),
        "floor_us": _fmt(floor, 3),
        "x_floor": _fmt(x_floor, 3),
        "graph": "" if graph is None else ("yes" if graph else "no"),
        "cold_l2": "yes" if cold_l2 else "no",
        "card": str(ceilings.get("card", "")),
        "driver": str(ceilings.get("driver", "")),
        "date": str(ceilings.get("date", "")),
        "commit": str(ceilings.get("commit", "")),
        "note": note,
    }


def append_rows(path: str, rows: Sequence[Dict[str, str]]) -> None:
    """Appends rows to the CSV, writing the header first when the file is new or empty."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow(row)


def load_ceilings(path: str) -> dict:
    with open(path) as handle:
        ceilings = json.load(handle)
    if not isinstance(ceilings, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    for key in ("hbm_bytes_per_s", "bf16_flops_per_s"):
        value = ceilings.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{path}: '{key}' must be a positive number, got {value!r}")
    return ceilings


def parse_impls(text: str) -> List[str]:
    impls = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in impls if name not in IMPLS]
    if unknown or not impls:
        raise argparse.ArgumentTypeError(f"unknown implementation(s) {unknown}; choose from {', '.join(IMPLS)}")
    return impls


def short_error(error: BaseException, limit: int = 300) -> str:
    text = f"{type(error).__name__}: {error}".replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------------------------
# GPU side (torch and flashinfer imported lazily)
# ----------------------------------------------------------------------------------------------

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


def try_graph(fn: Callable[[], object]):
    """Captures fn into a CUDA graph; returns (graph, static output) or raises."""
    import torch
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    graph.replay()
    torch.cuda.synchronize()
    return graph, out


def time_calls(launch: Callable[[], object], warmups: int, repeats: int, flush, settle_s: float = 0.0) -> List[float]:
    """µs per call from CUDA events; the L2 flush (if any) runs before each repeat, outside the events.
    The card idles settle_s before the timed repeats, as `chunktree bench --settle-ms` does (the power
    limiter averages over about a second: a row must not start at the clock the last one capped)."""
    import torch
    for _ in range(warmups):
        if flush is not None:
            flush.zero_()
        launch()
    torch.cuda.synchronize()
    time.sleep(settle_s)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
    for i in range(repeats):
        if flush is not None:
            flush.zero_()
        starts[i].record()
        launch()
        ends[i].record()
    torch.cuda.synchronize()
    return [start.elapsed_time(end) * 1000.0 for start, end in zip(starts, ends)]


def run_impl(impl: str, data: CaseData, reference, args, flush) -> Tuple[List[float], bool, List[str]]:
    """Prepares, checks and times one implementation on one case: (times µs, graph?, notes)."""
    import torch
    case = data.case
    extra: List[str] = []
    if impl == "flashinfer-decode" and case.queries > 1:
        raise Skipped("skipped: the decode kernel takes one query token per sequence")
    if impl == "sdpa":
        prepared = prepare_sdpa(data)
        prepared.fn()
        torch.cuda.synchronize()
    else:
        pages = [case.chunk] + ([16] if case.chunk != 16 else [])
        prepared, failures = None, []
        for page in pages:
            try:
                if impl == "flashinfer-decode":
                    prepared = prepare_flashinfer_decode(data, page, args.decode_tensor_cores)
                elif impl in PAGED_LAYOUTS:
                    prepared = prepare_chunktree_paged(data, page, PAGED_LAYOUTS[impl])
                else:
                    prepared = prepare_flashinfer_cascade(data, page)
                check_output(prepared.fn(), reference, f"{impl} page {page}")
                break
            except (MemoryError, CaseError):
                raise
            except Exception as error:  # noqa: BLE001 - retried with page 16, then reported
                if _FLASHINFER is None and not impl.startswith("chunktree"):
                    raise
                failures.append(f"page {page} failed: {short_error(error, 160)}")
                print(f"  {impl}: {failures[-1]}", flush=True)
                prepared = None
                gc.collect()
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
        if prepared is None:
            raise RuntimeError("; ".join(failures) or "no page size worked")
        extra.extend(failures)
    check_output(prepared.fn(), reference, impl)

    graph_ok = False
    launch = prepared.fn
    if not args.no_graph:
        try:
            graph, static_out = try_graph(prepared.fn)
            check_output(static_out, reference, f"{impl} (CUDA graph)")
            launch = graph.replay
            prepared.keep.extend([graph, static_out])
            graph_ok = True
        except Exception as error:  # noqa: BLE001 - eager timing instead
            extra.append(f"graph capture failed: {short_error(error, 160)}")
            print(f"  {impl}: graph capture failed, timing eager launches: {short_error(error)}", flush=True)
            try:
                torch.cuda.synchronize()
            except Exception:  # noqa: BLE001
                pass
    times = time_calls(launch, args.warmups, args.repeats, flush, args.settle_ms / 1000.0)
    notes = prepared.notes + extra
    del prepared, launch
    return times, graph_ok, notes


def run_all(args, cases: List[Case], ceilings: dict) -> int:
    prepare_environment()
    import torch
    if not torch.cuda.is_available():
        print("error: no CUDA device visible", file=sys.stderr)
        rows = [make_row(c, impl, ceilings, cold_l2=not args.warm, note="no CUDA device") for c in cases for impl in args.impl]
        append_rows(args.out, rows)
        return 1
    props = torch.cuda.get_device_properties(0)
    l2 = int(getattr(props, "L2_cache_size", 0) or 0) or 64 * 2**20
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {props.name}, {props.multi_processor_count} SMs, "
          f"L2 {l2 / 2**20:.0f} MiB, {'warm' if args.warm else 'cold'} L2, {args.warmups} warm-ups, {args.repeats} repeats, "
          f"{args.settle_ms} ms idle before each row's repeats",
          flush=True)
    flush = None if args.warm else torch.empty(2 * l2, dtype=torch.uint8, device=DEVICE)
    if any(impl.startswith("flashinfer") for impl in args.impl):
        try:
            flashinfer_module()
        except RuntimeError:
            pass
    failures = 0
    for index, case in enumerate(cases):
        print(f"[{case.preset}/{case.name}] batch {case.batch}, heads {case.q_heads}/{case.kv_heads}, d {case.head_dim}, "
              f"levels {[(l.segments, l.tokens) for l in case.levels]}, suffix {case.suffix}", flush=True)
        data, reference, data_error = None, None, case.error
        if data_error is None:
            try:
                data = make_data(case, args.seed + 7919 * index)
                reference = reference_outputs(data, check_sequences(case.batch))
            except Exception as error:  # noqa: BLE001
                data_error = f"data: {short_error(error)}"
        for impl in args.impl:
            if data_error is not None:
                row = make_row(case, impl, ceilings, cold_l2=not args.warm, note=f"error: {data_error}")
                print(f"  {impl}: {data_error}", flush=True)
                failures += 1
            else:
                try:
                    times, graph_ok, notes = run_impl(impl, data, reference, args, flush)
                    row = make_row(case, impl, ceilings, times, graph_ok, not args.warm, "; ".join(notes))
                    print(f"  {impl}: median {row['median_us']} us (p10 {row['p10_us']}, p90 {row['p90_us']}), "
                          f"x_floor {row['x_floor']}, graph {row['graph']}", flush=True)
                except (MemoryError, Skipped) as error:
                    row = make_row(case, impl, ceilings, cold_l2=not args.warm, note=str(error))
                    print(f"  {impl}: {error}", flush=True)
                    failures += 1
                except Exception as error:  # noqa: BLE001 - every failure becomes a row
                    message = short_error(error)
                    row = make_row(case, impl, ceilings, cold_l2=not args.warm, note=f"error: {message}")
                    print(f"  {impl}: FAILED: {message}", flush=True)
                    if not isinstance(error, AssertionError):
                        traceback.print_exc()
                    failures += 1
            append_rows(args.out, [row])
            gc.collect()
            try:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
            except Exception:  # noqa: BLE001 - a broken context shows up in the next rows
                pass
        del data, reference
        gc.collect()
        torch.cuda.empty_cache()
    print(f"wrote {args.out}: {len(cases) * len(args.impl)} rows, {failures} without a time", flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Implementations: " + ", ".join(IMPLS))
    parser.add_argument("--cases", action="append", required=True, metavar="FILE",
                        help="cases JSON from `chunktree bench --cases-json` (repeatable)")
    parser.add_argument("--ceilings", required=True, metavar="FILE",
                        help="ceilings JSON from `chunktree bench --ceilings-json`")
    parser.add_argument("--out", required=True, metavar="CSV", help="CSV to append rows to (header written once)")
    parser.add_argument("--warm", action="store_true", help="skip the L2 flush before each repeat")
    parser.add_argument("--repeats", type=int, default=30, help=f"timed repeats (>= {MIN_REPEATS}; default 30)")
    parser.add_argument("--settle-ms", type=int, default=250,
                        help="idle ms before each row's timed repeats, as chunktree bench (default 250)")
    parser.add_argument("--warmups", type=int, default=10, help=f"untimed warm-ups (>= {MIN_WARMUPS}; default 10)")
    parser.add_argument("--impl", type=parse_impls, default=parse_impls(DEFAULT_IMPLS),
                        help=f"comma-separated implementations (default {DEFAULT_IMPLS})")
    parser.add_argument("--decode-tensor-cores", choices=("auto", "on", "off"), default="auto",
                        help="flashinfer-decode use_tensor_cores; auto: on when q_heads/kv_heads > 4")
    parser.add_argument("--no-graph", action="store_true", help="do not try CUDA-graph capture")
    parser.add_argument("--flashinfer-aot", default="auto", metavar="auto|none|DIR",
                        help="prebuilt FlashInfer modules (bench/build_flashinfer_aot.py); auto: .whl/flashinfer-aot "
                             "when its manifest matches the imported versions; modules not found there are JIT-compiled")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.repeats < MIN_REPEATS:
        parser.error(f"--repeats must be >= {MIN_REPEATS}")
    if args.settle_ms < 0:
        parser.error(f"--settle-ms must be at least 0, got {args.settle_ms}")
    if args.warmups < MIN_WARMUPS:
        parser.error(f"--warmups must be >= {MIN_WARMUPS}")
    global AOT_OPTION
    AOT_OPTION = args.flashinfer_aot
    try:
        ceilings = load_ceilings(args.ceilings)
        cases = [case for path in args.cases for case in load_cases(path)]
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for case in cases:
        if case.error:
            print(f"warning: {case.error}", file=sys.stderr)
    return run_all(args, cases, ceilings)


if __name__ == "__main__":
    sys.exit(main())
