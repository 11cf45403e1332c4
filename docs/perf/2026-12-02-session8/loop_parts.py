"""Where chunktree-graph's host time goes inside the decode loop itself (bench/decode_loop.py's
ChunktreeGraph, 32 layers): each part of the step timed alone, median µs over the steps."""
import statistics, sys, time
sys.path.insert(0, "bench")
import torch
import decode_loop as dl
import chunktree as ct
from chunktree import _core

def main(name, steps=40, warmup=4):
    batch, prompt, distinct = dl.CASES[name]
    inputs = dl.Inputs(torch, 32, batch)
    loop = dl.ChunktreeGraph(torch, 32, batch, prompt, distinct, steps + warmup, inputs)
    att = loop.attention
    names = ("append_batch", "numpy store", "slots.copy_", "_handles", "_plan_options", "make_plan_into", "_stream", "update", "Plan()", "replay", "sync")
    parts = {k: [] for k in names}
    for i in range(steps + warmup):
        if i == 0:
            loop.step(0); torch.cuda.synchronize(); continue
        t = [time.perf_counter()]
        got = loop.cache.append_batch(loop.seqs, [50_000 + i] * batch); t.append(time.perf_counter())
        loop.slots_host.numpy()[:] = got; t.append(time.perf_counter())
        loop.slots.copy_(loop.slots_host, non_blocking=True); t.append(time.perf_counter())
        handles = ct._handles(loop.seqs, "batch"); t.append(time.perf_counter())
        options = ct._plan_options(att._cache, att._min_shared_rows, att._max_item_tokens, 1, att._heads); t.append(time.perf_counter())
        planned = att._spare_plan
        _core.make_plan_into(planned, att._cache._cache, handles, *options); t.append(time.perf_counter())
        stream = ct._stream(None, None); t.append(time.perf_counter())
        att._device.update(att._cache._cache, planned, stream); t.append(time.perf_counter())
        att._spare_plan = att._plan._plan; att._plan = ct.Plan(att._cache, planned); t.append(time.perf_counter())
        loop.graph.replay(); t.append(time.perf_counter())
        torch.cuda.synchronize(); t.append(time.perf_counter())
        if i >= warmup:
            for k, a, b in zip(names, t, t[1:]):
                parts[k].append((b - a) * 1e6)
    host = [sum(v[j] for k, v in parts.items() if k != "sync") for j in range(steps)]
    print(f"{name}: host {statistics.median(host):.1f} | " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in parts.items()))

for case in sys.argv[1:] or ("b64_p4k", "b8_p1k"):
    main(case)
