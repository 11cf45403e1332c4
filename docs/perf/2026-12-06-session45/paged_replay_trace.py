"""Session 45: per-tile timelines (src/kernels/tile_trace.cuh) of a bench/baselines.py
`chunktree-paged` row's replayed call (NHD pages of the case's chunk): the call captured in a CUDA
graph as baselines.py times it, replayed REPLAYS times after an L2 flush each, then one eager call
with CHUNKTREE_TILE_TRACE_REPLAYED set, which writes the last replay's tables to OUT.csv(.wgmma)
for bench/tile_trace.py. Needs a wheel built with -DCHUNKTREE_TILE_TRACE=ON that has the replayed
mode (main since session 45). Never a timing: the stamps cost time.
Usage: python3 paged_replay_trace.py CASES.json NAME REPLAYS OUT.csv (CHUNKTREE_TILE_TRACE* unset)"""
import os
import sys

sys.path.insert(0, "bench")
import torch  # noqa: E402

import baselines  # noqa: E402
import cases as bench_cases  # noqa: E402
import peers  # noqa: E402

if __name__ == "__main__":
    cases_json, name, replays, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    case = next(c for c in bench_cases.load_cases(cases_json) if c.name == name)
    prepared = peers.prepare_chunktree_paged(peers.make_data(case, 7), case.chunk, "NHD")
    graph, _ = baselines.try_graph(prepared.fn)
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    for _ in range(replays):
        flush.zero_()
        torch.cuda.synchronize()
        graph.replay()
        torch.cuda.synchronize()
    os.environ["CHUNKTREE_TILE_TRACE"] = out
    os.environ["CHUNKTREE_TILE_TRACE_REPLAYED"] = "1"
    prepared.fn()  # stamps nothing; writes the last replay's tables
    torch.cuda.synchronize()
