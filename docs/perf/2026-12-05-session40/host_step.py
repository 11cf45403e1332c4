#!/usr/bin/env python3
"""Where the decode loop's chunktree-graph step spends its host time (session 40; a diagnostic, not
a benchmark row): bench/decode_loop.py's ChunktreeGraph step for b64_p4k (and b256_p2k), taken
apart statement by statement with perf_counter stamps, the GPU idle at each step's start as in
decode_loop's time_steps (synchronized after each step). Medians over the steps after warm-up, µs.

    PYTHONPATH=SITE:bench python3 host_step.py [--steps 40]
"""
import argparse
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, "bench")
import decode_loop as dl  # noqa: E402
from chunktree import _cache as cache_module  # noqa: E402
from chunktree._arguments import _stream  # noqa: E402


def profile(name, steps, warmup, layers=32):
    batch, prompt, distinct = dl.CASES[name]
    inputs = dl.Inputs(torch, layers, batch)
    loop = dl.ChunktreeGraph(torch, layers, batch, prompt, distinct, warmup + steps + 4, inputs)
    attention = loop.attention
    stamps = {}
    for i in range(warmup + steps):
        t = [time.perf_counter()]
        tokens = [50_000 + i] * len(loop.seqs); t.append(time.perf_counter())
        slots = loop.cache.append_batch(loop.seqs, tokens); t.append(time.perf_counter())
        loop.slots_host.numpy()[:] = slots; t.append(time.perf_counter())
        loop.slots.copy_(loop.slots_host, non_blocking=True); t.append(time.perf_counter())
        # CacheAttention.plan, statement by statement (its _plan_step)
        seqs = cache_module._handles(loop.seqs, "batch"); t.append(time.perf_counter())
        options = cache_module._plan_options(attention._cache, attention._min_shared_rows, attention._max_item_tokens, 1, attention._heads)
        t.append(time.perf_counter())
        planned = attention._spare_plan
        cache_module._core.make_plan_into(planned, attention._cache._cache, seqs, *options); t.append(time.perf_counter())
        stream = _stream(None, None); t.append(time.perf_counter())
        attention._device.update(attention._cache._cache, planned, stream); t.append(time.perf_counter())
        if attention._plan is not None:
            attention._spare_plan = attention._plan._plan
            attention._plan._retired = True
        else:
            attention._spare_plan = cache_module._core.Plan()
        attention._plan = cache_module.Plan(attention._cache, planned)
        attention._rows = len(seqs); t.append(time.perf_counter())
        if loop.graph is None:
            loop.capture()
        t.append(time.perf_counter())
        loop.graph.replay(); t.append(time.perf_counter())
        torch.cuda.synchronize(); t.append(time.perf_counter())
        if i >= warmup:
            for label, a, b in (("token list", 0, 1), ("append_batch", 1, 2), ("slots into pinned", 2, 3), ("slot copy_", 3, 4),
                                ("_handles", 4, 5), ("_plan_options", 5, 6), ("make_plan_into", 6, 7), ("_stream", 7, 8),
                                ("DevicePlan.update", 8, 9), ("Plan wrapper", 9, 10), ("graph.replay", 11, 12), ("host total", 0, 12),
                                ("step (to sync)", 0, 13)):
                stamps.setdefault(label, []).append((t[b] - t[a]) * 1e6)
    print(f"== {name}: {batch} sequences, {layers} layers, medians of {steps} steps (us)")
    for label, values in stamps.items():
        print(f"  {label:20s} {statistics.median(values):9.1f}   (min {min(values):.1f})")
    # The same update without a fresh plan, and make_plan alone, in a tight loop: the calls' own cost.
    for label, call in (("update alone", lambda: attention._device.update(attention._cache._cache, planned, stream)),
                        ("make_plan_into alone", lambda: cache_module._core.make_plan_into(planned, attention._cache._cache, seqs, *options)),
                        ("torch current stream", lambda: _stream(None, None)),
                        ("copy_ alone", lambda: loop.slots.copy_(loop.slots_host, non_blocking=True))):
        times = []
        for _ in range(50):
            a = time.perf_counter(); call(); times.append((time.perf_counter() - a) * 1e6)
        torch.cuda.synchronize()
        print(f"  {label:20s} {statistics.median(times):9.1f}   (min {min(times):.1f})")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=4)
    parser.add_argument("--cases", default="b64_p4k,b256_p2k")
    args = parser.parse_args()
    print(torch.cuda.get_device_name(), np.__version__, torch.__version__)
    for name in args.cases.split(","):
        profile(name, args.steps, args.warmup)


if __name__ == "__main__":
    main()
