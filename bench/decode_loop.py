"""The whole decode step as an engine's loop runs it, timed on the wall clock with every host step inside.

Each step appends one token to every sequence, writes its K and V in every layer, plans, and runs
attention in every layer (32 q / 8 kv heads, d 128, bf16, on the GPU). Per implementation:
  chunktree           PrefixCache.append_batch, write_kv per layer (stream-ordered), make_plan, attend per layer
  chunktree-graph     append_batch and CacheAttention.plan on the host; then one CUDA graph, captured once, replays
                      every layer's write_kv (slots in a device tensor, refilled each step) and CacheAttention.run
  flashinfer-decode   page tables per step (numpy), the new token's K and V written into its page (torch indexing,
                      as an engine's cache-write kernel does) and BatchDecodeWithPagedKVCacheWrapper.run per layer,
                      its plan once per step; every sequence has its own pages (no sharing)
  flashinfer-cascade  MultiLevelCascadeAttentionWrapper: level 0 the shared prompt's pages, level 1 each
                      sequence's generated tokens; planned once per step (cases with a shared prompt only)
  chunktree-paged     chunktree.PagedAttention in the same engine loop as flashinfer-decode: one flat page table
                      per sequence (the shared prompt's pages, then its own), planned once per step on the host;
                      chunktree finds the shared pages from their ids
  *-paged-graph,      the same wrappers in FlashInfer's CUDA-graph mode (chunktree's: run() captured as it is): plan per step on the host, then one graph,
                      captured once, replays every layer's page write and run
  sdpa                per-sequence KV [batch, kv heads, len, d] per layer, the new token written in place,
                      torch scaled_dot_product_attention (enable_gqa) per layer
The prompt's KV is written before timing. A step's time is from its first call to the end of its
last kernel (torch.cuda.synchronize); its host time is from its first call until the last call
returns. Medians over --steps steps after --warmup steps.

  python3 bench/decode_loop.py OUT.csv [--cases b64_p4k,...] [--impls chunktree,...] [--layers 32]
                               [--steps 16] [--warmup 3] [--commit HASH] [--ceilings CEILINGS.json]
  python3 bench/decode_loop.py OUT.csv --plot OUT.png      (a run's bars; needs matplotlib)
"""
import argparse
import csv
import datetime
import os
import statistics
import sys
import time

import numpy as np

from cases import Case, Level, case_metrics, floor_us, load_ceilings
from peers import flashinfer_module  # FlashInfer with its prebuilt modules

Q_HEADS, KV_HEADS, DIM, PAGE = 32, 8, 128, 16
# name: (sequences, prompt tokens, whether every sequence has its own prompt)
CASES = {
    "b64_p4k": (64, 4096, False),
    "b256_p2k": (256, 2048, False),
    "b8_p1k": (8, 1024, False),
    "b8_p1k_distinct": (8, 1024, True),
}
IMPLS = ("chunktree", "chunktree-graph", "chunktree-paged", "chunktree-paged-graph", "flashinfer-decode", "flashinfer-decode-graph",
         "flashinfer-cascade", "flashinfer-cascade-graph", "sdpa")
COLUMNS = ["case", "impl", "layers", "batch", "q_heads", "kv_heads", "head_dim", "prompt_tokens", "steps", "us_per_step",
           "host_us_per_step", "floor_us", "x_floor", "card", "date", "commit", "note"]


def step_floor_us(batch, prompt, distinct, generated, layers, ceilings):
    """The step's floor: every layer's unique KV (the prompt once, or once per sequence when
    distinct, and each sequence's generated tokens), q and out at HBM speed or its FLOPs at the
    tensor rate, whichever is longer (bench/cases.py's floor_us per layer), plus the new K and V
    written; `generated` tokens per sequence (the median step's)."""
    case = Case("decode-loop", "", batch, Q_HEADS, KV_HEADS, DIM, 64, [Level(batch if distinct else 1, prompt)], generated)
    per_layer = floor_us(case_metrics(case), ceilings)
    written = 2.0 * 2 * batch * KV_HEADS * DIM / float(ceilings["hbm_bytes_per_s"]) * 1e6
    return layers * (per_layer + written)


class Inputs:
    """One step's new q, k and v per layer (the same every step: the model's work is not timed)."""

    def __init__(self, torch, layers, batch):
        self.q = torch.randn(layers, batch, Q_HEADS, DIM, device="cuda").bfloat16()
        self.k = torch.randn(layers, batch, KV_HEADS, DIM, device="cuda").bfloat16()
        self.v = torch.randn(layers, batch, KV_HEADS, DIM, device="cuda").bfloat16()
        self.out = torch.empty_like(self.q)


def write_and_attend_pages(wrapper, caches, where, inputs):
    """Every layer: K and V of one token per sequence into their pages ([pages, 2, PAGE, kv heads,
    d]), then the planned FlashInfer wrapper's attention."""
    page, offset = where
    for layer, cache in enumerate(caches):
        cache[page, 0, offset] = inputs.k[layer]
        cache[page, 1, offset] = inputs.v[layer]
        inputs.out[layer] = wrapper.run(inputs.q[layer], cache)


def prompt_tokens(case_prompt, distinct, b):
    """Token ids of sequence b's prompt: one shared prompt, or a first token of its own."""
    return ([1_000_000 + b] if distinct else [0]) + list(range(1, case_prompt))


class Chunktree:
    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        import chunktree
        self.chunktree, self.inputs, self.layers = chunktree, inputs, layers
        chunks = lambda tokens: (tokens + 63) // 64  # noqa: E731 - the cache's default chunk size
        per_seq = chunks(total_steps) + 1
        capacity = batch * (chunks(prompt) + per_seq) if distinct else chunks(prompt) + batch * per_seq
        self.phases = []
        self.cache = chunktree.PrefixCache(num_layers=layers, num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=capacity,
                                           dtype="bf16", device="cuda")
        if distinct:
            added = [self.cache.add(prompt_tokens(prompt, True, b)) for b in range(batch)]
            self.seqs = [a.seq for a in added]
            slots = np.concatenate([a.slots for a in added])
        else:
            first = self.cache.add(prompt_tokens(prompt, False, 0))
            self.seqs = [first.seq] + self.cache.fork(first.seq, batch - 1)
            slots = first.slots
        for layer in range(layers):
            kv = torch.randn(2, len(slots), KV_HEADS, DIM, device="cuda").bfloat16()
            self.cache.write_kv(layer, slots, kv[0], kv[1])
        torch.cuda.synchronize()

    def step(self, i):
        start = time.perf_counter()
        slots = self.cache.append_batch(self.seqs, [50_000 + i] * len(self.seqs))
        appended = time.perf_counter()
        plan = self.chunktree.make_plan(self.cache, self.seqs, num_q_heads=Q_HEADS)
        planned = time.perf_counter()
        x = self.inputs
        for layer in range(self.layers):
            self.cache.write_kv(layer, slots, x.k[layer], x.v[layer])
            self.chunktree.attend(self.cache, plan, x.q[layer], layer=layer, out=x.out[layer])
            if layer == 0:
                first_layer = time.perf_counter()
        self.phases.append((appended - start, planned - appended, first_layer - planned, (time.perf_counter() - first_layer) / max(1, self.layers - 1)))

    def note(self, steps):
        """The host step's parts, medians of the timed steps, in µs."""
        parts = zip(*self.phases[-steps:])
        names = ("append_batch", "make_plan", "layer 0 (write_kv, upload, attend)", "each later layer (write_kv, attend)")
        return "host: " + ", ".join(f"{name} {statistics.median(values) * 1e6:.0f}" for name, values in zip(names, parts))


class ChunktreeGraph(Chunktree):
    """The step as a serving engine would run it: the host appends and plans; one graph replay does
    the rest."""

    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        super().__init__(torch, layers, batch, prompt, distinct, total_steps, inputs)
        self.torch = torch
        self.attention = self.chunktree.CacheAttention(self.cache, num_q_heads=Q_HEADS)
        self.slots_host = torch.empty(batch, 2, dtype=torch.int32).pin_memory()
        self.slots = torch.empty(batch, 2, dtype=torch.int32, device="cuda")
        self.graph = None

    def capture(self):
        x = self.inputs
        self.graph = self.torch.cuda.CUDAGraph()
        with self.torch.cuda.graph(self.graph):
            for layer in range(self.layers):
                self.cache.write_kv(layer, self.slots, x.k[layer], x.v[layer])
                self.attention.run(x.q[layer], layer=layer, out=x.out[layer])

    def step(self, i):
        start = time.perf_counter()
        self.slots_host.numpy()[:] = self.cache.append_batch(self.seqs, [50_000 + i] * len(self.seqs))
        self.slots.copy_(self.slots_host, non_blocking=True)
        appended = time.perf_counter()
        self.attention.plan(self.seqs)
        planned = time.perf_counter()
        if self.graph is None:
            self.capture()  # in the first (warm-up) step
        self.graph.replay()
        self.phases.append((appended - start, planned - appended, time.perf_counter() - planned))

    def note(self, steps):
        parts = zip(*self.phases[-steps:])
        names = ("append_batch and slot copy", "plan and upload", "graph replay")
        return "host: " + ", ".join(f"{name} {statistics.median(values) * 1e6:.0f}" for name, values in zip(names, parts))


class PageTable:
    """Sequences of growing length in fixed page ranges (sequence b owns pages first + b·per_seq + j)."""

    def __init__(self, lengths, first, per_seq):
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.first, self.per_seq = first, per_seq

    def grow(self, torch):
        """One more token for every sequence; returns the (page, offset) tensors where it goes."""
        at = self.lengths.copy()
        self.lengths += 1
        page = (self.first + np.arange(len(at)) * self.per_seq + at // PAGE).astype(np.int64)
        return (torch.from_numpy(page).to("cuda", non_blocking=True), torch.from_numpy(at % PAGE).to("cuda", non_blocking=True))

    def host_tables(self, shared=()):
        """(kv_indptr, kv_indices, kv_last_page_len) as int32 numpy arrays; every sequence's list
        begins with the `shared` pages (a prompt's, for a flat table of each whole sequence)."""
        used = (self.lengths + PAGE - 1) // PAGE
        own_indptr = np.concatenate([[0], np.cumsum(used)])
        starts = self.first + np.arange(len(used)) * self.per_seq
        own = np.repeat(starts - own_indptr[:-1], used) + np.arange(own_indptr[-1])
        indptr = own_indptr + len(shared) * np.arange(len(used) + 1)
        indices = np.empty(indptr[-1], dtype=np.int32)
        is_shared = np.zeros(len(indices), dtype=bool)
        if len(shared):
            at = (indptr[:-1, None] + np.arange(len(shared))).ravel()
            indices[at] = np.tile(np.asarray(shared, dtype=np.int32), len(used))
            is_shared[at] = True
        indices[~is_shared] = own
        full_pages = len(shared) * PAGE
        last = (self.lengths + full_pages - (used + len(shared) - 1) * PAGE).astype(np.int32)
        return indptr.astype(np.int32), indices, last

    def tables(self, torch):
        to = lambda a: torch.from_numpy(a).to("cuda", non_blocking=True)  # noqa: E731
        return tuple(to(a) for a in self.host_tables())


class PagedLoop:
    """What the loops over an engine's pages share (FlashInfer's two, chunktree-paged): the step's page
    writes and runs in every layer, eager or (GRAPH) captured once in a CUDA graph that every later
    step replays after the wrapper's plan (FlashInfer's use_cuda_graph mode: the plan copies the page
    tables into fixed buffers; chunktree's plan uploads into its fixed workspace)."""

    GRAPH = False

    def write_and_attend(self, where):
        if not self.GRAPH:
            write_and_attend_pages(self.wrapper, self.caches, where, self.inputs)
            return
        self.where[0].copy_(where[0])
        self.where[1].copy_(where[1])
        if self.graph is None:  # the first (warm-up) step runs eagerly, then captures for the next
            write_and_attend_pages(self.wrapper, self.caches, self.where, self.inputs)
            self.graph = self.torch.cuda.CUDAGraph()
            with self.torch.cuda.graph(self.graph):
                write_and_attend_pages(self.wrapper, self.caches, self.where, self.inputs)
            return
        self.graph.replay()

    def graph_buffers(self, torch, batch):
        self.where = (torch.zeros(batch, dtype=torch.int64, device="cuda"), torch.zeros(batch, dtype=torch.int64, device="cuda"))
        self.graph = None


def int32_buffer(torch, n):
    return torch.zeros(n, dtype=torch.int32, device="cuda")


class FlashInferDecode(PagedLoop):
    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        flashinfer = flashinfer_module()
        self.torch, self.inputs = torch, inputs
        per_seq = (prompt + total_steps + PAGE - 1) // PAGE
        self.caches = [torch.randn(batch * per_seq, 2, PAGE, KV_HEADS, DIM, device="cuda").bfloat16() for _ in range(layers)]
        self.table = PageTable([prompt] * batch, 0, per_seq)
        workspace = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")  # the wrapper keeps it
        graph = {}
        if self.GRAPH:
            self.graph_buffers(torch, batch)
            graph = dict(use_cuda_graph=True, paged_kv_indptr_buffer=int32_buffer(torch, batch + 1),
                         paged_kv_indices_buffer=int32_buffer(torch, batch * per_seq), paged_kv_last_page_len_buffer=int32_buffer(torch, batch))
        self.wrapper = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, "NHD", use_tensor_cores=Q_HEADS // KV_HEADS > 4, **graph)

    def step(self, i):
        torch = self.torch
        where = self.table.grow(torch)
        indptr, indices, last = self.table.tables(torch)
        self.wrapper.plan(indptr, indices, last, Q_HEADS, KV_HEADS, DIM, PAGE, pos_encoding_mode="NONE",
                          q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
        self.write_and_attend(where)


class FlashInferCascade(PagedLoop):
    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        if distinct:
            raise ValueError("no shared prompt: a cascade has nothing to share (flashinfer-decode is the peer)")
        flashinfer = flashinfer_module()
        self.torch, self.inputs = torch, inputs
        prompt_pages = (prompt + PAGE - 1) // PAGE
        per_seq = (total_steps + PAGE - 1) // PAGE
        self.caches = [torch.randn(prompt_pages + batch * per_seq, 2, PAGE, KV_HEADS, DIM, device="cuda").bfloat16()
                       for _ in range(layers)]
        self.shared = PageTable([prompt], 0, prompt_pages).tables(torch)
        self.unique = PageTable([0] * batch, prompt_pages, per_seq)
        self.qo = [torch.tensor([0, batch], dtype=torch.int32, device="cuda"), torch.arange(batch + 1, dtype=torch.int32, device="cuda")]
        workspace = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")  # the wrapper keeps it
        graph = {}
        if self.GRAPH:
            self.graph_buffers(torch, batch)
            graph = dict(use_cuda_graph=True, qo_indptr_buf_arr=[int32_buffer(torch, 2), int32_buffer(torch, batch + 1)],
                         paged_kv_indptr_buf_arr=[int32_buffer(torch, 2), int32_buffer(torch, batch + 1)],
                         paged_kv_indices_buf_arr=[int32_buffer(torch, prompt_pages), int32_buffer(torch, batch * per_seq)],
                         paged_kv_last_page_len_buf_arr=[int32_buffer(torch, 1), int32_buffer(torch, batch)])
        self.wrapper = flashinfer.MultiLevelCascadeAttentionWrapper(2, workspace, "NHD", **graph)

    def step(self, i):
        torch = self.torch
        where = self.unique.grow(torch)
        indptr, indices, last = self.unique.tables(torch)
        self.wrapper.plan(self.qo, [self.shared[0], indptr], [self.shared[1], indices], [self.shared[2], last], Q_HEADS, KV_HEADS, DIM,
                          PAGE, causal=False, pos_encoding_mode="NONE", q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
        self.write_and_attend(where)


class FlashInferDecodeGraph(FlashInferDecode):
    GRAPH = True


class FlashInferCascadeGraph(FlashInferCascade):
    GRAPH = True


class ChunktreePaged(PagedLoop):
    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        import chunktree
        if not distinct and prompt % PAGE:
            raise ValueError(f"a shared prompt of {prompt} tokens does not fill whole pages of {PAGE}")
        self.torch, self.inputs = torch, inputs
        shared_pages = 0 if distinct else prompt // PAGE
        own_prompt = prompt if distinct else 0
        per_seq = (own_prompt + total_steps + PAGE - 1) // PAGE
        self.caches = [torch.randn(shared_pages + batch * per_seq, 2, PAGE, KV_HEADS, DIM, device="cuda").bfloat16() for _ in range(layers)]
        self.shared = np.arange(shared_pages, dtype=np.int32)
        self.own = PageTable([own_prompt] * batch, shared_pages, per_seq)
        if self.GRAPH:
            self.graph_buffers(torch, batch)
        self.wrapper = chunktree.PagedAttention(device="cuda", kv_layout="NHD")

    def step(self, i):
        where = self.own.grow(self.torch)
        self.wrapper.plan(*self.own.host_tables(self.shared), Q_HEADS, KV_HEADS, DIM, PAGE)
        self.write_and_attend(where)


class ChunktreePagedGraph(ChunktreePaged):
    GRAPH = True


class Sdpa:
    def __init__(self, torch, layers, batch, prompt, distinct, total_steps, inputs):
        import torch.nn.functional as F
        self.F, self.inputs, self.layers, self.length = F, inputs, layers, prompt
        self.k = [torch.randn(batch, KV_HEADS, prompt + total_steps, DIM, device="cuda").bfloat16() for _ in range(layers)]
        self.v = [torch.randn_like(k) for k in self.k]

    def step(self, i):
        x, at = self.inputs, self.length
        self.length += 1
        for layer in range(self.layers):
            self.k[layer][:, :, at] = x.k[layer]
            self.v[layer][:, :, at] = x.v[layer]
            out = self.F.scaled_dot_product_attention(x.q[layer].unsqueeze(2), self.k[layer][:, :, :at + 1], self.v[layer][:, :, :at + 1],
                                                      enable_gqa=True)
            x.out[layer] = out.squeeze(2)


LOOPS = {"chunktree": Chunktree, "chunktree-graph": ChunktreeGraph, "chunktree-paged": ChunktreePaged,
         "chunktree-paged-graph": ChunktreePagedGraph, "flashinfer-decode": FlashInferDecode,
         "flashinfer-decode-graph": FlashInferDecodeGraph, "flashinfer-cascade": FlashInferCascade,
         "flashinfer-cascade-graph": FlashInferCascadeGraph, "sdpa": Sdpa}


def time_steps(torch, loop, steps, warmup):
    """Median µs per step and median host µs per step."""
    whole, host = [], []
    for i in range(warmup + steps):
        start = time.perf_counter()
        loop.step(i)
        issued = time.perf_counter()
        torch.cuda.synchronize()
        done = time.perf_counter()
        if i >= warmup:
            whole.append((done - start) * 1e6)
            host.append((issued - start) * 1e6)
    return statistics.median(whole), statistics.median(host)


def plot(csv_path: str, png_path: str) -> None:
    """Grouped bars of ms per step, per case and implementation, on a log scale."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with open(csv_path) as f:
        rows = [r for r in csv.DictReader(f) if r["us_per_step"]]
    cases = list(dict.fromkeys(r["case"] for r in rows))
    impls = [i for i in IMPLS if any(r["impl"] == i for r in rows)]
    width = 0.8 / len(impls)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for n, impl in enumerate(impls):
        for c, case in enumerate(cases):
            row = next((r for r in rows if r["case"] == case and r["impl"] == impl), None)
            if row is None:
                continue
            x = c + (n - (len(impls) - 1) / 2) * width
            ax.bar(x, float(row["us_per_step"]) / 1000, width, color=f"C{n}", label=impl if c == 0 else None)
    ax.set_xticks(range(len(cases)), cases)
    ax.set_yscale("log")
    ax.set_ylabel("ms per decode step (32 layers)")
    first = rows[0]
    ax.set_title(f"Whole decode step, {first['card']}, {first['date']}, commit {first['commit']}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--commit", default=os.environ.get("CHUNKTREE_COMMIT", "unknown"))
    parser.add_argument("--ceilings", metavar="JSON", help="`chunktree bench --ceilings-json` of the same device run: adds each "
                        "case's floor (max(unique bytes / HBM, FLOPs / tensor rate) per layer, times the layers)")
    parser.add_argument("--plot", metavar="PNG", help="only draw OUT.csv (an earlier run) into PNG")
    args = parser.parse_args()
    if args.plot:
        plot(args.out, args.plot)
        return 0
    import torch
    if not torch.cuda.is_available():
        print("decode_loop: needs a CUDA GPU (torch.cuda.is_available() is False)", file=sys.stderr)
        return 2
    ceilings = load_ceilings(args.ceilings) if args.ceilings else None
    if ceilings is not None and args.commit == "unknown":
        args.commit = str(ceilings.get("commit", "unknown"))  # the build that measured them, in the same run
    card = torch.cuda.get_device_name()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    failed = 0
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for name in args.cases.split(","):
            batch, prompt, distinct = CASES[name]
            for impl in args.impls.split(","):
                row = dict(case=name, impl=impl, layers=args.layers, batch=batch, q_heads=Q_HEADS, kv_heads=KV_HEADS, head_dim=DIM,
                           prompt_tokens=prompt, steps=args.steps, card=card, date=date, commit=args.commit, note="")
                loop = inputs = None
                try:
                    inputs = Inputs(torch, args.layers, batch)
                    loop = LOOPS[impl](torch, args.layers, batch, prompt, distinct, args.warmup + args.steps, inputs)
                    row["us_per_step"], row["host_us_per_step"] = (f"{t:.1f}" for t in time_steps(torch, loop, args.steps, args.warmup))
                    if hasattr(loop, "note"):
                        row["note"] = loop.note(args.steps)
                    if ceilings is not None:
                        floor = step_floor_us(batch, prompt, distinct, args.warmup + args.steps // 2 + 1, args.layers, ceilings)
                        row["floor_us"], row["x_floor"] = f"{floor:.1f}", f"{float(row['us_per_step']) / floor:.2f}"
                except ValueError as error:
                    row["note"] = str(error)
                except Exception as error:  # noqa: BLE001 - one failing peer must not hide the others' rows
                    row["note"] = f"failed: {type(error).__name__}: {str(error)[:200]}"
                    failed += 1
                print(f"{name:16s} {impl:19s} {row.get('us_per_step', '-'):>10s} us/step  host {row.get('host_us_per_step', '-'):>10s}  {row['note']}",
                      flush=True)
                writer.writerow(row)
                del loop, inputs
                torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
