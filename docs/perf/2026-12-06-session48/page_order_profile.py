"""Session 48: session 47's page_profile.py with the shared prompt's pages in an order of the caller's
choice, so that experiment 84's fallback (a stage whose pages are not consecutive in the pool goes as
one 16-row box per page, after the checks that found it so) is timed as well as its 3-D boxes.
Usage: python3 page_order_profile.py PAGE ORDER [CASE ...] with ORDER consecutive or random (the
chunktree wheel on PYTHONPATH, torch, bench/). With PROFILE=0 in the environment, each case runs 6
plain steps and no profiler (for Nsight Compute, call 4)."""
import os
import sys

import numpy as np

sys.path.insert(0, "docs/perf/2026-12-05-session38")
import loop_profile as lp  # noqa: E402

lp.dl.PAGE = int(sys.argv[1])  # decode_loop reads its module's PAGE at each use
ORDER = sys.argv[2]


class OrderedPaged(lp.dl.ChunktreePagedGraph):
    def __init__(self, *args):
        super().__init__(*args)
        if ORDER == "random":
            self.shared = np.random.default_rng(48).permutation(self.shared).astype(np.int32)


def plan_paged_step(loop, i):
    where = loop.own.grow(lp.torch)
    loop.wrapper.plan(*loop.own.host_tables(loop.shared), lp.dl.Q_HEADS, lp.dl.KV_HEADS, lp.dl.DIM, lp.dl.PAGE)
    loop.where[0].copy_(where[0])
    loop.where[1].copy_(where[1])


for case in sys.argv[3:] or ("b64_p4k", "b256_p2k"):
    if os.environ.get("PROFILE") == "0":
        batch, prompt, distinct = lp.dl.CASES[case]
        loop = OrderedPaged(lp.torch, 32, batch, prompt, distinct, 8, lp.dl.Inputs(lp.torch, 32, batch))
        for i in range(6):
            loop.step(i)
        lp.torch.cuda.synchronize()
    else:
        lp.profile_case(case, loop_class=OrderedPaged, plan_step=plan_paged_step)
    lp.torch.cuda.empty_cache()
