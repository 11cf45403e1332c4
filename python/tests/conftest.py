"""Shared helpers: an fp64 numpy reference, random KV, and workloads built through the cache."""
import numpy as np
import pytest

import chunktree


def reference(q, k, v, scale=None):
    """Attention of q [q_heads, d] over k, v [tokens, kv_heads, d] in float64: (o [q_heads, d], lse [q_heads])."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    group = q.shape[0] // k.shape[1]
    scale = 1.0 / np.sqrt(q.shape[-1]) if scale is None else scale
    keys = np.repeat(k, group, axis=1)
    values = np.repeat(v, group, axis=1)
    scores = np.einsum("hd,lhd->hl", q, keys) * scale
    top = scores.max(axis=1, keepdims=True)
    weights = np.exp(scores - top)
    total = weights.sum(axis=1)
    return np.einsum("hl,lhd->hd", weights, values) / total[:, None], np.log(total) + top[:, 0]


class Tree:
    """Sequences built through a PrefixCache with float32 KV that is a function of the token prefix,
    so each sequence's KV can be recomputed without reading the cache."""

    def __init__(self, cache, kv_heads, head_dim, seed=0):
        self.cache, self.kv_heads, self.head_dim = cache, kv_heads, head_dim
        self.rng = np.random.default_rng(seed)
        self.kv = {}  # token prefix (tuple) -> (k, v) of its last token
        self.seqs, self.tokens = [], []

    def kv_of(self, prefix):
        if prefix not in self.kv:
            shape = (self.kv_heads, self.head_dim)
            self.kv[prefix] = (self.rng.standard_normal(shape).astype(np.float32), self.rng.standard_normal(shape).astype(np.float32))
        return self.kv[prefix]

    def write(self, tokens, first, slots, convert):
        if len(slots) == 0:
            return
        k = np.stack([self.kv_of(tuple(tokens[: t + 1]))[0] for t in range(first, len(tokens))])
        v = np.stack([self.kv_of(tuple(tokens[: t + 1]))[1] for t in range(first, len(tokens))])
        self.cache.write_kv(0, slots, convert(k), convert(v))

    def add(self, tokens, convert=lambda x: x):
        added = self.cache.add(tokens)
        self.write(list(tokens), added.cached_tokens, added.slots, convert)
        self.seqs.append(added.seq)
        self.tokens.append(list(tokens))
        return added.seq

    def append(self, index, more, convert=lambda x: x):
        slots = self.cache.append(self.seqs[index], more)
        first = len(self.tokens[index])
        self.tokens[index] += list(more)
        self.write(self.tokens[index], first, slots, convert)

    def sequence_kv(self, index, upto=None):
        tokens = self.tokens[index][: upto]
        k = np.stack([self.kv_of(tuple(tokens[: t + 1]))[0] for t in range(len(tokens))])
        v = np.stack([self.kv_of(tuple(tokens[: t + 1]))[1] for t in range(len(tokens))])
        return k, v


def random_tree(cache, kv_heads, head_dim, seed=0, sequences=12, convert=lambda x: x):
    """A prompt shared by all, two branches, forks and private tails."""
    tree = Tree(cache, kv_heads, head_dim, seed)
    rng = np.random.default_rng(seed + 1)
    prompt = list(rng.integers(0, 1000, 70))
    for s in range(sequences):
        branch = [2000 + s % 2] * int(rng.integers(1, 40))
        tail = [3000 + 100 * s + t for t in range(int(rng.integers(0, 20)))]
        tree.add(prompt + branch + tail, convert)
    return tree


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
