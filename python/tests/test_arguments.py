"""Arguments of the wrong type or form, through every public function: each is a TypeError or
ValueError (KeyError for a handle no sequence can have) whose message names the argument, and the
cache is left as it was. Slot arrays are exactly [n, 2] ints; nothing is reshaped or converted."""
import numpy as np
import pytest

import chunktree

Q_HEADS, KV_HEADS, DIM = 4, 2, 64


def make_cache():
    return chunktree.PrefixCache(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=16, chunk_size=16, dtype="f32")


def kv(tokens):
    return np.zeros((tokens, KV_HEADS, DIM), np.float32)


def states(tokens):
    return np.zeros((tokens, Q_HEADS, DIM), np.float32), np.zeros((tokens, Q_HEADS), np.float32)


# Wrong values of each kind of argument, and what they raise. Optional arguments take None.
OPTIONAL_INT = [("1", TypeError), (1.5, TypeError), (True, TypeError), ([1], TypeError), (2**40, ValueError)]
OPTIONAL_INTS = [("abc", TypeError), (5, TypeError), ([1.5], ValueError), ([True], ValueError), ([[1]], ValueError), ([2**31], ValueError)]
OPTIONAL_ARRAY = [([[[0.0]]], TypeError), ("q", TypeError), (3, TypeError), (np.zeros(4, np.float32), ValueError)]
WRONG = {
    "int": OPTIONAL_INT + [(None, TypeError)],
    "optional int": OPTIONAL_INT,
    "handle": [("1", TypeError), (1.5, TypeError), (None, TypeError), ([1], TypeError), (-1, KeyError), (2**64, KeyError)],
    "optional number": [("0.1", TypeError), ([0.1], TypeError), (True, TypeError)],
    "text": [(None, TypeError), (16, TypeError)],
    "array": OPTIONAL_ARRAY + [(None, TypeError)],
    "optional array": OPTIONAL_ARRAY,
    "ints": OPTIONAL_INTS + [(None, TypeError)],
    "optional ints": OPTIONAL_INTS,
    "handles": [(None, TypeError), (5, TypeError), (["1"], TypeError), ([-1], KeyError)],
    "object": [(None, TypeError), ("cache", TypeError), (object(), TypeError)],
    "levels": [(None, TypeError), (5, TypeError), ([5], TypeError), ([[5]], TypeError), ([[(None, 0, 1)]], TypeError)],
    "segments": [(None, TypeError), ([None], TypeError), ([(kv(1), kv(1))], TypeError)],
    "stream": [("0", TypeError), (1.5, TypeError), (-1, ValueError)],
}


def calls():
    """(name, function, valid keyword arguments, the kind of each argument probed): fresh objects each time."""
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    appended = cache.add([1, 2, 3, 4])
    plan = chunktree.make_plan(cache, [seq])
    segment = chunktree.KvSegment(kv(4), kv(4))
    levels = chunktree.Levels([[chunktree.SharedSegment(segment, 0, 1)]], own=[chunktree.KvSegment(kv(1), kv(1))])
    o, lse = states(1)
    return cache, [
        ("PrefixCache", chunktree.PrefixCache,
         dict(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=8, num_layers=1, chunk_size=16, dtype="f32", device="cpu"),
         dict(num_kv_heads="int", head_dim="int", capacity_chunks="int", num_layers="int", chunk_size="int", dtype="text", device="text")),
        ("add", cache.add, dict(tokens=[7, 8]), dict(tokens="ints")),
        ("append", cache.append, dict(seq=seq, tokens=[9]), dict(seq="handle", tokens="ints")),
        ("fork", cache.fork, dict(seq=seq, n=1), dict(seq="handle", n="int")),
        ("remove", cache.remove, dict(seq=seq), dict(seq="handle")),
        ("length", cache.length, dict(seq=seq), dict(seq="handle")),
        ("tokens", cache.tokens, dict(seq=seq), dict(seq="handle")),
        ("slots", cache.slots, dict(seq=seq), dict(seq="handle")),
        ("write_kv", cache.write_kv, dict(layer=0, slots=appended.slots, k=kv(1), v=kv(1)),
         dict(layer="int", slots="ints", k="array", v="array")),
        ("make_plan", chunktree.make_plan,
         dict(cache=cache, batch=[seq], min_shared_rows=2, max_item_tokens=0, queries_per_seq=1, num_q_heads=Q_HEADS),
         dict(cache="object", batch="handles", min_shared_rows="int", max_item_tokens="optional int", queries_per_seq="int",
              num_q_heads="optional int")),
        ("attend", chunktree.attend,
         dict(cache=cache, plan=plan, q=o, layer=0, out=o.copy(), lse=lse.copy(), num_q_heads=Q_HEADS, scale=0.1, num_threads=1),
         dict(cache="object", plan="object", q="array", layer="int", out="optional array", lse="optional array", num_q_heads="optional int",
              scale="optional number", num_threads="int")),
        ("KvSegment", chunktree.KvSegment, dict(k=kv(4), v=kv(4), length=4), dict(k="array", v="array", length="optional int")),
        ("KvSegment paged", chunktree.KvSegment, dict(k=kv(4)[None], v=kv(4)[None], length=3, pages=[0]), dict(pages="optional ints")),
        ("Levels", chunktree.Levels, dict(levels=levels.levels, own=levels.own, queries_per_seq=1),
         dict(levels="levels", own="segments", queries_per_seq="int")),
        ("attend_levels", chunktree.attend_levels, dict(levels=levels, q=o, out=o.copy(), lse=lse.copy(), scale=0.1, num_threads=1),
         dict(levels="object", q="array", out="optional array", lse="optional array", scale="optional number", num_threads="int")),
        ("merge_state", chunktree.merge_state, dict(a_o=o, a_lse=lse, b_o=o, b_lse=lse, out_o=o.copy(), out_lse=lse.copy(), stream=0),
         dict(a_o="array", a_lse="array", b_o="array", b_lse="array", out_o="optional array", out_lse="optional array", stream="stream")),
        ("merge_state_in_place", chunktree.merge_state_in_place, dict(o=o.copy(), lse=lse.copy(), other_o=o, other_lse=lse, stream=0),
         dict(o="array", lse="array", other_o="array", other_lse="array", stream="stream")),
        ("merge_states", chunktree.merge_states, dict(o=o[:, None].copy(), lse=lse[:, None].copy(), out_o=o.copy(), out_lse=lse.copy()),
         dict(o="array", lse="array", out_o="optional array", out_lse="optional array")),
    ]


CASES = [(name, argument, index) for name, _, _, kinds in calls()[1] for argument, kind in kinds.items() for index in range(len(WRONG[kind]))]


@pytest.mark.parametrize("name, argument, index", CASES, ids=[f"{name}-{argument}-{index}" for name, argument, index in CASES])
def test_a_wrong_argument_is_named(name, argument, index):
    cache, table = calls()
    _, function, valid, kinds = next(call for call in table if call[0] == name)
    wrong, error = WRONG[kinds[argument]][index]
    before = (cache.stats(), cache.version)
    with pytest.raises(error) as raised:
        function(**{**valid, argument: wrong})
    message = str(raised.value).strip("'")  # a KeyError's str is quoted
    assert message.startswith(argument), message  # "q must be ...", not a message about the whole signature
    assert (cache.stats(), cache.version) == before


@pytest.mark.parametrize("name", [call[0] for call in calls()[1]])
def test_every_valid_call_runs(name):
    """The probe's baseline: each call above succeeds as given, so each failure is the wrong argument's."""
    _, function, valid, _ = next(call for call in calls()[1] if call[0] == name)
    function(**valid)


def test_contains_is_false_for_an_int_no_handle_can_be():
    cache = make_cache()
    assert -1 not in cache and 2**64 not in cache
    with pytest.raises(TypeError, match="seq"):
        "1" in cache


def test_a_shared_segment_of_no_kv_segment_is_named():
    with pytest.raises(TypeError, match=r"levels\[0\]\[0\].kv must be a chunktree.KvSegment"):
        chunktree.Levels([[chunktree.SharedSegment("kv", 0, 1)]])


# ------------------------------------------------------------------------------------------------
# Slots: exactly [n, 2] ints, or an error that says what was expected and what came

def fresh_write():
    """A cache with one sequence of 4 tokens written, and a second one's 2 new slots to write."""
    cache = make_cache()
    first = cache.add([1, 2, 3, 4])
    cache.write_kv(0, first.slots, kv(4), kv(4))
    second = cache.add([1, 2, 5, 6])
    return cache, first, second


@pytest.mark.parametrize("slots, message", [
    (lambda s: s.reshape(1, 4), r"shape \[n, 2\].*got shape \(1, 4\)"),
    (lambda s: np.concatenate([s, s[:, :1]], axis=1), r"shape \[n, 2\].*got shape \(2, 3\)"),
    (lambda s: s.ravel(), r"shape \[n, 2\].*got shape \(4,\)"),
    (lambda s: s[None], r"shape \[n, 2\].*got shape \(1, 2, 2\)"),
    (lambda s: s.astype(np.float64) + 0.5, "integer dtype.*got dtype float64"),
    (lambda s: s.astype(np.float32), "integer dtype.*got dtype float32"),
    (lambda s: s.astype(bool), "integer dtype.*got dtype bool"),
    (lambda s: s.astype(np.int64) + 2**32, "int32 values"),
    (lambda s: s.astype(np.uint64) + 2**31, "int32 values"),
    (lambda s: [[int(c), float(o)] for c, o in s], "integer dtype.*got dtype float64"),
    (lambda s: [[int(c), int(o) + 2**32] for c, o in s], "int32 values"),
    (lambda s: [[int(c)] for c, o in s], r"got shape \(2, 1\)"),
    (lambda s: [[int(s[0][0]), int(s[0][1])], [int(s[1][0])]], "slots must be"),
    (lambda s: [], r"got shape \(0,\)"),
])
def test_write_kv_refuses_slots_that_are_not_n_by_2_int32(slots, message):
    cache, first, second = fresh_write()
    before = cache.stats()
    with pytest.raises(ValueError, match=message):
        cache.write_kv(0, slots(second.slots), kv(2), kv(2))
    assert cache.stats() == before


@pytest.mark.parametrize("slots", [None, 7, "slots", {0: 1}])
def test_write_kv_slots_of_no_array_or_list_are_a_type_error(slots):
    cache, _, second = fresh_write()
    with pytest.raises(TypeError, match=r"slots must be \[n, 2\]"):
        cache.write_kv(0, slots, kv(2), kv(2))


@pytest.mark.parametrize("convert", [np.asarray, lambda s: s.astype(np.int64), lambda s: s.astype(np.uint16), lambda s: s.tolist(),
                                     lambda s: tuple(map(tuple, s.tolist())), lambda s: np.asfortranarray(s)])
def test_write_kv_takes_any_integer_n_by_2_slots(convert):
    cache, _, second = fresh_write()
    values = np.arange(2 * KV_HEADS * DIM, dtype=np.float32).reshape(2, KV_HEADS, DIM)
    cache.write_kv(0, convert(second.slots), values, values)
    plan = chunktree.make_plan(cache, [second.seq], queries_per_seq=2)
    chunktree.attend(cache, plan, np.zeros((2, Q_HEADS, DIM), np.float32))


def test_write_kv_takes_torch_cpu_slots():
    torch = pytest.importorskip("torch")
    cache, _, second = fresh_write()
    cache.write_kv(0, torch.from_numpy(second.slots.astype(np.int64)), kv(2), kv(2))
    with pytest.raises(ValueError, match="integer dtype"):
        cache.write_kv(0, torch.from_numpy(second.slots).float(), kv(2), kv(2))
    with pytest.raises(ValueError, match=r"shape \[n, 2\]"):
        cache.write_kv(0, torch.from_numpy(second.slots).reshape(-1), kv(2), kv(2))


def test_torch_arrays_are_placed_where_dlpack_places_them():
    """Where an array lives is read from a plain torch tensor's is_cuda (torch's __dlpack_device__ is
    Python, ~1 µs a call); it must say what DLPack says, for every kind of tensor a caller passes."""
    torch = pytest.importorskip("torch")
    from chunktree._arguments import _on_cuda
    tensors = [torch.zeros(2), torch.zeros(4)[::2], torch.nn.Parameter(torch.zeros(2))]
    if torch.cuda.is_available():
        tensors += [torch.zeros(2, device="cuda"), torch.zeros(2).pin_memory(), torch.nn.Parameter(torch.zeros(2, device="cuda"))]
    for tensor in tensors:
        assert _on_cuda(tensor) == (tensor.__dlpack_device__()[0] == 2), tensor


def test_the_binding_converts_no_slots():
    """chunktree._core takes int32 [n, 2] as it is: anything else is refused, not cast."""
    cache, _, second = fresh_write()
    with pytest.raises(TypeError):
        cache._cache.write_kv(0, second.slots.astype(np.int64), kv(2), kv(2))
    with pytest.raises(TypeError):
        cache._cache.write_kv(0, second.slots.astype(np.float32), kv(2), kv(2))


# ------------------------------------------------------------------------------------------------
# Which argument a message blames: inputs are converted before outputs

def test_a_q_of_the_wrong_dtype_is_blamed_on_q():
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    cache.write_kv(0, cache.slots(seq), kv(3), kv(3))
    q = np.zeros((1, Q_HEADS, DIM), np.int32)  # out is allocated like q: int32 too
    with pytest.raises(ValueError, match="^q is int32; chunktree.s arrays are float32, float16 or bfloat16"):
        chunktree.attend(cache, chunktree.make_plan(cache, [seq]), q)
    levels = chunktree.Levels([], own=[chunktree.KvSegment(kv(1), kv(1))])
    with pytest.raises(ValueError, match="^q is int32; chunktree.s arrays are float32, float16 or bfloat16"):
        chunktree.attend_levels(levels, q)


def test_merge_inputs_of_the_wrong_dtype_are_blamed_on_themselves():
    o, lse = states(2)
    bad = o.astype(np.int32)  # the outputs are allocated like it
    with pytest.raises(ValueError, match="^a_o is int32; "):
        chunktree.merge_state(bad, lse, o, lse)
    with pytest.raises(ValueError, match="^o is int32; "):
        chunktree.merge_states(bad[:, None].copy(), lse[:, None].copy())
    with pytest.raises(ValueError, match="^o is int32; "):
        chunktree.merge_state_in_place(bad, lse, o.astype(np.int32), lse)


def test_write_kv_blames_k_before_v():
    cache, _, second = fresh_write()
    wrong = np.zeros((2, KV_HEADS, DIM), np.int32)
    with pytest.raises(ValueError, match="^k is int32; "):
        cache.write_kv(0, second.slots, wrong, wrong)


@pytest.mark.parametrize("scale", [0.0, -0.0, 1e-46, float("nan"), float("inf")])
def test_a_scale_that_would_turn_into_the_default_is_refused(scale):
    """0 is the C++ API's "1/sqrt(head_dim)": a given scale that is 0 (in float32) or not finite is a
    ValueError wherever a scale is taken, not the default silently."""
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    plan = chunktree.make_plan(cache, [seq])
    q = np.ones((1, Q_HEADS, DIM), np.float32)
    levels = chunktree.Levels([], own=[chunktree.KvSegment(kv(1), kv(1))])
    paged = chunktree.PagedAttention(device="cpu")
    for name, call in [("scale", lambda: chunktree.attend(cache, plan, q, scale=scale)),
                       ("scale", lambda: chunktree.CacheAttention(cache, Q_HEADS, scale=scale)),
                       ("scale", lambda: chunktree.attend_levels(levels, q, scale=scale)),
                       ("sm_scale", lambda: paged.plan([0, 1], [0], [3], Q_HEADS, KV_HEADS, DIM, 16, sm_scale=scale))]:
        with pytest.raises(ValueError, match=f"^{name} must be a finite number other than 0"):
            call()


def test_arguments_refused_where_they_are_given():
    """Wrong values are refused by the call that takes them, not by a later one."""
    cache = make_cache()
    with pytest.raises(ValueError, match="^num_threads must be within \\[0"):
        chunktree.PagedAttention(device="cpu", num_threads=-1)
    with pytest.raises(ValueError, match="^num_q_heads \\(3\\) must be a positive multiple"):
        chunktree.CacheAttention(cache, num_q_heads=3)
    with pytest.raises(ValueError, match="^length must be at least 0"):
        chunktree.KvSegment(kv(4), kv(4), length=-1)
    with pytest.raises(ValueError, match="^length 5 is past the 4 tokens"):
        chunktree.KvSegment(kv(4), kv(4), length=5)
    with pytest.raises(ValueError, match="^k has shape \\(4, 2, 64\\) but v has \\(3, 2, 64\\)"):
        chunktree.KvSegment(kv(4), kv(3))
    with pytest.raises(ValueError, match="^queries_per_seq must be at least 1"):
        chunktree.Levels([], own=[chunktree.KvSegment(kv(1), kv(1))], queries_per_seq=0)
    with pytest.raises(ValueError, match="^num_q_heads \\(3\\) must be a positive multiple"):
        chunktree.make_plan(cache, [cache.add([1]).seq], num_q_heads=3)  # on a CPU cache too, where no cost model reads it
    with pytest.raises(ValueError, match="max_item_tokens must be 0 \\(no split\\) or at least the chunk size 16, got 5"):
        chunktree.CacheAttention(cache, max_item_tokens=5)


def test_bools_among_ints_are_refused():
    """numpy reads [7, True] as ints; a token or slot list holding a bool is refused all the same."""
    cache = make_cache()
    before = cache.stats()
    for tokens in ([7, True, False], (3, np.bool_(True))):
        with pytest.raises(ValueError, match="^tokens must hold ints, not bools"):
            cache.add(tokens)
    assert cache.stats() == before
    added = cache.add([1, 2, 3])
    with pytest.raises(ValueError, match="^tokens must hold ints, not bools"):
        cache.append(added.seq, [4, True])
    with pytest.raises(ValueError, match="^tokens must hold ints, not bools"):
        cache.append_batch([added.seq], [5, True])
    with pytest.raises(ValueError, match="^slots must hold ints, not bools"):
        cache.write_kv(0, [[int(added.slots[0][0]), True]], kv(1), kv(1))
    assert cache.tokens(added.seq) == [1, 2, 3]


def test_outputs_that_cannot_be_written_and_big_endian_inputs_are_named():
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    plan = chunktree.make_plan(cache, [seq])
    q = np.ones((1, Q_HEADS, DIM), np.float32)
    frozen = np.zeros_like(q)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="^out is read-only"):
        chunktree.attend(cache, plan, q, out=frozen)
    o, lse = states(1)
    with pytest.raises(ValueError, match="^out_o is read-only"):
        chunktree.merge_state(o, lse, o, lse, out_o=frozen)
    with pytest.raises(ValueError, match="^q is big-endian"):
        chunktree.attend(cache, plan, q.astype(">f4"))
    with pytest.raises(ValueError, match="^lse is float64; "):
        chunktree.attend(cache, plan, q, lse=np.zeros((1, Q_HEADS), np.float64))


def test_zero_d_bools_are_not_ints_and_zero_d_ints_in_lists_are_their_values():
    """A 0-d bool array (numpy's, or torch's, which operator.index takes as 0 or 1) is no int; a 0-d
    int array inside a list (a token from logits.argmax()) is its value; a 0-d array where a list
    belongs is named as the scalar it is."""
    cache = make_cache()
    added = cache.add([1, 2, 3])
    plan = chunktree.make_plan(cache, [added.seq])
    q = np.ones((1, Q_HEADS, DIM), np.float32)
    with pytest.raises(TypeError, match="^layer must be an int, got numpy.ndarray of dtype bool"):
        chunktree.attend(cache, plan, q, layer=np.array(True))
    with pytest.raises(TypeError, match="^n must be an int"):
        cache.fork(added.seq, np.array(True))
    with pytest.raises(ValueError, match="^tokens must hold ints"):
        cache.append(added.seq, [np.array(True)])
    with pytest.raises(TypeError, match="^batch must be a list of sequence handles, got numpy.ndarray of 0 dimensions"):
        chunktree.make_plan(cache, np.array(added.seq))
    assert cache.tokens(added.seq) == [1, 2, 3]
    cache.append(added.seq, [np.array(4), np.int64(5)])
    assert cache.tokens(added.seq) == [1, 2, 3, 4, 5]
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match="^layer must be an int, got torch.Tensor of dtype bool"):
        chunktree.attend(cache, chunktree.make_plan(cache, [added.seq]), q, layer=torch.tensor(True))
    with pytest.raises(TypeError, match="^batch\\[0\\] must be an int, got torch.Tensor of dtype bool"):
        chunktree.make_plan(cache, [torch.tensor(True)])
    cache.append(added.seq, [torch.tensor(6)])
    assert cache.tokens(added.seq) == [1, 2, 3, 4, 5, 6]


def test_arrays_no_dlpack_can_carry_are_named():
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    plan = chunktree.make_plan(cache, [seq])
    for dtype in (object, np.longdouble, "datetime64[s]"):
        with pytest.raises(TypeError, match="^q has dtype .*, which chunktree cannot read; pass float32, float16 or bfloat16"):
            chunktree.attend(cache, plan, np.zeros((1, Q_HEADS, DIM), dtype))


def test_return_lse_and_a_stream_given_on_the_cpu_are_checked():
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    plan = chunktree.make_plan(cache, [seq])
    q = np.ones((1, Q_HEADS, DIM), np.float32)
    with pytest.raises(TypeError, match="^return_lse must be a bool"):
        chunktree.attend(cache, plan, q, return_lse="no")
    with pytest.raises(TypeError, match="^stream \\(a cudaStream_t handle\\) must be an int"):
        chunktree.attend(cache, plan, q, stream="x")
    with pytest.raises(ValueError, match="^stream \\(a cudaStream_t handle\\) must be within"):
        chunktree.attend(cache, plan, q, stream=-1)
    attention = chunktree.CacheAttention(cache, Q_HEADS)
    attention.plan([seq])
    with pytest.raises(TypeError, match="^stream"):
        attention.run(q, stream="x")
    levels = chunktree.Levels([], own=[chunktree.KvSegment(kv(2), kv(2))])
    with pytest.raises(TypeError, match="^stream"):
        chunktree.attend_levels(levels, q, stream="x")
    with pytest.raises(TypeError, match="^return_lse must be a bool"):
        chunktree.attend_levels(levels, q, return_lse="False")


def test_values_past_the_argument_types_and_the_hosts_memory_are_named():
    cache = make_cache()
    seq = cache.add([1, 2, 3]).seq
    with pytest.raises(ValueError, match="^n must fit in a 32-bit int \\(the call checks its own range within that\\), got 2147483648"):
        cache.fork(seq, 2**31)
    with pytest.raises(ValueError, match="^capacity_chunks must fit in a 32-bit int"):
        chunktree.PrefixCache(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=2**31)
    # 2^50 bytes of pools: no host has them (and a failed allocation is a ValueError that says what to change).
    with pytest.raises(ValueError, match="bytes of host memory could not be allocated; use a smaller capacity_chunks"):
        chunktree.PrefixCache(num_kv_heads=64, head_dim=256, capacity_chunks=2**20, chunk_size=128, num_layers=64, dtype="f32")


def test_host_kv_an_f16_cache_cannot_hold_is_refused_and_nothing_is_written():
    cache = chunktree.PrefixCache(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=4, chunk_size=16, dtype="f16")
    added = cache.add([1, 2])
    k = np.ones((2, KV_HEADS, DIM), np.float32)
    cache.write_kv(0, added.slots, k, k)
    plan = chunktree.make_plan(cache, [added.seq])
    q = np.ones((1, Q_HEADS, DIM), np.float32)
    before = chunktree.attend(cache, plan, q)
    big = k * 2
    big[1, 0, 3] = 1e5
    with pytest.raises(ValueError, match="write_kv: k holds 100000 \\(slot 1, kv head 0, dim 3\\), which the cache's f16 rounds to inf"):
        cache.write_kv(0, added.slots, big, k)
    np.testing.assert_array_equal(chunktree.attend(cache, plan, q), before)


def test_a_pool_of_no_page_and_levels_past_q_say_what_is_wrong():
    paged = chunktree.PagedAttention(device="cpu")
    paged.plan([0], [], [], Q_HEADS, KV_HEADS, DIM, 16)
    with pytest.raises(ValueError, match="kv_cache's K pool has shape \\(0, 16, 2, 64\\), no element; pass a pool of at least one page"):
        paged.run(np.zeros((0, Q_HEADS, DIM), np.float32), np.zeros((0, 2, 16, KV_HEADS, DIM), np.float32))
    segment = chunktree.KvSegment(kv(4), kv(4))
    levels = chunktree.Levels([[chunktree.SharedSegment(segment, 0, 2)]])
    with pytest.raises(ValueError, match="expected a range within the call's 1 sequences \\(q's 1 rows at queries_per_seq 1\\)"):
        chunktree.attend_levels(levels, np.ones((1, Q_HEADS, DIM), np.float32))


def test_a_slot_twice_in_one_write_is_refused():
    cache = make_cache()
    added = cache.add([1, 2, 3])
    twice = np.concatenate([added.slots, added.slots[:1]])
    with pytest.raises(ValueError, match="slots 0 and 3 are both \\(chunk 0, offset 0\\); write each slot once a call"):
        cache.write_kv(0, twice, kv(4), kv(4))


def test_ml_dtypes_bfloat16_arrays_are_read():
    """ml_dtypes' bfloat16 is a numpy dtype of kind V: read as bf16, not refused with the dtypes no
    array can hand over."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    cache = chunktree.PrefixCache(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=4, chunk_size=16, dtype="bf16")
    added = cache.add([1, 2])
    values = np.random.default_rng(3).standard_normal((2, KV_HEADS, DIM)).astype(np.float32)
    cache.write_kv(0, added.slots, values.astype(ml_dtypes.bfloat16), values.astype(ml_dtypes.bfloat16))
    plan = chunktree.make_plan(cache, [added.seq])
    q = np.ones((1, Q_HEADS, DIM), np.float32)
    from_bf16 = chunktree.attend(cache, plan, q)
    cache.write_kv(0, added.slots, values, values)
    np.testing.assert_array_equal(chunktree.attend(cache, plan, q), from_bf16)
