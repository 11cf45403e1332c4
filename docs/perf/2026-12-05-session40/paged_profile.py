"""Session 40: where the engine path's decode step spends its GPU time. Session 38's loop profile
(`docs/perf/2026-12-05-session38/loop_profile.py`, its profile_case) over bench/decode_loop.py's
chunktree-paged-graph step: the page table grows, PagedAttention.plan, the token's page slots into the
captured buffers, then the graph's replay (every layer's two torch page writes and run()) under
torch.profiler.
Usage: python3 paged_profile.py [CASE ...] (the chunktree wheel on PYTHONPATH, torch, bench/)."""
import sys

sys.path.insert(0, "docs/perf/2026-12-05-session38")
import loop_profile as lp  # noqa: E402


def plan_paged_step(loop, i):
    where = loop.own.grow(lp.torch)
    loop.wrapper.plan(*loop.own.host_tables(loop.shared), lp.dl.Q_HEADS, lp.dl.KV_HEADS, lp.dl.DIM, lp.dl.PAGE)
    loop.where[0].copy_(where[0])
    loop.where[1].copy_(where[1])


for case in sys.argv[1:] or ("b64_p4k", "b256_p2k"):
    lp.profile_case(case, loop_class=lp.dl.ChunktreePagedGraph, plan_step=plan_paged_step)
    lp.torch.cuda.empty_cache()
