"""The prefix cache through Python: sharing, handles, errors that leave the cache unchanged."""
import numpy as np
import pytest

import chunktree


def make_cache(**kwargs):
    options = dict(num_kv_heads=2, head_dim=64, capacity_chunks=64, chunk_size=16, dtype="f32")
    options.update(kwargs)
    return chunktree.PrefixCache(**options)


def test_add_shares_the_longest_cached_prefix():
    cache = make_cache()
    a = cache.add(list(range(40)))
    assert a.cached_tokens == 0 and a.slots.shape == (40, 2) and a.slots.dtype == np.int32
    b = cache.add(list(range(30)) + [99, 98])
    assert b.cached_tokens == 30 and b.slots.shape == (2, 2)
    stats = cache.stats()
    assert stats["sequences"] == 2 and stats["tokens_stored"] == 42 and stats["tokens_without_sharing"] == 72
    assert cache.length(b.seq) == 32 and cache.tokens(b.seq)[-2:] == [99, 98]
    assert a.seq in cache and cache.slots(a.seq).shape == (40, 2)


def test_append_fork_remove():
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    assert cache.append(seq, [4, 5]).shape == (2, 2)
    children = cache.fork(seq, 3)
    assert len(children) == 3 and all(cache.tokens(c) == [1, 2, 3, 4, 5] for c in children)
    version = cache.version
    cache.remove(children[0])
    assert cache.version != version and children[0] not in cache
    assert cache.config["chunk_size"] == 16 and cache.device == "cpu"


def test_no_item_holds_more_than_max_item_tokens():
    assert chunktree.MAX_ITEM_TOKENS == 32768
    cache = make_cache(capacity_chunks=2 * 32768 // 16 + 4)
    seq = cache.add(list(range(chunktree.MAX_ITEM_TOKENS + 1))).seq
    for max_item_tokens in (0, 4 * chunktree.MAX_ITEM_TOKENS):  # whole, or a longer split: cut at the cap all the same
        assert chunktree.make_plan(cache, [seq], max_item_tokens=max_item_tokens).num_items == 2


def test_append_batch_is_one_decode_step():
    batched, one_by_one = make_cache(), make_cache()
    handles = {}  # each cache's own handles
    for cache in (batched, one_by_one):
        seq = cache.add(list(range(20))).seq
        handles[cache] = [seq] + cache.fork(seq, 3)
    seqs, others = handles[batched], handles[one_by_one]
    expected = np.concatenate([one_by_one.append(s, [7, 8]) for s in reversed(others)])
    np.testing.assert_array_equal(batched.append_batch(list(reversed(seqs)), [7, 8] * 4), expected)
    assert all(batched.tokens(s) == one_by_one.tokens(o) for s, o in zip(seqs, others))
    with pytest.raises(KeyError, match="not of this cache"):  # a handle names a sequence of its own cache only
        batched.append_batch([seqs[1], others[0]], [1, 2])
    before = batched.stats()
    with pytest.raises(ValueError, match="twice"):
        batched.append_batch([seqs[0], seqs[0]], [1, 2])
    with pytest.raises(ValueError, match="same number of tokens"):
        batched.append_batch(seqs, [1, 2, 3])
    with pytest.raises(KeyError):
        batched.append_batch([seqs[0], 12345], [1, 2])
    assert batched.stats() == before


def test_errors_are_python_exceptions_and_change_nothing():
    cache = make_cache(capacity_chunks=2)
    seq = cache.add([1] * 20).seq
    before = cache.stats()
    with pytest.raises(chunktree.CapacityError, match="chunk"):
        cache.add(list(range(100, 200)))
    assert cache.stats() == before
    with pytest.raises(KeyError):
        cache.append(seq + 12345, [1])
    with pytest.raises(ValueError, match="head_dim"):
        make_cache(head_dim=100)
    with pytest.raises(ValueError, match="dtype"):
        make_cache(dtype="f8")
    with pytest.raises(ValueError, match="device"):
        make_cache(device="tpu")
    k = np.zeros((3, 2, 64), np.float32)
    with pytest.raises(ValueError):
        cache.write_kv(0, cache.slots(seq)[:2], k, k)  # 2 slots, 3 tokens of KV
    assert cache.stats() == before


def test_write_kv_rejects_non_contiguous_and_wrong_dtypes():
    cache = make_cache()
    added = cache.add(list(range(4)))
    k = np.zeros((4, 2, 128), np.float32)[:, :, ::2]  # a strided view
    with pytest.raises(ValueError, match="contiguous"):
        cache.write_kv(0, added.slots, k, k)
    with pytest.raises(ValueError, match="float32, float16 or bfloat16"):
        cache.write_kv(0, added.slots, np.zeros((4, 2, 64), np.int32), np.zeros((4, 2, 64), np.int32))


def test_write_kv_of_a_fully_cached_add_writes_nothing():
    cache = make_cache()
    first = cache.add(list(range(20)))
    cache.write_kv(0, first.slots, np.ones((20, 2, 64), np.float32), np.ones((20, 2, 64), np.float32))
    again = cache.add(list(range(20)))
    assert again.cached_tokens == 20 and again.slots.shape == (0, 2)
    before = cache.stats()
    empty = np.zeros((0, 2, 64), np.float32)  # numpy gives arrays of no elements strides of 0
    cache.write_kv(0, again.slots, empty, empty)
    assert cache.stats() == before
    with pytest.raises(ValueError, match=r"\[0, 2, 64\]"):  # KV for no slots is no tokens
        cache.write_kv(0, again.slots, np.zeros((1, 2, 64), np.float32), np.zeros((1, 2, 64), np.float32))
