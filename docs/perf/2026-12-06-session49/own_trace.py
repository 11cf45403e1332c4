"""Session 49: per-tile timelines (src/kernels/tile_trace.cuh) of the engine path's replayed decode
step (own_profile.py's loop: 16-token NHD pages, each sequence OWN tokens of its own before the first
step): after 8 steps, one eager call with CHUNKTREE_TILE_TRACE_REPLAYED set writes the last replayed
launch's tables (layer 32's) to OUT.csv(.wgmma) for bench/tile_trace.py. Needs a wheel built with
-DCHUNKTREE_TILE_TRACE=ON. Never a timing: the stamps cost time.
Usage: python3 own_trace.py OWN CASE OUT.csv (CHUNKTREE_TILE_TRACE* unset)"""
import os
import sys

sys.path.insert(0, "docs/perf/2026-12-05-session38")
import loop_profile as lp  # noqa: E402

lp.dl.PAGE = 16
lp.dl.CASES.setdefault("b128_p2k", (128, 2048, False))
OWN, CASE, OUT = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class OwnTokensPaged(lp.dl.ChunktreePagedGraph):
    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        super().__init__(torch, layers, batch, prompt, distinct, total_steps + OWN, inputs)
        per_seq = (total_steps + OWN + lp.dl.PAGE - 1) // lp.dl.PAGE
        self.own = lp.dl.PageTable([OWN] * batch, len(self.shared), per_seq)


batch, prompt, distinct = lp.dl.CASES[CASE]
inputs = lp.dl.Inputs(lp.torch, 32, batch)
loop = OwnTokensPaged(lp.torch, 32, batch, prompt, distinct, 10, inputs)
for i in range(8):
    loop.step(i)
lp.torch.cuda.synchronize()
os.environ["CHUNKTREE_TILE_TRACE"] = OUT
os.environ["CHUNKTREE_TILE_TRACE_REPLAYED"] = "1"
inputs.out[0] = loop.wrapper.run(inputs.q[0], loop.caches[0])
lp.torch.cuda.synchronize()
print(f"{CASE} own {OWN}: traced layer 32 of step 8 ({OWN + 8} own tokens)")
