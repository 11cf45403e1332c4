"""Session 44: where a bench/baselines.py `chunktree-paged` row's call spends its GPU time. For each
case of a cases JSON (`chunktree bench --cases-json`), the row's call as baselines.py prepares it
(NHD pages of the case's chunk), captured in a CUDA graph, replayed after an L2 flush under
torch.profiler (CUPTI kernel records). Prints one replay's kernels (start from the replay's first
kernel, duration, name) and, over the profiled replays, the medians of the span (first kernel's start
to last kernel's end), of each kernel kind's duration and of the time with no kernel running.
Usage: python3 paged_row_profile.py CASES.json [REPLAYS] (the chunktree wheel on PYTHONPATH, torch)."""
import collections
import statistics
import sys

sys.path.insert(0, "bench")
sys.path.insert(0, "docs/perf/2026-12-05-session38")
import torch  # noqa: E402

import baselines  # noqa: E402
import cases as bench_cases  # noqa: E402
import loop_profile as lp  # noqa: E402  (its replay_kernels, timeline and kind)
import peers  # noqa: E402


def profile(case, replays):
    data = peers.make_data(case, 7)
    prepared = peers.prepare_chunktree_paged(data, case.chunk, "NHD")
    graph, _ = baselines.try_graph(prepared.fn)
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    spans, per_kind, idle = [], collections.defaultdict(list), []
    for replay in range(replays):
        flush.zero_()
        torch.cuda.synchronize()
        events = lp.replay_kernels(graph.replay)
        if not events:
            print(f"{case.preset}/{case.name}: no kernel records")
            return
        start, span, sums, gap = lp.timeline(events)
        spans.append(span)
        for k, v in sums.items():
            per_kind[k].append(v)
        idle.append(gap)
        if replay == 1:
            print(f"{case.preset}/{case.name}: one replay's kernels (us from its first kernel: start, duration, name)")
            for e in events:
                print(f"    {e.time_range.start - start:8.1f} {e.time_range.end - e.time_range.start:7.1f}  {lp.kind(e.name):9s} {e.name[:80]}")
    med = statistics.median
    print(f"{case.preset}/{case.name}: span {med(spans):.2f} us; " + ", ".join(f"{k} {med(v):.2f}" for k, v in sorted(per_kind.items()))
          + f"; no kernel running {med(idle):.2f}", flush=True)


if __name__ == "__main__":
    replays = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    for case in bench_cases.load_cases(sys.argv[1]):
        profile(case, replays)
        torch.cuda.empty_cache()
