#!/usr/bin/env python3
"""N sequences share a system prompt and decode M steps through chunktree's prefix cache.

Each step appends one token to every sequence, writes its K and V, re-plans, and runs attention;
the same step is computed by torch SDPA over per-sequence KV (the no-sharing way) and compared.
Prints the attention time per step for both and the KV memory the shared prefix saves.

    python3 examples/shared_prompt_decode.py [--device cuda|cpu] [--sequences N] [--steps M] [--prompt P]

On a GPU (Hopper) the cache lives on the device and tensors are torch bf16; on the CPU the cache is
float32 and SDPA runs on the CPU (without torch, a numpy reference stands in for SDPA).
"""
import argparse
import time

import numpy as np

import chunktree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if chunktree.hopper_visible() else "cpu")
    parser.add_argument("--sequences", type=int, default=None, help="default: 64 on the GPU, 8 on the CPU")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=None, help="shared tokens; default 4096 on the GPU, 512 on the CPU")
    parser.add_argument("--q-heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=128)
    args = parser.parse_args()
    gpu = args.device == "cuda"
    n = args.sequences or (64 if gpu else 8)
    prompt_len = args.prompt or (4096 if gpu else 512)
    hq, hkv, d = args.q_heads, args.kv_heads, args.head_dim
    try:
        import torch
    except ImportError:
        torch = None
    if gpu and torch is None:
        raise SystemExit("--device cuda needs torch")

    rng = np.random.default_rng(0)
    chunk = 64
    capacity = (prompt_len + args.steps) // chunk * 2 + n * (args.steps // chunk + 2) + 16
    cache = chunktree.PrefixCache(num_kv_heads=hkv, head_dim=d, capacity_chunks=capacity, chunk_size=chunk,
                                  dtype="bf16" if gpu else "f32", device=args.device)

    def new_kv(tokens):
        """K and V of `tokens` new tokens: torch bf16 on the GPU, numpy float32 on the CPU."""
        if gpu:
            return (torch.randn(tokens, hkv, d, device="cuda", dtype=torch.bfloat16),
                    torch.randn(tokens, hkv, d, device="cuda", dtype=torch.bfloat16))
        return tuple(rng.standard_normal((tokens, hkv, d)).astype(np.float32) for _ in range(2))

    # The system prompt once, then every sequence: the cache shares the prompt by itself.
    prompt = list(range(prompt_len))
    prompt_k, prompt_v = new_kv(prompt_len)
    seqs = []
    own_k = [[] for _ in range(n)]
    own_v = [[] for _ in range(n)]
    for s in range(n):
        added = cache.add(prompt + [100_000 + s])
        if s == 0:
            k, v = new_kv(1)
            cache.write_kv(0, added.slots, (torch.cat if gpu else np.concatenate)([prompt_k, k]),
                           (torch.cat if gpu else np.concatenate)([prompt_v, v]))
        else:
            k, v = new_kv(1)
            cache.write_kv(0, added.slots, k, v)
        own_k[s].append(k)
        own_v[s].append(v)
        seqs.append(added.seq)

    def per_sequence_kv():
        """[n, hkv, len, d] K and V for SDPA: the prompt copied into every sequence (no sharing)."""
        cat = torch.cat if torch is not None and gpu else np.concatenate
        ks = [cat([prompt_k] + own_k[s]) for s in range(n)]
        vs = [cat([prompt_v] + own_v[s]) for s in range(n)]
        if torch is None:
            return np.stack(ks).transpose(0, 2, 1, 3), np.stack(vs).transpose(0, 2, 1, 3)
        as_torch = (lambda x: x) if gpu else torch.from_numpy
        return (torch.stack([as_torch(k) for k in ks]).transpose(1, 2).contiguous(),
                torch.stack([as_torch(v) for v in vs]).transpose(1, 2).contiguous())

    def timed(fn):
        if gpu:
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            fn()  # warm: the first call uploads the plan
            start.record()
            result = fn()
            stop.record()
            torch.cuda.synchronize()
            return result, start.elapsed_time(stop) * 1e3
        begin = time.perf_counter()
        result = fn()
        return result, (time.perf_counter() - begin) * 1e6

    print(f"{n} sequences, {prompt_len}-token shared prompt, {hq}/{hkv} heads, d {d}, {args.device}"
          f"{'' if torch is not None else ' (no torch: a numpy reference instead of SDPA)'}")
    print(f"{'step':>4} {'tokens/seq':>10} {'chunktree us':>13} {'sdpa us' if torch is not None else 'numpy us':>10} {'max |diff|':>11}")
    scale = 1.0 / np.sqrt(d)
    for step in range(args.steps):
        for s in range(n):
            slots = cache.append(seqs[s], [200_000 + 1000 * s + step])
            k, v = new_kv(1)
            cache.write_kv(0, slots, k, v)
            own_k[s].append(k)
            own_v[s].append(v)
        plan = chunktree.make_plan(cache, seqs, num_q_heads=hq)
        if gpu:
            q = torch.randn(n, hq, d, device="cuda", dtype=torch.bfloat16)
        else:
            q = rng.standard_normal((n, hq, d)).astype(np.float32)
        ours, ours_us = timed(lambda: chunktree.attend(cache, plan, q))
        k_all, v_all = per_sequence_kv()
        if torch is not None:
            tq = q if gpu else torch.from_numpy(q)
            sdpa = lambda: torch.nn.functional.scaled_dot_product_attention(tq.unsqueeze(2), k_all, v_all, enable_gqa=hq != hkv).squeeze(2)
            theirs, theirs_us = timed(sdpa)
            diff = (ours.float() - theirs.float()).abs().max().item() if gpu else float(np.abs(ours - theirs.numpy()).max())
        else:
            def numpy_attention():
                keys = np.repeat(k_all, hq // hkv, axis=1)
                values = np.repeat(v_all, hq // hkv, axis=1)
                scores = np.einsum("nhd,nhld->nhl", q, keys) * scale
                weights = np.exp(scores - scores.max(-1, keepdims=True))
                return np.einsum("nhl,nhld->nhd", weights / weights.sum(-1, keepdims=True), values)
            theirs, theirs_us = timed(numpy_attention)
            diff = float(np.abs(ours - theirs).max())
        print(f"{step:>4} {cache.length(seqs[0]):>10} {ours_us:>13.1f} {theirs_us:>10.1f} {diff:>11.2e}")
        if diff > (5e-2 if gpu else 1e-3):
            raise SystemExit(f"step {step}: chunktree and the reference differ by {diff}")

    stats = cache.stats()
    bytes_per_token = 2 * hkv * d * (2 if gpu else 4)
    saved = (stats["tokens_without_sharing"] - stats["tokens_stored"]) * bytes_per_token
    print(f"KV stored: {stats['tokens_stored']} tokens ({stats['tokens_stored'] * bytes_per_token / 2**20:.1f} MiB) instead of "
          f"{stats['tokens_without_sharing']} ({stats['tokens_without_sharing'] * bytes_per_token / 2**20:.1f} MiB): "
          f"{saved / 2**20:.1f} MiB saved ({100 * saved / (stats['tokens_without_sharing'] * bytes_per_token):.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
