"""N samples of one prompt, decoded by a Hugging Face transformers Llama model with chunktree as its
attention over paged KV that the example owns, as a serving engine would.

A Llama-architecture model with random weights (built from a config: nothing is downloaded) decodes
N samples of one prompt (the first token of each sampled, the rest greedy) twice: stock transformers
(SDPA over its DynamicCache, the prompt prefilled once per sample) and with chunktree, which prefills
the prompt once (transformers' SDPA; its K and V written into pages) and forks it. Every chunktree
decode step plans once (the samples' page tables: the prompt's full pages shared by all, then each
sample's own pages, the first holding a copy of the prompt's partly filled last page) and every
layer runs `chunktree.PagedAttention` through transformers' attention interface, reading K and V
from the pages in place. Both decode stock's greedy tokens; each step's logits and greedy tokens are
compared, and both loops' tokens/s and KV memory are reported.

    python3 examples/hf_parallel_sampling.py [--device cuda|cpu] [--samples 8] [--prompt 300] [--steps 24]
                                             [--dtype float16|bfloat16|float32]

Exits 0 when every step matches (the same greedy tokens wherever stock's top two logits are not a
near tie, logits within the dtype's tolerance), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import chunktree

PAGE = 16
# The largest logit error (relative to the largest logit) that still counts as a match, by dtype.
TOLERANCE = {torch.bfloat16: 2e-2, torch.float16: 5e-3, torch.float32: 1e-4}


class PagedKvCache:
    """The example's KV cache, as an engine holds one: a pool of pages per layer
    ([pages, 2, page, kv_heads, head_dim], NHD) and a page list per sequence; chunktree reads the pages
    in place. Page 0.. hold the prompt; each sample then appends to pages of its own."""

    def __init__(self, layers, kv_heads, head_dim, pages, dtype, device):
        self.pools = [torch.zeros(pages, 2, PAGE, kv_heads, head_dim, dtype=dtype, device=device) for _ in range(layers)]
        self.free = list(range(pages - 1, -1, -1))
        self.tables = []   # page ids of each sequence
        self.lengths = []  # tokens of each sequence
        self.slots = None  # (page ids, offsets) where the current forward's tokens go, one per token
        self.attention = chunktree.PagedAttention(device=device, kv_layout="NHD")

    def add_sequence(self, tokens):
        pages = [self.free.pop() for _ in range((tokens + PAGE - 1) // PAGE)]
        self.tables.append(pages)
        self.lengths.append(tokens)
        return len(self.tables) - 1

    def fork(self, parent, n):
        """n sequences that share the parent's full pages and copy its partly filled last page."""
        children = []
        full = self.lengths[parent] // PAGE
        for _ in range(n):
            pages = self.tables[parent][:full]
            if self.lengths[parent] % PAGE:
                own = self.free.pop()
                for pool in self.pools:
                    pool[own].copy_(pool[self.tables[parent][full]])
                pages = pages + [own]
            self.tables.append(pages)
            self.lengths.append(self.lengths[parent])
            children.append(len(self.tables) - 1)
        return children

    def place_tokens(self, seqs, count):
        """Slots for `count` new tokens of each sequence (a page taken where one fills up)."""
        pages, offsets = [], []
        for s in seqs:
            for _ in range(count):
                if self.lengths[s] % PAGE == 0:
                    self.tables[s].append(self.free.pop())
                pages.append(self.tables[s][-1])
                offsets.append(self.lengths[s] % PAGE)
                self.lengths[s] += 1
        device = self.pools[0].device
        self.slots = (torch.tensor(pages, device=device), torch.tensor(offsets, device=device))

    def write(self, layer, key, value):
        """The forward's new K and V ([batch, kv_heads, tokens, d], rotated) into their slots."""
        pages, offsets = self.slots
        self.pools[layer][pages, 0, offsets] = key.transpose(1, 2).reshape(-1, *key.shape[1:2], key.shape[-1])
        self.pools[layer][pages, 1, offsets] = value.transpose(1, 2).reshape(-1, *value.shape[1:2], value.shape[-1])

    def plan(self, seqs, q_heads, kv_heads, head_dim):
        """The decode step's plan, for every layer: chunktree finds the shared pages in the table."""
        indptr = [0]
        for s in seqs:
            indptr.append(indptr[-1] + len(self.tables[s]))
        indices = [p for s in seqs for p in self.tables[s]]
        last = [self.lengths[s] - (len(self.tables[s]) - 1) * PAGE for s in seqs]
        self.attention.plan(indptr, indices, last, q_heads, kv_heads, head_dim, PAGE)


def chunktree_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, paged_cache=None, prefill=False, **kwargs):
    """transformers' attention interface: query [batch, q_heads, tokens, d], key and value [batch,
    kv_heads, tokens, d] of this forward's tokens only. Writes them into the pages; a decode step
    then attends with chunktree over the pages, the prefill with transformers' SDPA."""
    paged_cache.write(module.layer_idx, key, value)
    if prefill:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
        return sdpa_attention_forward(module, query, key, value, None, dropout=dropout, scaling=scaling, is_causal=True)
    batch, heads, tokens, dim = query.shape
    q = query.transpose(1, 2).reshape(batch * tokens, heads, dim).contiguous()
    out = paged_cache.attention.run(q, paged_cache.pools[module.layer_idx])
    return out.view(batch, tokens, heads, dim), None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=300)
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    # On the GPU chunktree reads 16-bit KV. float16 by default: its 10-bit mantissa keeps the two
    # attention implementations' rounding apart by ~8x less than bfloat16's 7 bits, so that a random
    # model's near-ties (its logits are flat) rarely flip a greedy token. float32 on the CPU.
    parser.add_argument("--dtype", choices=("float16", "bfloat16", "float32"), default=None)
    args = parser.parse_args(argv)
    from transformers import AttentionInterface, DynamicCache, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(args.seed)
    dtype = getattr(torch, args.dtype or ("float16" if args.device == "cuda" else "float32"))
    if args.device == "cuda" and dtype == torch.float32:
        parser.error("--dtype float32 needs --device cpu: the GPU backend reads bfloat16 or float16 KV")
    config = LlamaConfig(vocab_size=512, hidden_size=512, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=8,
                         num_key_value_heads=2, head_dim=64, max_position_embeddings=4096)
    config._attn_implementation = "sdpa"
    model = LlamaForCausalLM(config).to(args.device, dtype).eval()
    AttentionInterface.register("chunktree", chunktree_attention)
    q_heads, kv_heads, dim = config.num_attention_heads, config.num_key_value_heads, config.head_dim
    n, device = args.samples, args.device
    synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def forward(implementation, tokens, **kwargs):
        model.config._attn_implementation = implementation
        return model(torch.tensor(tokens, device=device), **kwargs).logits[:, -1].float()

    prompt = torch.randint(0, config.vocab_size, (args.prompt,)).tolist()
    pages = (args.prompt + args.steps) // PAGE * (n + 1) + 2 * n + 2
    cache = PagedKvCache(config.num_hidden_layers, kv_heads, dim, pages, dtype, device)
    with torch.no_grad():
        # Stock transformers: the prompt prefilled once per sample, SDPA over its DynamicCache.
        stock_cache = DynamicCache()
        logits = forward("sdpa", [prompt] * n, past_key_values=stock_cache, use_cache=True)
        weights = torch.softmax(logits[:1], -1).cpu().expand(n, -1)  # sampled on the host: one seeded generator for both devices
        tokens = torch.multinomial(weights, 1, generator=torch.Generator().manual_seed(1)).flatten().tolist()
        # chunktree: the prompt prefilled once (transformers' SDPA; its K and V into pages), then forked.
        root = cache.add_sequence(0)
        cache.place_tokens([root], args.prompt)
        forward("chunktree", [prompt], use_cache=False, paged_cache=cache, prefill=True)
        samples = cache.fork(root, n)

        # Both decode the same tokens (stock's greedy ones), each step's logits compared.
        stock_seconds = ours_seconds = worst = 0.0
        ties = failures = 0
        for step in range(args.steps):
            synchronize()
            started = time.perf_counter()
            theirs = forward("sdpa", [[t] for t in tokens], past_key_values=stock_cache, use_cache=True)
            synchronize()
            stock_seconds += time.perf_counter() - started
            started = time.perf_counter()
            cache.place_tokens(samples, 1)
            cache.plan(samples, q_heads, kv_heads, dim)
            position = torch.full((n, 1), args.prompt + step, device=device)
            ours = forward("chunktree", [[t] for t in tokens], position_ids=position, use_cache=False, paged_cache=cache)
            synchronize()
            ours_seconds += time.perf_counter() - started
            error = ((ours - theirs).abs().max() / theirs.abs().max()).item()
            worst = max(worst, error)
            top2 = theirs.topk(2, dim=-1).values
            near_tie = (top2[:, 0] - top2[:, 1]) < 4 * error * theirs.abs().max()
            differ = ours.argmax(-1) != theirs.argmax(-1)
            ties += int((differ & near_tie).sum())
            failures += int((differ & ~near_tie).sum()) + int(error > TOLERANCE[dtype])
            tokens = theirs.argmax(-1).tolist()

    per_token = 2 * config.num_hidden_layers * kv_heads * dim * dtype.itemsize
    stock_bytes = n * (args.prompt + args.steps) * per_token
    ours_bytes = len({p for s in samples for p in cache.tables[s]}) * PAGE * per_token  # every page the samples read, once
    print(f"{n} samples of a {args.prompt}-token prompt, {args.steps} greedy decode steps on the {device}: "
          f"{args.steps * n - ties - failures} of {args.steps * n} tokens identical to stock transformers (SDPA), {ties} near-tie "
          f"flips, {failures} failures; worst logit error {worst:.2e} of the largest logit")
    print(f"decode: chunktree {args.steps * n / ours_seconds:.0f} tokens/s, stock transformers {args.steps * n / stock_seconds:.0f} tokens/s "
          f"(eager, host work included); KV {ours_bytes / 2**20:.2f} MiB in pages against {stock_bytes / 2**20:.2f} MiB "
          f"({1 - ours_bytes / stock_bytes:.0%} saved)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
