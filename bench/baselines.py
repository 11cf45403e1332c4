#!/usr/bin/env python3
"""Peer baselines for `chunktree bench`: one decode step of attention, timed on the GPU.

    python3 bench/baselines.py --cases FILE [--cases FILE ...] --ceilings CEILINGS.json --out CSV
                               [--warm] [--repeats N] [--impl sdpa,flashinfer-cascade,flashinfer-decode,chunktree-paged]

FILE is what `chunktree bench --preset NAME --cases-json FILE` writes; CEILINGS.json is what
`chunktree bench --ceilings-json FILE` writes (measured HBM bandwidth and bf16 tensor rate, card,
driver, date, commit), which the rows take; ceilings of another card (a warning says so) give the
rows that card's floors, but the card they ran on. One CSV row per (case, implementation) is
appended to CSV, in the columns of the C++ tool, so bench/plot.py and bench/report.py read both.

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

Files: cases.py (a case and its CSV row, pure Python), peers.py (each case's data and reference, and
each implementation's call prepared over it), this file (timing and the run). torch and flashinfer
are imported lazily: --help, the cases parser and the row arithmetic work without them
(bench/test_rows.py).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import traceback
from typing import Callable, List, Optional, Sequence, Tuple

import peers
from cases import Case, CaseError, append_rows, load_cases, load_ceilings, make_row, short_error

# chunktree-paged's variants and the page layout each runs over.
PAGED_LAYOUTS = {"chunktree-paged": "NHD", "chunktree-paged-hnd": "HND", "chunktree-paged-hmd": "HMD"}
IMPLS = ("sdpa", "flashinfer-cascade", "flashinfer-decode", *PAGED_LAYOUTS)
DEFAULT_IMPLS = "sdpa,flashinfer-cascade,flashinfer-decode,chunktree-paged"
MIN_WARMUPS = 5
MIN_REPEATS = 20


class Skipped(Exception):
    """An implementation that does not apply to a case (its row says why, without a time)."""


def parse_impls(text: str) -> List[str]:
    impls = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in impls if name not in IMPLS]
    if unknown or not impls:
        raise argparse.ArgumentTypeError(f"unknown implementation(s) {unknown}; choose from {', '.join(IMPLS)}")
    return impls


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


def run_impl(impl: str, data: peers.CaseData, reference, args, flush) -> Tuple[List[float], bool, List[str]]:
    """Prepares, checks and times one implementation on one case: (times µs, graph?, notes)."""
    import torch
    case = data.case
    extra: List[str] = []
    if impl == "flashinfer-decode" and case.queries > 1:
        raise Skipped("skipped: the decode kernel takes one query token per sequence")
    if impl == "sdpa":
        prepared = peers.prepare_sdpa(data)
        prepared.fn()
        torch.cuda.synchronize()
    else:
        pages = [case.chunk] + ([16] if case.chunk != 16 else [])
        prepared, failures = None, []
        for page in pages:
            try:
                if impl == "flashinfer-decode":
                    prepared = peers.prepare_flashinfer_decode(data, page, args.decode_tensor_cores)
                elif impl in PAGED_LAYOUTS:
                    prepared = peers.prepare_chunktree_paged(data, page, PAGED_LAYOUTS[impl])
                else:
                    prepared = peers.prepare_flashinfer_cascade(data, page)
                peers.check_output(prepared.fn(), reference, f"{impl} page {page}")
                break
            except (MemoryError, CaseError):
                raise
            except Exception as error:  # noqa: BLE001 - retried with page 16, then reported
                if not peers.flashinfer_imported() and not impl.startswith("chunktree"):
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
    peers.check_output(prepared.fn(), reference, impl)

    graph_ok = False
    launch = prepared.fn
    if not args.no_graph:
        try:
            graph, static_out = try_graph(prepared.fn)
            peers.check_output(static_out, reference, f"{impl} (CUDA graph)")
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
    peers.prepare_environment()
    import torch
    if not torch.cuda.is_available():
        print("error: no CUDA device visible", file=sys.stderr)
        rows = [make_row(c, impl, ceilings, cold_l2=not args.warm, note="no CUDA device") for c in cases for impl in args.impl]
        append_rows(args.out, rows)
        return 1
    props = torch.cuda.get_device_properties(0)
    if ceilings.get("card") and ceilings["card"] != props.name:
        # Rows name the card they were timed on; their floors still come from the given ceilings.
        print(f"warning: the ceilings were measured on {ceilings['card']}, but this card is {props.name}: the rows name "
              f"{props.name}, and their floors and x_floor are {ceilings['card']}'s; for floors of this card pass the "
              "ceilings of a `chunktree bench --ceilings-json` run on it", file=sys.stderr, flush=True)
        ceilings = dict(ceilings, card=props.name)
    l2 = int(getattr(props, "L2_cache_size", 0) or 0) or 64 * 2**20
    print(f"torch {torch.__version__} (CUDA {torch.version.cuda}), {props.name}, {props.multi_processor_count} SMs, "
          f"L2 {l2 / 2**20:.0f} MiB, {'warm' if args.warm else 'cold'} L2, {args.warmups} warm-ups, {args.repeats} repeats, "
          f"{args.settle_ms} ms idle before each row's repeats",
          flush=True)
    flush = None if args.warm else torch.empty(2 * l2, dtype=torch.uint8, device=peers.DEVICE)
    if any(impl.startswith("flashinfer") for impl in args.impl):
        try:
            peers.flashinfer_module()
        except RuntimeError:
            pass
    failures = 0
    for index, case in enumerate(cases):
        print(f"[{case.preset}/{case.name}] batch {case.batch}, heads {case.q_heads}/{case.kv_heads}, d {case.head_dim}, "
              f"levels {[(l.segments, l.tokens) for l in case.levels]}, suffix {case.suffix}", flush=True)
        data, reference, data_error = None, None, case.error
        if data_error is None:
            try:
                data = peers.make_data(case, args.seed + 7919 * index)
                reference = peers.reference_outputs(data, peers.check_sequences(case.batch))
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
    peers.AOT_OPTION = args.flashinfer_aot
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
