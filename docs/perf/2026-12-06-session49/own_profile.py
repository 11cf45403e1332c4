"""Session 49: the engine path's replayed decode step (session 48's page_order_profile.py, 16-token
NHD pages, the prompt's pages consecutive) with every sequence holding OWN tokens of its own before
the first step, so that the profiled steps hold OWN + 7 .. OWN + 14 (the decode loop's own: 7 .. 14).
Adds the case b128_p2k (128 sequences on a 2048-token prompt). Usage: python3 own_profile.py OWN
[CASE ...] (the chunktree wheel on PYTHONPATH, torch, bench/)."""
import sys

sys.path.insert(0, "docs/perf/2026-12-05-session38")
import loop_profile as lp  # noqa: E402

lp.dl.PAGE = 16
lp.dl.CASES.setdefault("b128_p2k", (128, 2048, False))
OWN = int(sys.argv[1])


class OwnTokensPaged(lp.dl.ChunktreePagedGraph):
    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        super().__init__(torch, layers, batch, prompt, distinct, total_steps + OWN, inputs)
        per_seq = (total_steps + OWN + lp.dl.PAGE - 1) // lp.dl.PAGE
        self.own = lp.dl.PageTable([OWN] * batch, len(self.shared), per_seq)


def plan_paged_step(loop, i):
    where = loop.own.grow(lp.torch)
    loop.wrapper.plan(*loop.own.host_tables(loop.shared), lp.dl.Q_HEADS, lp.dl.KV_HEADS, lp.dl.DIM, lp.dl.PAGE)
    loop.where[0].copy_(where[0])
    loop.where[1].copy_(where[1])


for case in sys.argv[2:] or ("b256_p2k", "b128_p2k"):
    lp.profile_case(case, loop_class=OwnTokensPaged, plan_step=plan_paged_step)
    lp.torch.cuda.empty_cache()
