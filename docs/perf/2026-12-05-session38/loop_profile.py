"""Session 38, call 1: where the decode loop's GPU time goes. bench/decode_loop.py's chunktree-graph
step (32 layers, 32 q / 8 kv heads, d 128) replays one CUDA graph per step: every layer's write_kv,
then CacheAttention.run (wgmma kernel on a forked stream, mma.sync kernel, merge). Its GPU part is
~30 us a layer where the layer's floor is ~5.5. This replays the graph of a warmed-up loop under
torch.profiler (CUPTI kernel records) and prints, per case, medians over the profiled steps of: the
replay's span (first kernel start to last kernel end), each kernel kind's summed duration per layer,
and the layer's critical path split into kernels and the gaps between them.
Usage: python3 loop_profile.py [CASE ...] (needs the chunktree wheel on PYTHONPATH, torch, bench/)."""
import collections
import statistics
import sys

sys.path.insert(0, "bench")
import torch  # noqa: E402

import decode_loop as dl  # noqa: E402


def kind(name):
    for key in ("write_kv", "wgmma", "mma_sync", "merge", "scatter"):
        if key in name:
            return key
    return name[:40]


def plan_cache_step(loop, i):
    """The chunktree-graph step's host part: append and plan (the replay follows)."""
    loop.cache.append_batch(loop.seqs, [50_000 + i] * len(loop.seqs))
    loop.attention.plan(loop.seqs)


def replay_kernels(replay):
    """The kernel records (CUPTI, through torch.profiler) of one call of replay(), by start time."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        replay()
        torch.cuda.synchronize()
    return sorted((e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA and e.device_time_total > 0
                   and "Memcpy" not in e.name and "Memset" not in e.name), key=lambda e: e.time_range.start)


def timeline(events):
    """(first kernel's start, span to the last kernel's end, each kind's summed duration, time on the
    GPU with no kernel running: the span less the union of the kernels' intervals)."""
    start = events[0].time_range.start
    end = max(e.time_range.end for e in events)
    sums = collections.Counter()
    busy, cursor = 0.0, start
    for e in events:
        sums[kind(e.name)] += e.time_range.end - e.time_range.start
        s, t = max(e.time_range.start, cursor), e.time_range.end
        if t > s:
            busy += t - s
            cursor = t
    return start, end - start, sums, end - start - busy


def profile_case(name, layers=32, warmup=6, steps=8, loop_class=dl.ChunktreeGraph, plan_step=plan_cache_step):
    batch, prompt, distinct = dl.CASES[name]
    inputs = dl.Inputs(torch, layers, batch)
    loop = loop_class(torch, layers, batch, prompt, distinct, warmup + steps + 2, inputs)
    for i in range(warmup):
        loop.step(i)
        torch.cuda.synchronize()
    spans, per_kind, gaps = [], collections.defaultdict(list), []
    for i in range(warmup, warmup + steps):
        plan_step(loop, i)
        torch.cuda.synchronize()
        events = replay_kernels(loop.graph.replay)
        if not events:
            print(f"{name}: no kernel records")
            return
        start, span, sums, idle = timeline(events)
        spans.append(span)
        for k, v in sums.items():
            per_kind[k].append(v / layers)
        gaps.append(idle / layers)
        if i == warmup:
            print(f"{name}: kernels of layer 1 (us from the replay's first kernel: start, duration, name)")
            per_layer = len(events) // layers
            for e in events[per_layer:2 * per_layer]:
                print(f"    {e.time_range.start - start:9.1f} {e.time_range.end - e.time_range.start:7.1f}  {kind(e.name):10s} {e.name[:90]}")
    med = statistics.median
    print(f"{name}: replay span {med(spans):.1f} us ({med(spans) / layers:.2f} a layer); per layer: "
          + ", ".join(f"{k} {med(v):.2f}" for k, v in sorted(per_kind.items())) + f"; no kernel running {med(gaps):.2f}")


if __name__ == "__main__":  # (session 40 imports profile_case for the engine path's loop)
    for case in sys.argv[1:] or ("b64_p4k", "b256_p2k", "b8_p1k", "b8_p1k_distinct"):
        profile_case(case)
        torch.cuda.empty_cache()
