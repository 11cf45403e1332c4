"""Where CacheAttention.plan's host time goes on the device host: B sequences on one prompt, one
token appended per step, each part of plan() timed alone (median µs over the steps)."""
import statistics, sys, time
import torch
import chunktree as ct
from chunktree import _core

def main(batch, prompt, steps=300):
    cache = ct.PrefixCache(8, 128, capacity_chunks=(prompt // 64 + 8) * batch // 8 + 4096, num_layers=1, device="cuda")
    root = cache.add(list(range(prompt))).seq
    seqs = [root] + list(cache.fork(root, batch - 1))
    attention = ct.CacheAttention(cache, num_q_heads=32)
    stream = torch.cuda.current_stream().cuda_stream
    parts = {k: [] for k in ("plan()", "_handles", "make_plan_into", "DevicePlan.update", "current_stream")}
    plan = _core.Plan()
    options = ct._plan_options(cache, 2, None, 1, 32)
    for i in range(steps):
        cache.append_batch(seqs, [7] * batch)
        torch.cuda.synchronize()
        t0 = time.perf_counter(); attention.plan(seqs); t1 = time.perf_counter()
        torch.cuda.synchronize()
        t1b = time.perf_counter(); handles = ct._handles(seqs, "batch"); t2 = time.perf_counter()
        _core.make_plan_into(plan, cache._cache, handles, *options); t3 = time.perf_counter()
        attention._device.update(cache._cache, plan, stream); t4 = time.perf_counter()
        torch.cuda.synchronize()
        t5 = time.perf_counter(); torch.cuda.current_stream().cuda_stream; t6 = time.perf_counter()
        if i >= 20:
            for k, v in zip(parts, (t1 - t0, t2 - t1b, t3 - t2, t4 - t3, t6 - t5)):
                parts[k].append(v * 1e6)
    print(f"B={batch} prompt={prompt}: " + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in parts.items()))

for b in (8, 64, 256, 1024):
    main(b, 2048 if b >= 256 else 4096)
