"""Session 46: a bench/baselines.py `chunktree-paged` row's replayed call with the L2 flushed before
each replay (as the benchmarks time it: every line, code and page-table entries included, evicted)
without (warm), and flushed and then warmed by a replay of the same row over other buffers (a
second call of the same shape with its own pages, q and plan: the kernels' code is back in the L2,
the measured call's data and tables are not: "code"), to tell the replay's cold-start chains from
its work, and code from data among them. Prints per mode the medians
of the span and of each kernel kind's duration (session 44's paged_row_profile.py, whose timeline it
reuses). With `ncu` as the third argument it instead replays the graph 6 times inside an NVTX range
"replays" for Nsight Compute (`--nvtx --nvtx-include replays/`), flushing before each.
Usage: python3 replay_modes.py CASES.json NAME [REPLAYS|ncu] (the chunktree wheel on PYTHONPATH)."""
import collections
import statistics
import sys

sys.path.insert(0, "bench")
sys.path.insert(0, "docs/perf/2026-12-05-session38")
import torch  # noqa: E402

import baselines  # noqa: E402
import cases as bench_cases  # noqa: E402
import loop_profile as lp  # noqa: E402
import peers  # noqa: E402


def main():
    case = next(c for c in bench_cases.load_cases(sys.argv[1]) if c.name == sys.argv[2])
    data = peers.make_data(case, 7)
    prepared = peers.prepare_chunktree_paged(data, case.chunk, "NHD")
    graph, _ = baselines.try_graph(prepared.fn)
    other = peers.prepare_chunktree_paged(peers.make_data(case, 8), case.chunk, "NHD")
    other_graph, _ = baselines.try_graph(other.fn)
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    if len(sys.argv) > 3 and sys.argv[3] == "ncu":
        for _ in range(6):
            flush.zero_()
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_push("replays")
            graph.replay()
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_pop()
        return
    replays = int(sys.argv[3]) if len(sys.argv) > 3 else 16
    for mode in ("cold", "warm", "code", "cold"):
        spans, per_kind = [], collections.defaultdict(list)
        for _ in range(replays):
            if mode == "warm":
                graph.replay()
            else:
                flush.zero_()
            if mode == "code":
                other_graph.replay()
            torch.cuda.synchronize()
            events = lp.replay_kernels(graph.replay)
            _, span, sums, _ = lp.timeline(events)
            spans.append(span)
            for k, v in sums.items():
                per_kind[k].append(v)
        med = statistics.median
        print(f"{case.preset}/{case.name} {mode}: span {med(spans):.2f} us; "
              + ", ".join(f"{k} {med(v):.2f}" for k, v in sorted(per_kind.items())), flush=True)


if __name__ == "__main__":
    main()
