"""Session 45: per-tile timelines (src/kernels/tile_trace.cuh) of a bench/baselines.py
`chunktree-paged` row's call (NHD pages of the case's chunk), through a wheel built with
-DCHUNKTREE_TILE_TRACE=ON. Runs CALLS eager calls, each after an L2 flush; the C++ backend writes the
traced call's tables (CHUNKTREE_TILE_TRACE_CALL) to CHUNKTREE_TILE_TRACE's files, which
bench/tile_trace.py then reads. Never a timing: the stamps cost time.
Usage: CHUNKTREE_TILE_TRACE=T.csv CHUNKTREE_TILE_TRACE_CALL=N python3 paged_tile_trace.py CASES.json NAME CALLS"""
import sys

sys.path.insert(0, "bench")
import torch  # noqa: E402

import cases as bench_cases  # noqa: E402
import peers  # noqa: E402

if __name__ == "__main__":
    case = next(c for c in bench_cases.load_cases(sys.argv[1]) if c.name == sys.argv[2])
    prepared = peers.prepare_chunktree_paged(peers.make_data(case, 7), case.chunk, "NHD")
    flush = torch.empty(2 * torch.cuda.get_device_properties(0).L2_cache_size, dtype=torch.uint8, device="cuda")
    for _ in range(int(sys.argv[3])):
        flush.zero_()
        torch.cuda.synchronize()
        prepared.fn()
        torch.cuda.synchronize()
