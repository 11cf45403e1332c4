"""Where the engine path's call time goes (session 24, call 5): for a few cases, a CUDA-graph replay
of PagedAttention.run (NHD pages) and of torch SDPA, timed as bench/baselines.py times them (events
around each replay after an L2 flush), then the same replays under torch.profiler: each kernel's
device time, and the span from a replay's first kernel's start to its last kernel's end.

    python3 paged_profile.py CASES.json [CASE ...]
"""
import statistics
import sys

sys.path.insert(0, "bench")
import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

import baselines as b  # noqa: E402


def replays(graph, flush, count):
    for _ in range(count):
        flush.zero_()
        graph.replay()
    torch.cuda.synchronize()


def main():
    cases = [c for c in b.load_cases(sys.argv[1]) if len(sys.argv) < 3 or c.name in sys.argv[2:]]
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    for index, case in enumerate(cases):
        data = b.make_data(case, 11 + index)
        for impl, prepared in (("chunktree-paged", b.prepare_chunktree_paged(data, case.chunk, "NHD")), ("sdpa", b.prepare_sdpa(data))):
            graph, _ = b.try_graph(prepared.fn)
            times = b.time_calls(graph.replay, 10, 30, flush, 0.2)
            replays(graph, flush, 5)
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                replays(graph, flush, 20)
            kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and "elementwise" not in e.name
                       and "fill" not in e.name.lower() and "Memset" not in e.name]
            by_name = {}
            for e in kernels:
                by_name.setdefault(e.name[:60], []).append(e.time_range.elapsed_us())
            # Replays: the kernels between two flushes (flush kernels were dropped above; group by gaps).
            starts = sorted((e.time_range.start, e.time_range.end) for e in kernels)
            spans, first, last = [], None, None
            for s, t in starts:
                if first is None or s - last > 20:  # a flush (> 20 µs) separates replays
                    if first is not None:
                        spans.append(last - first)
                    first = s
                last = t if last is None else max(last, t)
            if first is not None:
                spans.append(last - first)
            print(f"{case.preset}/{case.name} {impl}: events median {statistics.median(times):.1f} us; "
                  f"kernel span median {statistics.median(spans):.1f} us over {len(spans)} replays", flush=True)
            for name, durations in by_name.items():
                print(f"    {statistics.median(durations):8.1f} us  x{len(durations):3d}  {name}", flush=True)


main()
