#!/usr/bin/env python3
"""Tensor-parallel decode with chunktree under torch.distributed, as an engine runs a model that
outgrows one GPU: attention heads split across ranks, each rank with its own paged KV.

N samples of one prompt decode a few steps through L attention layers. Rank r of N holds kv heads
[r·K/N, (r+1)·K/N) of every layer in its own page pools (and the q heads that read them), while the
page table (which pages each sample reads: the prompt's shared, then its own) is the same on every
rank, as in an engine whose scheduler broadcasts it. Every step each rank writes its heads' K and V
of the new tokens, plans the same table with `chunktree.PagedAttention` (the plans' fingerprints
are gathered and must be equal on every rank), runs each layer's attention over its pages, gathers
the output heads (all_gather) and applies its slice of a row-parallel output projection
(all_reduce), as Megatron-style tensor parallelism does. Rank 0 checks both against one process
that holds all heads: the gathered heads bitwise where the kernels' choices are the same (always on
the CPU backend; on GPUs the item split may differ with the head count: then within bf16's
tolerance), the projection within the dtype's tolerance (the all_reduce sums in another order); and
the gathered heads against dense softmax attention in float64 over each sample's tokens, which
checks the page table itself.

    torchrun --nproc-per-node 2 examples/tensor_parallel_decode.py [--device cpu|cuda] [--samples 8]
        [--prompt 300] [--steps 4] [--layers 2] [--q-heads 16] [--kv-heads 4] [--head-dim 128]

NCCL on GPUs (one per rank, Hopper), gloo on the CPU backend. Without torchrun it runs as one rank.
Prints each rank's attention time per step; exits 0 when every check holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist

import chunktree

PAGE = 16


class PageTable:
    """The samples' page lists, the same on every rank: the prompt's full pages shared, then each
    sample's own pages (the first starting with a copy of the prompt's partly filled last page)."""

    def __init__(self, prompt: int, samples: int, steps: int):
        self.prompt_pages = list(range(prompt // PAGE))
        self.remainder = prompt % PAGE  # the prompt's tokens in its partly filled last page
        own = -(-(self.remainder + steps) // PAGE)
        first_own = len(self.prompt_pages)
        self.own_pages = [list(range(first_own + s * own, first_own + (s + 1) * own)) for s in range(samples)]
        self.num_pages = first_own + samples * own
        self.lengths = [prompt] * samples

    def slot(self, sample: int, position: int) -> tuple[int, int]:
        """Where token `position` of a sample lies: (page, slot in page)."""
        page = position // PAGE
        pages = self.prompt_pages + self.own_pages[sample]
        return pages[page], position % PAGE

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """kv_indptr, kv_indices, kv_last_page_len (FlashInfer's format), int32."""
        indices, indptr, last = [], [0], []
        for sample, length in enumerate(self.lengths):
            pages = (self.prompt_pages + self.own_pages[sample])[:-(-length // PAGE)]
            indices += pages
            indptr.append(len(indices))
            last.append(length - (len(pages) - 1) * PAGE)
        return np.array(indptr, np.int32), np.array(indices, np.int32), np.array(last, np.int32)


def write_tokens(pools: list[torch.Tensor], table: PageTable, sample_positions: list[tuple[int, int]], k: torch.Tensor,
                 v: torch.Tensor) -> None:
    """Writes K and V [layers, tokens, kv heads, d] of tokens (sample, position) into pools[layer]
    [pages, 2, PAGE, kv heads, d]."""
    where = [table.slot(sample, position) for sample, position in sample_positions]
    pages = torch.tensor([p for p, _ in where], dtype=torch.long, device=pools[0].device)
    slots = torch.tensor([s for _, s in where], dtype=torch.long, device=pools[0].device)
    for layer, pool in enumerate(pools):
        pool[pages, 0, slots] = k[layer].to(pool.device, pool.dtype)
        pool[pages, 1, slots] = v[layer].to(pool.device, pool.dtype)


def dense_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """softmax(q·Kᵀ/√d)·V in float64 over every token of each sample: q [samples, q heads, d], keys and
    values [samples, tokens, kv heads, d]; q head h reads kv head h // (q heads / kv heads)."""
    group = q.shape[1] // keys.shape[2]
    k = keys.double().repeat_interleave(group, dim=2)
    v = values.double().repeat_interleave(group, dim=2)
    scores = torch.einsum("shd,sthd->sht", q.double(), k) / q.shape[-1] ** 0.5
    return torch.einsum("sht,sthd->shd", torch.softmax(scores, dim=-1), v)


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double().cpu()
    return ((got.double().cpu() - expected).norm() / expected.norm()).item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=300)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--q-heads", type=int, default=16)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name, default in (("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29511"), ("RANK", "0"), ("WORLD_SIZE", "1")):
        os.environ.setdefault(name, default)  # without torchrun: one rank
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    for name in ("samples", "prompt", "steps", "layers", "q_heads", "kv_heads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.kv_heads % world != 0 or args.q_heads % args.kv_heads != 0:
        parser.error(f"--kv-heads ({args.kv_heads}) must be a multiple of the ranks ({world}) and divide --q-heads ({args.q_heads})")
    if args.device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", rank))
        if local >= torch.cuda.device_count():
            parser.error(f"rank {rank} needs GPU {local}, but {torch.cuda.device_count()} are visible: one GPU per rank")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if args.device == "cuda" else "gloo", device_id=device if args.device == "cuda" else None)
    try:
        return run(args, rank, world, device)
    finally:
        dist.destroy_process_group()


def run(args: argparse.Namespace, rank: int, world: int, device: torch.device) -> int:
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32  # the GPU backend reads 16-bit KV
    layers, samples, d = args.layers, args.samples, args.head_dim
    kv_local, q_local = args.kv_heads // world, args.q_heads // world
    kv_slice, q_slice = slice(rank * kv_local, (rank + 1) * kv_local), slice(rank * q_local, (rank + 1) * q_local)
    synchronize = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)

    # Every rank draws the whole model's numbers from one seed and keeps its heads: an engine's rank
    # computes only its own (its slice of the QKV projection), which gives the same tensors.
    generator = torch.Generator().manual_seed(args.seed)
    draw = lambda *shape: torch.randn(*shape, generator=generator).to(dtype)  # noqa: E731
    table = PageTable(args.prompt, samples, args.steps)
    hidden = args.q_heads * d
    o_proj = (draw(hidden, hidden) / hidden**0.5).to(device)  # row-parallel: rank r multiplies its heads' rows

    pools = [torch.zeros(table.num_pages, 2, PAGE, kv_local, d, dtype=dtype, device=device) for _ in range(layers)]
    reference = rank == 0
    full_pools = [torch.zeros(table.num_pages, 2, PAGE, args.kv_heads, d, dtype=dtype, device=device) for _ in range(layers)] if reference else []

    def write(positions: list[tuple[int, int]], k: torch.Tensor, v: torch.Tensor) -> None:
        write_tokens(pools, table, positions, k[:, :, kv_slice], v[:, :, kv_slice])
        if reference:
            write_tokens(full_pools, table, positions, k, v)

    # The prompt, written once into the shared pages; its partly filled last page into each sample's first own page.
    prompt_k, prompt_v = draw(layers, args.prompt, args.kv_heads, d), draw(layers, args.prompt, args.kv_heads, d)
    new_k, new_v = [], []  # rank 0: every step's tokens, for the dense reference
    write([(0, p) for p in range(args.prompt)], prompt_k, prompt_v)
    tail = range(args.prompt - table.remainder, args.prompt)
    for sample in range(1, samples if table.remainder else 1):
        write([(sample, p) for p in tail], prompt_k[:, list(tail)], prompt_v[:, list(tail)])

    options = {"num_threads": 2} if args.device == "cpu" else {}
    attention = chunktree.PagedAttention(device=args.device, **options)
    one_process = chunktree.PagedAttention(device=args.device, **options) if reference else None
    failures, plans_differ, worst_heads, worst_dense, worst_projection, bitwise = 0, 0, 0.0, 0.0, 0.0, True
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    seconds = 0.0
    for step in range(args.steps):
        k_new, v_new = draw(layers, samples, args.kv_heads, d), draw(layers, samples, args.kv_heads, d)
        q = draw(layers, samples, args.q_heads, d).to(device)
        write([(s, table.lengths[s]) for s in range(samples)], k_new, v_new)
        if reference:
            new_k.append(k_new)
            new_v.append(v_new)
        table.lengths = [length + 1 for length in table.lengths]
        indptr, indices, last = table.arrays()

        synchronize()
        started = time.perf_counter()
        attention.plan(indptr, indices, last, q_local, kv_local, d, PAGE)
        heads = [attention.run(q[layer, :, q_slice].contiguous(), pools[layer]) for layer in range(layers)]
        synchronize()
        seconds += time.perf_counter() - started

        # The same schedule on every rank: the plans' fingerprints, gathered.
        fingerprint = attention.plan_fingerprint()
        fingerprints = [None] * world
        dist.all_gather_object(fingerprints, fingerprint)
        if len(set(fingerprints)) != 1:
            plans_differ += 1
            if reference:
                print(f"step {step}: the ranks' plans differ: fingerprints {fingerprints}", file=sys.stderr)

        for layer in range(layers):
            gathered = [torch.empty_like(heads[layer]) for _ in range(world)]
            dist.all_gather(gathered, heads[layer])
            all_heads = torch.cat(gathered, dim=1)  # [samples, q heads, d], heads in rank order
            projected = heads[layer].flatten(1).float() @ o_proj[q_slice.start * d:q_slice.stop * d].float()
            dist.all_reduce(projected)
            if not reference:
                continue
            try:  # rank 0 alone: an exception here must not leave the other ranks waiting in a collective
                if layer == 0:
                    one_process.plan(indptr, indices, last, args.q_heads, args.kv_heads, d, PAGE)
                expected = one_process.run(q[layer], full_pools[layer])
                keys = torch.cat([prompt_k[layer].expand(samples, -1, -1, -1), torch.stack([k[layer] for k in new_k], 1)], 1)
                values = torch.cat([prompt_v[layer].expand(samples, -1, -1, -1), torch.stack([v[layer] for v in new_v], 1)], 1)
                dense = dense_attention(q[layer].cpu(), keys, values)
            except Exception as error:  # noqa: BLE001 (reported and counted)
                failures += 1
                print(f"step {step} layer {layer}: the one-process reference failed: {error!r}", file=sys.stderr)
                continue
            same = torch.equal(all_heads, expected)
            bitwise &= same
            heads_error = relative_error(all_heads, expected)
            dense_error = relative_error(all_heads, dense)
            projection_error = relative_error(projected, expected.flatten(1).float() @ o_proj.float())
            errors = (heads_error, dense_error, projection_error)
            worst_heads, worst_dense, worst_projection = (float(np.maximum(w, e)) for w, e in
                                                          zip((worst_heads, worst_dense, worst_projection), errors))  # NaN stays
            # Bitwise is required where both ran the same kernels: always on the CPU backend. NaN fails every bound.
            must_match = args.device == "cpu"
            if (must_match and not same) or not all(e <= tolerance for e in errors):
                failures += 1
                print(f"step {step} layer {layer}: gathered heads {'match' if same else 'differ'} (relative error {heads_error:.2e}; "
                      f"against dense softmax attention {dense_error:.2e}), projection error {projection_error:.2e}", file=sys.stderr)

    times = [None] * world
    dist.all_gather_object(times, seconds / args.steps * 1e6)
    flags = torch.tensor([failures + (plans_differ if reference else 0)], device=device)  # every rank saw the same fingerprints
    dist.all_reduce(flags)
    if reference:
        kind = "CPU (gloo)" if args.device == "cpu" else f"{torch.cuda.get_device_name(device)} (NCCL)"
        print(f"{world} rank(s) on {kind}: {samples} samples of a {args.prompt}-token prompt, {args.steps} steps, {layers} layers, "
              f"{args.q_heads} q / {args.kv_heads} kv heads of d {d} ({q_local} / {kv_local} per rank); plans identical on every rank "
              f"at every step: {'yes' if plans_differ == 0 else f'no, at {plans_differ} of {args.steps} steps'}")
        print(f"gathered heads against one process with all heads: {'bitwise equal' if bitwise else 'not bitwise'}, worst relative "
              f"error {worst_heads:.2e}; against dense softmax attention over each sample's tokens: {worst_dense:.2e}; row-parallel "
              f"projection after all_reduce: worst relative error {worst_projection:.2e}")
        print("attention per step (plan + every layer), per rank: " + ", ".join(f"rank {r} {t:.0f} us" for r, t in enumerate(times)))
        print("all checks hold" if flags.item() == 0 else f"{flags.item()} checks failed")
    return 0 if flags.item() == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
