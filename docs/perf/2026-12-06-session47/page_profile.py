"""Session 47: the engine path's decode step under torch.profiler (session 40's paged_profile.py) at
a page size of the caller's choice, so that the same step can be timed over 16-token and 64-token
pages (the wgmma producer then copies a 128-position stage as 8 runs of 16-row TMA boxes, or as 2
runs of 64-row boxes).
Usage: python3 page_profile.py PAGE [CASE ...] (the chunktree wheel on PYTHONPATH, torch, bench/)."""
import sys

sys.path.insert(0, "docs/perf/2026-12-05-session38")
import loop_profile as lp  # noqa: E402

lp.dl.PAGE = int(sys.argv[1])  # decode_loop reads its module's PAGE at each use


def plan_paged_step(loop, i):
    where = loop.own.grow(lp.torch)
    loop.wrapper.plan(*loop.own.host_tables(loop.shared), lp.dl.Q_HEADS, lp.dl.KV_HEADS, lp.dl.DIM, lp.dl.PAGE)
    loop.where[0].copy_(where[0])
    loop.where[1].copy_(where[1])


for case in sys.argv[2:] or ("b64_p4k", "b256_p2k"):
    lp.profile_case(case, loop_class=lp.dl.ChunktreePagedGraph, plan_step=plan_paged_step)
    lp.torch.cuda.empty_cache()
