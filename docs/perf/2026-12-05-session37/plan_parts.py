"""Session 37, call 4: where CacheAttention.plan()'s host time goes on the device's host (the decode
loop's "plan and upload" is 42-82 us a step at B = 64 where make_plan alone is ~2-4 us). Times, per
call (medians of 400 after 50 warm-up), each part of CacheAttention._plan_step and the step's other
host parts, on one 4096-token prompt forked B ways (the decode loop's b64_p4k shape: 32 q / 8 kv
heads, d 128). Usage: python3 plan_parts.py (needs the chunktree wheel on PYTHONPATH and torch)."""
import statistics
import time

import numpy as np
import torch

import chunktree
from chunktree import _core
from chunktree._arguments import _stream
from chunktree._cache import _plan_options


def median_us(fn, n=400, warm=50):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


t = time.perf_counter(); s = 0
for i in range(10_000_000): s += i
print(f"reference loop: {time.perf_counter() - t:.3f} s")
for batch in (64, 256):
    cache = chunktree.PrefixCache(8, 128, 64 + batch * 4, num_layers=1, chunk_size=64, dtype="bf16", device="cuda")
    first = cache.add(list(range(4096)))
    seqs = [first.seq] + cache.fork(first.seq, batch - 1)
    attention = chunktree.CacheAttention(cache, 32)
    slots_host = torch.empty(batch, 2, dtype=torch.int32).pin_memory()
    slots = torch.empty(batch, 2, dtype=torch.int32, device="cuda")
    step = [0]

    def append():
        step[0] += 1
        slots_host.numpy()[:] = cache.append_batch(seqs, [50_000 + step[0]] * batch)
    options = _plan_options(cache, 2, None, 1, 32)
    planned = _core.Plan()
    device = attention._device
    stream = _stream(None, None)
    rows = {
        "append_batch + numpy copy": append,
        "slots.copy_ (pinned, non_blocking)": lambda: slots.copy_(slots_host, non_blocking=True),
        "_stream(None, None)": lambda: _stream(None, None),
        "torch.cuda.current_stream().cuda_stream": lambda: torch.cuda.current_stream().cuda_stream,
        "_core.make_plan_into": lambda: _core.make_plan_into(planned, cache._cache, seqs, *options),
        "DevicePlan.update (upload)": lambda: device.update(cache._cache, planned, stream),
        "CacheAttention.plan (all)": lambda: attention.plan(seqs),
        "torch.empty(0, device=cuda)": lambda: torch.empty(0, device="cuda"),
    }
    for name, fn in rows.items():
        if name == "append_batch + numpy copy":
            us = median_us(fn, n=100, warm=10)  # each call appends a token
        else:
            us = median_us(fn)
        torch.cuda.synchronize()
        print(f"B={batch:4d}  {name:42s} {us:8.1f} us")
t = time.perf_counter(); s = 0
for i in range(10_000_000): s += i
print(f"reference loop: {time.perf_counter() - t:.3f} s")
