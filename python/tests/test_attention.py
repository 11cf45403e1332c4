"""Attention through the cache, the levels API and the merge primitives on the CPU (numpy),
against an fp64 numpy reference."""
import numpy as np
import pytest

import chunktree
from conftest import random_tree, reference

Q_HEADS, KV_HEADS, DIM = 8, 2, 64


def cache_f32(capacity=256):
    return chunktree.PrefixCache(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=capacity, chunk_size=16, dtype="f32")


def check_against_reference(tree, q, out, lse, queries=1):
    for s in range(len(tree.seqs)):
        length = len(tree.tokens[s])
        for i in range(queries):
            k, v = tree.sequence_kv(s, length - queries + i + 1)
            expected_o, expected_lse = reference(q[s * queries + i], k, v)
            np.testing.assert_allclose(out[s * queries + i], expected_o, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(lse[s * queries + i], expected_lse, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("max_item_tokens", [0, 16, None])
def test_attend_matches_the_reference(rng, max_item_tokens):
    tree = random_tree(cache_f32(), KV_HEADS, DIM, seed=3)
    plan = chunktree.make_plan(tree.cache, tree.seqs, max_item_tokens=max_item_tokens)
    assert plan.num_shared_items >= 1 and plan.is_current()
    q = rng.standard_normal((len(tree.seqs), Q_HEADS, DIM)).astype(np.float32)
    out, lse = chunktree.attend(tree.cache, plan, q, return_lse=True)
    assert out.shape == q.shape and lse.shape == (len(tree.seqs), Q_HEADS) and lse.dtype == np.float32
    check_against_reference(tree, q, out, lse)
    out_only = chunktree.attend(tree.cache, plan, q)  # without lse
    np.testing.assert_array_equal(out_only, out)


@pytest.mark.parametrize("queries", [2, 5])
def test_several_query_tokens_are_causal(rng, queries):
    tree = random_tree(cache_f32(), KV_HEADS, DIM, seed=5, sequences=6)
    for s in range(len(tree.seqs)):
        tree.append(s, [9000 + 10 * s + t for t in range(queries)])
    # A fork of sequence 0: its query tokens sit in a node both sequences share.
    tree.seqs += tree.cache.fork(tree.seqs[0], 1)
    tree.tokens.append(list(tree.tokens[0]))
    plan = chunktree.make_plan(tree.cache, tree.seqs, queries_per_seq=queries)
    q = rng.standard_normal((len(tree.seqs) * queries, Q_HEADS, DIM)).astype(np.float32)
    out, lse = chunktree.attend(tree.cache, plan, q, return_lse=True)
    check_against_reference(tree, q, out, lse, queries)


def test_attend_errors_are_clear(rng):
    tree = random_tree(cache_f32(), KV_HEADS, DIM, seed=7, sequences=3)
    plan = chunktree.make_plan(tree.cache, tree.seqs)
    q = rng.standard_normal((3, Q_HEADS, DIM)).astype(np.float32)
    with pytest.raises(ValueError, match="q"):
        chunktree.attend(tree.cache, plan, q[:2])
    with pytest.raises(ValueError, match="contiguous"):
        chunktree.attend(tree.cache, plan, np.asfortranarray(q))
    with pytest.raises(ValueError, match="multiple"):
        chunktree.attend(tree.cache, plan, rng.standard_normal((3, 3, DIM)).astype(np.float32))
    with pytest.raises(ValueError, match="queries_per_seq"):
        chunktree.make_plan(tree.cache, tree.seqs, queries_per_seq=10_000)
    other = random_tree(cache_f32(), KV_HEADS, DIM, seed=7, sequences=3)
    with pytest.raises(ValueError, match="another cache"):
        chunktree.attend(other.cache, plan, q)
    tree.cache.append(tree.seqs[0], [1])
    assert not plan.is_current()
    with pytest.raises(ValueError, match="stale"):
        chunktree.attend(tree.cache, plan, q)


def test_levels_contiguous_and_paged(rng):
    seqs, queries, page = 5, 2, 8
    prompt_k, prompt_v = (rng.standard_normal((50, KV_HEADS, DIM)).astype(np.float32) for _ in range(2))
    pool_k, pool_v = (rng.standard_normal((6, page, KV_HEADS, DIM)).astype(np.float32) for _ in range(2))
    own = [(rng.standard_normal((4 + s, KV_HEADS, DIM)).astype(np.float32), rng.standard_normal((4 + s, KV_HEADS, DIM)).astype(np.float32))
           for s in range(seqs)]
    block = chunktree.KvSegment(pool_k, pool_v, length=20, pages=[5, 0, 3])
    levels = chunktree.Levels([[chunktree.SharedSegment(chunktree.KvSegment(prompt_k, prompt_v), 0, seqs)],
                               [chunktree.SharedSegment(block, 1, 4)]],
                              own=[chunktree.KvSegment(k, v) for k, v in own], queries_per_seq=queries)
    q = rng.standard_normal((seqs * queries, Q_HEADS, DIM)).astype(np.float32)
    out, lse = chunktree.attend_levels(levels, q, return_lse=True)
    block_k = np.concatenate([pool_k[p] for p in (5, 0, 3)])[:20]
    block_v = np.concatenate([pool_v[p] for p in (5, 0, 3)])[:20]
    for s in range(seqs):
        for i in range(queries):
            seen = len(own[s][0]) - queries + i + 1
            parts_k = [prompt_k] + ([block_k] if 1 <= s < 4 else []) + [own[s][0][:seen]]
            parts_v = [prompt_v] + ([block_v] if 1 <= s < 4 else []) + [own[s][1][:seen]]
            expected_o, expected_lse = reference(q[s * queries + i], np.concatenate(parts_k), np.concatenate(parts_v))
            np.testing.assert_allclose(out[s * queries + i], expected_o, rtol=1e-4, atol=1e-5)
            np.testing.assert_allclose(lse[s * queries + i], expected_lse, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="own"):
        chunktree.attend_levels(chunktree.Levels(levels.levels, own=[chunktree.KvSegment(k[:1], v[:1]) for k, v in own],
                                                 queries_per_seq=queries), q)
    with pytest.raises(ValueError, match="pages"):
        short = chunktree.KvSegment(pool_k, pool_v, length=20, pages=[5, 0])  # 20 tokens need 3 pages of 8
        chunktree.attend_levels(chunktree.Levels([[chunktree.SharedSegment(short, 0, seqs)]]), q[::queries].copy())


def test_merge_primitives(rng):
    tokens, heads = 3, 4
    k, v = (rng.standard_normal((30, 1, DIM)) for _ in range(2))
    q = rng.standard_normal((tokens, heads, DIM))
    parts = [(0, 12), (12, 30)]
    states = [[reference(q[t], k[a:b], v[a:b]) for t in range(tokens)] for a, b in parts]
    o = [np.stack([st[0] for st in part]).astype(np.float32) for part in states]
    lse = [np.stack([st[1] for st in part]).astype(np.float32) for part in states]
    merged_o, merged_lse = chunktree.merge_state(o[0], lse[0], o[1], lse[1])
    whole = [reference(q[t], k, v) for t in range(tokens)]
    np.testing.assert_allclose(merged_o, np.stack([w[0] for w in whole]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(merged_lse, np.stack([w[1] for w in whole]), rtol=1e-5)
    stacked_o, stacked_lse = chunktree.merge_states(np.ascontiguousarray(np.stack(o, axis=1)), np.ascontiguousarray(np.stack(lse, axis=1)))
    np.testing.assert_array_equal(stacked_o, merged_o)
    in_place_o, in_place_lse = o[0].copy(), lse[0].copy()
    chunktree.merge_state_in_place(in_place_o, in_place_lse, o[1], lse[1])
    np.testing.assert_array_equal(in_place_o, merged_o)
    empty_o, empty_lse = np.zeros_like(o[0]), np.full_like(lse[0], -np.inf)
    both_empty = chunktree.merge_state(empty_o, empty_lse, empty_o, empty_lse)
    assert np.all(both_empty[0] == 0) and np.all(np.isneginf(both_empty[1]))
    unchanged = chunktree.merge_state(o[0], lse[0], empty_o, empty_lse)
    np.testing.assert_array_equal(unchanged[0], o[0])
    with pytest.raises(ValueError, match="shape"):
        chunktree.merge_state(o[0], lse[0], o[1][:2], lse[1][:2])


# ------------------------------------------------------------------------------------------------
# Zero tokens: arrays without elements are valid wherever no tokens are meaningful

def empty_states(heads=Q_HEADS):
    return np.zeros((0, heads, DIM), np.float32), np.zeros((0, heads), np.float32)


def test_attend_with_an_empty_batch():
    tree = random_tree(cache_f32(), KV_HEADS, DIM, seed=9, sequences=2)
    plan = chunktree.make_plan(tree.cache, [])
    q, _ = empty_states()
    out, lse = chunktree.attend(tree.cache, plan, q, return_lse=True)
    assert out.shape == (0, Q_HEADS, DIM) and lse.shape == (0, Q_HEADS)


def test_merges_of_no_tokens():
    o, lse = empty_states()
    merged_o, merged_lse = chunktree.merge_state(o, lse, o, lse)
    assert merged_o.shape == o.shape and merged_lse.shape == lse.shape
    chunktree.merge_state_in_place(o.copy(), lse.copy(), o, lse)
    stacked_o, stacked_lse = chunktree.merge_states(np.zeros((0, 3, Q_HEADS, DIM), np.float32), np.zeros((0, 3, Q_HEADS), np.float32))
    assert stacked_o.shape == o.shape and stacked_lse.shape == lse.shape


def test_levels_of_no_sequences():
    q, _ = empty_states()
    out, lse = chunktree.attend_levels(chunktree.Levels([]), q, return_lse=True)
    assert out.shape == q.shape and lse.shape == (0, Q_HEADS)
    # A segment that no sequence reads is a mistake in the levels, empty batch or not.
    prompt = np.zeros((8, KV_HEADS, DIM), np.float32)
    with pytest.raises(ValueError, match="is read by sequences \\[0, 0\\)"):
        chunktree.attend_levels(chunktree.Levels([[chunktree.SharedSegment(chunktree.KvSegment(prompt, prompt), 0, 0)]]), q)


def test_cache_attention_plans_each_step_and_runs_every_layer(rng):
    """CacheAttention on the CPU: plan() after each step's appends, run() per layer, as attend()."""
    cache = chunktree.PrefixCache(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=256, chunk_size=16, dtype="f32", num_layers=2)
    first = cache.add(list(range(40)))
    for layer in range(2):
        cache.write_kv(layer, first.slots, *rng.standard_normal((2, 40, KV_HEADS, DIM)).astype(np.float32))
    seqs = [first.seq] + cache.fork(first.seq, 3)
    attention = chunktree.CacheAttention(cache, num_q_heads=Q_HEADS)
    with pytest.raises(ValueError, match="plan"):
        attention.run(rng.standard_normal((4, Q_HEADS, DIM)).astype(np.float32))
    for step in range(3):
        slots = cache.append_batch(seqs, [100 + 10 * step + s for s in range(len(seqs))])
        for layer in range(2):
            cache.write_kv(layer, slots, *rng.standard_normal((2, len(seqs), KV_HEADS, DIM)).astype(np.float32))
        plan = attention.plan(seqs)
        assert plan.is_current()
        q = rng.standard_normal((len(seqs), Q_HEADS, DIM)).astype(np.float32)
        for layer in range(2):
            out, lse = attention.run(q, layer=layer, return_lse=True)
            expected, expected_lse = chunktree.attend(cache, plan, q, layer=layer, return_lse=True, num_q_heads=Q_HEADS)
            np.testing.assert_array_equal(out, expected)
            np.testing.assert_array_equal(lse, expected_lse)


def test_cache_attention_retires_the_plan_that_the_next_step_replaces(rng):
    """plan() reuses the memory of the plan before last: once replaced, that plan says so (is_current
    False, every use a ValueError), never attention over another step's batch."""
    cache = cache_f32()
    a, b = cache.add([1, 2, 3]), cache.add([4, 5, 6, 7, 8])
    for added in (a, b):
        cache.write_kv(0, added.slots, *rng.standard_normal((2, len(added.slots), KV_HEADS, DIM)).astype(np.float32))
    attention = chunktree.CacheAttention(cache, num_q_heads=Q_HEADS)
    first = attention.plan([a.seq])
    q = rng.standard_normal((1, Q_HEADS, DIM)).astype(np.float32)
    expected = chunktree.attend(cache, first, q)
    latest = attention.plan([b.seq])
    assert not first.is_current() and latest.is_current()
    for use in (lambda: first.batch, lambda: chunktree.attend(cache, first, q)):
        with pytest.raises(ValueError, match="a later plan\\(\\) has replaced it"):
            use()
    attention.plan([a.seq])
    np.testing.assert_array_equal(attention.run(q), expected)


def test_cache_attention_runs_on_rows_of_the_largest_batch(rng):
    """As on the GPU, run() takes q, out and lse with more rows than the plan's query tokens: the
    first are computed, the rest left as they were."""
    cache = cache_f32()
    seqs = [cache.add([i, 1, 2]).seq for i in range(3)]
    for seq in seqs:
        cache.write_kv(0, cache.slots(seq), *rng.standard_normal((2, 3, KV_HEADS, DIM)).astype(np.float32))
    attention = chunktree.CacheAttention(cache, num_q_heads=Q_HEADS)
    plan = attention.plan(seqs[:2])
    q = rng.standard_normal((3, Q_HEADS, DIM)).astype(np.float32)
    out, lse = np.full_like(q, 7.0), np.full((3, Q_HEADS), 7.0, np.float32)
    attention.run(q, out=out, lse=lse)
    expected, expected_lse = chunktree.attend(cache, plan, q[:2], return_lse=True)
    np.testing.assert_array_equal(out[:2], expected)
    np.testing.assert_array_equal(lse[:2], expected_lse)
    assert (out[2] == 7.0).all() and (lse[2] == 7.0).all()
    with pytest.raises(ValueError, match="q has shape"):
        attention.run(q[:1])
    with pytest.raises(ValueError, match="out has 2 rows but q has 3"):
        attention.run(q, out=out[:2])
    # Outputs it makes itself hold the empty state past the plan's rows, not whatever memory held.
    new_out, new_lse = attention.run(q, return_lse=True)
    np.testing.assert_array_equal(new_out[:2], expected)
    assert (new_out[2] == 0.0).all() and (new_lse[2] == -np.inf).all()


def test_cache_attention_serves_one_call_at_a_time(rng):
    """plan() and run() release the GIL; one overlapping another (held here as a thread would hold
    it) is refused rather than racing on the plans, and the wrapper works again once it is free."""
    cache = cache_f32()
    seq = cache.add([1, 2, 3]).seq
    attention = chunktree.CacheAttention(cache, num_q_heads=Q_HEADS)
    attention.plan([seq])
    q = rng.standard_normal((1, Q_HEADS, DIM)).astype(np.float32)
    with attention._busy:  # another thread's call in flight
        with pytest.raises(ValueError, match="another call .* is using this CacheAttention"):
            attention.run(q)
        with pytest.raises(ValueError, match="another call"):
            attention.plan([seq])
    assert attention.run(q).shape == q.shape
