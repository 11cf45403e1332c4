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
import torch  # noqa: E402

import baselines  # noqa: E402
import cases as bench_cases  # noqa: E402
import peers  # noqa: E402


def kind(name):
    for key in ("wgmma", "mma_sync", "merge", "scatter"):
        if key in name:
            return key
    return name[:40]


def profile(case, replays):
    data = peers.make_data(case, 7)
    prepared = peers.prepare_chunktree_paged(data, case.chunk, "NHD")
    graph, _ = baselines.try_graph(prepared.fn)
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    spans, per_kind, idle = [], collections.defaultdict(list), []
    for replay in range(replays):
        flush.zero_()
        torch.cuda.synchronize()
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
            graph.replay()
            torch.cuda.synchronize()
        events = sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and e.device_time_total > 0
                         and "Memcpy" not in e.name and "Memset" not in e.name), key=lambda e: e.time_range.start)
        if not events:
            print(f"{case.preset}/{case.name}: no kernel records")
            return
        start = events[0].time_range.start
        end = max(e.time_range.end for e in events)
        spans.append(end - start)
        sums = collections.Counter()
        busy, cursor = 0.0, start
        for e in events:
            sums[kind(e.name)] += e.time_range.end - e.time_range.start
            s, t = max(e.time_range.start, cursor), e.time_range.end
            if t > s:
                busy += t - s
                cursor = t
        for k, v in sums.items():
            per_kind[k].append(v)
        idle.append(end - start - busy)
        if replay == 1:
            print(f"{case.preset}/{case.name}: one replay's kernels (us from its first kernel: start, duration, name)")
            for e in events:
                print(f"    {e.time_range.start - start:8.1f} {e.time_range.end - e.time_range.start:7.1f}  {kind(e.name):9s} {e.name[:80]}")
    med = statistics.median
    print(f"{case.preset}/{case.name}: span {med(spans):.2f} us; " + ", ".join(f"{k} {med(v):.2f}" for k, v in sorted(per_kind.items()))
          + f"; no kernel running {med(idle):.2f}", flush=True)


if __name__ == "__main__":
    replays = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    for case in bench_cases.load_cases(sys.argv[1]):
        profile(case, replays)
        torch.cuda.empty_cache()
