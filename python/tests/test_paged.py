"""The paged front end (chunktree.PagedAttention) against the fp64 reference: random page tables with
shared prefixes at several depths, both layouts, interleaved and separate pools, GQA, causal query
tokens. The CPU backend with numpy; the GPU with torch, and beside FlashInfer where it is installed."""
import math

import numpy as np
import pytest

import chunktree
from conftest import reference


class PagedBatch:
    """A batch of sequences over one pool of pages: `groups` prompts of `prompt_pages` pages, some
    split into `sub_groups` that share more pages, every sequence then its own pages; the batch
    order interleaves the groups and the page ids are shuffled."""

    def __init__(self, rng, *, groups=3, per_group=4, prompt_pages=3, sub_pages=2, own_pages=2, page_size=16, kv_heads=2, head_dim=64,
                 identical=1, causal_queries=1):
        self.page_size, self.kv_heads, self.head_dim = page_size, kv_heads, head_dim
        free = list(rng.permutation(2 * groups * per_group * (prompt_pages + 2 * sub_pages + own_pages)))
        take = lambda n: [int(free.pop()) for _ in range(n)]
        tables, lasts = [], []
        for _ in range(groups):
            prompt = take(prompt_pages)
            halves = [take(sub_pages), take(sub_pages)]
            for member in range(per_group):
                own = int(rng.integers(1, own_pages + 1))
                pages = prompt + halves[member % 2] + take(own)
                tables.append(pages)
                lasts.append(int(rng.integers(max(1, causal_queries - page_size * (len(pages) - 1)), page_size + 1)))
        for _ in range(identical):  # a sequence identical to the first: every page shared, the last one too
            tables.append(list(tables[0]))
            lasts.append(lasts[0])
        tables.append(tables[0][:prompt_pages])  # a strict prefix of another sequence
        lasts.append(page_size)
        order = rng.permutation(len(tables))
        self.tables = [tables[i] for i in order]
        self.lasts = [lasts[i] for i in order]
        self.num_pages = max(max(t) for t in self.tables) + 1
        self.indptr = np.cumsum([0] + [len(t) for t in self.tables]).astype(np.int32)
        self.indices = np.concatenate([np.asarray(t, dtype=np.int32) for t in self.tables])
        self.last_page_len = np.asarray(self.lasts, dtype=np.int32)
        # Random K and V, rounded to bf16 so that every backend reads the same values.
        shape = (self.num_pages, page_size, kv_heads, head_dim)
        self.k = bf16_round(rng.standard_normal(shape, dtype=np.float32))
        self.v = bf16_round(rng.standard_normal(shape, dtype=np.float32))

    @property
    def batch(self):
        return len(self.tables)

    def length(self, s):
        return (len(self.tables[s]) - 1) * self.page_size + self.lasts[s]

    def sequence_kv(self, s, tokens):
        """The first `tokens` of sequence s as contiguous [tokens, kv_heads, d]."""
        k = np.concatenate([self.k[p] for p in self.tables[s]])[:tokens]
        v = np.concatenate([self.v[p] for p in self.tables[s]])[:tokens]
        return k, v

    def pools(self, layout, interleaved):
        """kv_cache as an engine holds it, from the NHD master copy."""
        k, v = (x if layout == "NHD" else x.transpose(0, 2, 1, 3) for x in (self.k, self.v))
        if interleaved:
            return np.ascontiguousarray(np.stack([k, v], axis=1))
        return np.ascontiguousarray(k), np.ascontiguousarray(v)

    def expected(self, q, queries, causal):
        out = np.empty(q.shape, dtype=np.float64)
        lse = np.empty(q.shape[:2], dtype=np.float64)
        for s in range(self.batch):
            for i in range(queries):
                row = s * queries + i
                seen = self.length(s) - queries + i + 1 if causal else self.length(s)
                out[row], lse[row] = reference(q[row], *self.sequence_kv(s, seen))
        return out, lse


def bf16_round(x):
    bits = np.asarray(x, dtype=np.float32).view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)


def check(out, lse, expected, tolerance):
    expected_o, expected_lse = expected
    assert np.all(np.isfinite(out)), "an output was not written"
    for row in range(out.shape[0]):
        error = np.linalg.norm(out[row] - expected_o[row]) / np.linalg.norm(expected_o[row])
        assert error < tolerance, f"row {row}: relative error {error}"
    np.testing.assert_allclose(lse, expected_lse, rtol=tolerance, atol=tolerance)


# ------------------------------------------------------------------------------------------------
# CPU

@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("interleaved", [True, False])
@pytest.mark.parametrize("queries,causal", [(1, False), (3, True), (2, False)])
def test_cpu_matches_reference(layout, interleaved, queries, causal):
    rng = np.random.default_rng(hash((layout, interleaved, queries)) % 2**32)
    batch = PagedBatch(rng, page_size=8, causal_queries=queries)
    q_heads = 4
    q = bf16_round(rng.standard_normal((batch.batch * queries, q_heads, batch.head_dim), dtype=np.float32))
    w = chunktree.PagedAttention(device="cpu", kv_layout=layout, num_threads=2)
    qo_indptr = None if queries == 1 else np.arange(batch.batch + 1, dtype=np.int32) * queries
    w.plan(batch.indptr, batch.indices, batch.last_page_len, q_heads, batch.kv_heads, batch.head_dim, batch.page_size,
           qo_indptr=qo_indptr, causal=causal)
    out, lse = w.run(q, batch.pools(layout, interleaved), return_lse=True)
    check(out, lse, batch.expected(q, queries, causal), 1e-5)


def test_cpu_negative_scale_matches_reference():
    """Any finite scale other than 0 (the default's value) is the softmax's, negative too, as in attend."""
    rng = np.random.default_rng(8)
    batch = PagedBatch(rng, page_size=8)
    q = bf16_round(rng.standard_normal((batch.batch, 2, 64), dtype=np.float32))
    w = chunktree.PagedAttention(device="cpu")
    w.plan(batch.indptr, batch.indices, batch.last_page_len, 2, 2, 64, 8, sm_scale=-0.3)
    out, lse = w.run(q, batch.pools("NHD", False), return_lse=True)
    expected = [reference(q[s], *batch.sequence_kv(s, batch.length(s)), scale=-0.3) for s in range(batch.batch)]
    check(out, lse, (np.stack([o for o, _ in expected]), np.stack([l for _, l in expected])), 1e-5)


def test_cpu_strided_views_and_lists():
    """Page tables as plain lists, and pools that are views with a gap between pages."""
    rng = np.random.default_rng(5)
    batch = PagedBatch(rng, page_size=4, kv_heads=1, head_dim=64)
    padded = np.zeros((batch.num_pages, 2, batch.page_size + 1, 1, 64), dtype=np.float32) + 7.0
    padded[:, 0, :-1], padded[:, 1, :-1] = batch.k, batch.v
    q = bf16_round(rng.standard_normal((batch.batch, 2, 64), dtype=np.float32))
    w = chunktree.PagedAttention(device="cpu")
    w.plan(batch.indptr.tolist(), batch.indices.tolist(), batch.last_page_len.tolist(), 2, 1, 64, batch.page_size)
    out, lse = w.run(q, (padded[:, 0, :-1], padded[:, 1, :-1]), return_lse=True)
    check(out, lse, batch.expected(q, 1, False), 1e-5)


def test_cpu_engine_habits_numpy_flags_and_an_axis_added_with_none():
    """What engines hand over: causal as a numpy bool, and an MQA pool kept as [pages, page, d] with its
    kv-head axis added by None (numpy gives it stride 0; it is never stepped along)."""
    rng = np.random.default_rng(8)
    batch = PagedBatch(rng, page_size=4, kv_heads=1, head_dim=64, causal_queries=2)
    q = bf16_round(rng.standard_normal((batch.batch * 2, 4, 64), dtype=np.float32))
    w = chunktree.PagedAttention(device="cpu")
    w.plan(batch.indptr, batch.indices, batch.last_page_len, 4, 1, 64, 4, qo_indptr=np.arange(batch.batch + 1, dtype=np.int32) * 2,
           causal=np.bool_(True))
    k, v = (np.ascontiguousarray(x[:, :, 0, :])[:, :, None, :] for x in (batch.k, batch.v))
    assert k.strides[2] == 0
    out, lse = w.run(q, (k, v), return_lse=True)
    check(out, lse, batch.expected(q, 2, True), 1e-5)
    with pytest.raises(TypeError, match=r"causal must be a bool \(True or False\), got numpy.int64"):
        w.plan(batch.indptr, batch.indices, batch.last_page_len, 4, 1, 64, 4, causal=np.int64(1))
    # Byte strides that are not whole elements (a view of a raw buffer): refused with a message, not nanobind's.
    raw = np.zeros(batch.num_pages * 2 * (4 * 64 * 4 + 2), dtype=np.uint8)
    odd = np.ndarray((batch.num_pages, 4, 1, 64), dtype=np.float32, buffer=raw, strides=(4 * 64 * 4 + 2, 256, 256, 4))
    with pytest.raises(ValueError, match=r"kv_cache\[0\] \(K\)'s strides .* are not whole elements of 4 bytes"):
        w.run(q, (odd, odd))


def test_cpu_errors_name_what_to_fix_and_keep_the_plan():
    rng = np.random.default_rng(6)
    batch = PagedBatch(rng, page_size=8)
    q = bf16_round(rng.standard_normal((batch.batch, 2, 64), dtype=np.float32))
    w = chunktree.PagedAttention(device="cpu")
    with pytest.raises(ValueError, match="no plan yet"):
        w.run(q, batch.pools("NHD", True))
    args = (batch.indptr, batch.indices, batch.last_page_len, 2, 2, 64, 8)
    w.plan(*args)
    before = w.run(q, batch.pools("NHD", True))
    bad_last = batch.last_page_len.copy()
    bad_last[1] = 9
    with pytest.raises(ValueError, match=r"kv_last_page_len\[1\] is 9"):
        w.plan(batch.indptr, batch.indices, bad_last, 2, 2, 64, 8)
    with pytest.raises(ValueError, match="kv_indptr"):
        w.plan(batch.indptr[::-1].copy(), batch.indices, batch.last_page_len, 2, 2, 64, 8)
    with pytest.raises(ValueError, match="same number of query tokens"):
        w.plan(*args, qo_indptr=np.asarray([0] + list(range(2, batch.batch + 2)), dtype=np.int32))
    with pytest.raises(ValueError, match="head_dim 96"):
        w.plan(batch.indptr, batch.indices, batch.last_page_len, 2, 2, 96, 8)
    with pytest.raises(ValueError, match="num_qo_heads"):
        w.plan(batch.indptr, batch.indices, batch.last_page_len, 3, 2, 64, 8)
    with pytest.raises(ValueError, match="must hold ints"):
        w.plan(batch.indptr.astype(np.float32), batch.indices, batch.last_page_len, 2, 2, 64, 8)
    with pytest.raises(ValueError, match="past float32's range"):  # finite in Python, inf in float32
        w.plan(*args, sm_scale=1e39)
    np.testing.assert_array_equal(w.run(q, batch.pools("NHD", True)), before)  # the refused plans changed nothing
    with pytest.raises(ValueError, match="reads page"):
        w.run(q, tuple(x[: batch.num_pages - 1] for x in batch.pools("NHD", False)))
    with pytest.raises(ValueError, match="kv heads"):
        w.run(q, tuple(x[:, :, :1] for x in batch.pools("NHD", False)))
    interleaved = batch.pools("NHD", True)
    with pytest.raises(ValueError, match=r"K has shape \(\d+, 8, 2, 64\) and strides \(2048, 128, 64, 1\), V shape .* strides \(1024, "):
        w.run(q, (interleaved[:, 0], np.ascontiguousarray(interleaved[:, 1])))
    with pytest.raises(ValueError, match=r"pass a contiguous pool"):
        w.run(q, (interleaved[::-1, 0], interleaved[::-1, 1]))
    with pytest.raises(ValueError, match=r"second dimension"):
        w.run(q, np.zeros((4, 3, 8, 2, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="q"):
        w.run(q[:-1], batch.pools("NHD", True))
    outputs = np.empty(q.size + 8, dtype=np.float32)  # lse inside out: a row's lse would overwrite its out
    with pytest.raises(ValueError, match="lse overlaps out"):
        w.run(q, batch.pools("NHD", True), out=outputs[: q.size].reshape(q.shape), lse=outputs[8 : 8 + q.shape[0] * 2].reshape(q.shape[0], 2))
    np.testing.assert_array_equal(w.run(q, batch.pools("NHD", True)), before)
    with pytest.raises(ValueError, match="kv_layout"):
        chunktree.PagedAttention(device="cpu", kv_layout="NDH")


def test_cpu_padding_sequences_of_no_page_give_the_empty_state():
    """A sequence of no page (vLLM's padding of a graph's batch) reads nothing: out 0, lse -inf,
    beside sequences that share pages, in any position of the batch, and with causal query tokens."""
    rng = np.random.default_rng(7)
    batch = PagedBatch(rng, page_size=8, causal_queries=2)
    padding = [0, 3, batch.batch + 2]  # where the padding sequences are in the padded batch (first, among, last)
    counts = [len(t) for t in batch.tables]
    last = list(batch.lasts)
    for at in padding:  # in increasing order: each lands where it is named
        counts.insert(at, 0)
        last.insert(at, 1)
    indptr = np.cumsum([0] + counts).astype(np.int32)
    real = [s for s in range(len(counts)) if s not in padding]  # where each of the batch's sequences went
    q = bf16_round(rng.standard_normal((len(counts) * 2, 4, 64), dtype=np.float32))
    w = chunktree.PagedAttention(device="cpu", num_threads=2)
    w.plan(indptr, batch.indices, np.asarray(last, np.int32), 4, 2, 64, 8, qo_indptr=np.arange(len(counts) + 1, dtype=np.int32) * 2,
           causal=True)
    out, lse = w.run(q, batch.pools("NHD", True), return_lse=True)
    rows = np.concatenate([[2 * s, 2 * s + 1] for s in real])
    check(out[rows], lse[rows], batch.expected(q[rows], 2, True), 2e-5)
    pad_rows = np.concatenate([[2 * s, 2 * s + 1] for s in padding])
    assert np.all(out[pad_rows] == 0) and np.all(lse[pad_rows] == -np.inf)


def test_cpu_flashinfer_decode_plan_arguments_port_as_they_are():
    """plan() takes FlashInfer's decode plan() arguments in its order (as vLLM passes them,
    positionally), options chunktree lacks only at values that change nothing; run() takes
    FlashInfer's run() options the same way; the dtypes plan() is given are checked by run()."""
    rng = np.random.default_rng(8)
    batch = PagedBatch(rng, page_size=8)
    q = bf16_round(rng.standard_normal((batch.batch, 4, 64), dtype=np.float32))
    kv = batch.pools("NHD", True)
    table = (batch.indptr, batch.indices, batch.last_page_len, 4, 2, 64, 8)
    w = chunktree.PagedAttention(device="cpu")
    w.plan(*table, sm_scale=0.3)
    expected = w.run(q, kv)
    lengths = np.asarray([batch.length(s) for s in range(batch.batch)], np.int32)
    # pos_encoding_mode, window_left, logits_soft_cap, q/kv/o/data dtypes, sm_scale, rope_scale, rope_theta, non_blocking,
    # block_tables, seq_lens, fixed_split_size, disable_split_kv: FlashInfer 0.6's order.
    w.plan(*table, "NONE", -1, None, "float32", np.float32, None, None, 0.3, None, None, True, None, lengths, -1, False)
    np.testing.assert_array_equal(w.run(q, kv, k_scale=1.0, v_scale=1.0, window_left=-1, enable_pdl=True, q_len_per_req=1), expected)
    refused = [({"pos_encoding_mode": "ROPE_LLAMA"}, "apply RoPE to q and k before"), ({"window_left": 128}, "no sliding window"),
               ({"logits_soft_cap": 30.0}, "soft-capping"), ({"rope_theta": 1e4}, "ROPE_LLAMA"), ({"block_tables": np.zeros(3)}, "trtllm"),
               ({"fixed_split_size": 64}, "cost model"), ({"disable_split_kv": True}, "cost model"), ({"q_data_type": "int8"}, "q_data_type"),
               ({"seq_lens": lengths + 1}, r"seq_lens\[0\] is"), ({"non_blocking": 1}, "non_blocking")]
    for options, fragment in refused:
        with pytest.raises((ValueError, TypeError), match=fragment):
            w.plan(*table, sm_scale=0.3, **options)
    np.testing.assert_array_equal(w.run(q, kv), expected)  # the last good plan stays
    with pytest.raises(TypeError, match="qo_indptr, causal and stream are keywords"):  # the order of before FlashInfer's
        w.plan(*table, np.arange(batch.batch + 1, dtype=np.int32))
    for options, fragment in [({"k_scale": 0.5}, "no fp8"), ({"sinks": np.zeros(4)}, "sinks"), ({"window_left": 64}, "sliding window"),
                              ({"q_len_per_req": 2}, "1 query tokens per sequence"), ({"kv_cache_sf": (q, q)}, "without scale factors"),
                              ({"skip_softmax_threshold_scale_factor": 0.1}, "every softmax term")]:
        with pytest.raises(ValueError, match=fragment):
            w.run(q, kv, **options)
    w.plan(*table, data_type="float16", sm_scale=0.3)
    with pytest.raises(ValueError, match="q is float32 but plan\\(\\) was given q_data_type float16"):
        w.run(q, kv)
    w.plan(*table, q_data_type="float32", kv_data_type="float16", sm_scale=0.3)
    with pytest.raises(ValueError, match="kv_cache is float32 but plan\\(\\) was given kv_data_type float16"):
        w.run(q, kv)
    w.plan(*table, o_data_type="bfloat16", sm_scale=0.3)
    with pytest.raises(ValueError, match="o_data_type bfloat16"):
        w.run(q, kv)


def test_cpu_empty_batch_and_one_token():
    w = chunktree.PagedAttention(device="cpu")
    pool = np.ones((1, 2, 4, 1, 64), dtype=np.float32)
    w.plan(np.zeros(1, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32), 1, 1, 64, 4)
    assert w.run(np.zeros((0, 1, 64), np.float32), pool).shape == (0, 1, 64)
    w.plan(np.asarray([0, 1], np.int32), np.asarray([0], np.int32), np.asarray([1], np.int32), 1, 1, 64, 4)
    q = bf16_round(np.random.default_rng(1).standard_normal((1, 1, 64), dtype=np.float32))
    pool[0, 1, 0, 0] = np.arange(64)
    out, lse = w.run(q, pool, return_lse=True)
    np.testing.assert_allclose(out[0, 0], np.arange(64), rtol=1e-6)  # one token: its V
    np.testing.assert_allclose(lse[0, 0], float(q[0, 0].sum()) / 8.0, rtol=1e-5)


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_plan_fingerprint_is_the_same_for_the_same_table(device):
    """What the ranks of a tensor-parallel engine compare: two PagedAttentions planning one table
    (each with its head slice's shape) report one fingerprint; another table, another one."""
    if device == "cuda" and not _gpu_ready():
        pytest.skip("needs a Hopper GPU")
    batch = PagedBatch(np.random.default_rng(43), groups=2, per_group=3, page_size=16, kv_heads=2, head_dim=64)
    ranks = [chunktree.PagedAttention(device=device) for _ in range(2)]
    with pytest.raises(ValueError, match="no plan yet"):
        ranks[0].plan_fingerprint()
    for w in ranks:
        w.plan(batch.indptr, batch.indices, batch.last_page_len, 2, 1, 64, 16)
    assert ranks[0].plan_fingerprint() == ranks[1].plan_fingerprint()
    last = batch.last_page_len.copy()
    last[0] = 1 if last[0] != 1 else 2
    ranks[1].plan(batch.indptr, batch.indices, last, 2, 1, 64, 16)
    assert ranks[0].plan_fingerprint() != ranks[1].plan_fingerprint()


# ------------------------------------------------------------------------------------------------
# GPU

def _gpu_ready():
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available() and chunktree.hopper_visible()


gpu = pytest.mark.skipif(not _gpu_ready(), reason="needs a Hopper GPU and torch")


def _to_gpu(x, dtype):
    import torch
    if isinstance(x, tuple):
        return tuple(_to_gpu(p, dtype) for p in x)
    return torch.as_tensor(np.ascontiguousarray(x)).to("cuda", dtype)


@gpu
@pytest.mark.parametrize("layout", ["NHD", "HND"])
@pytest.mark.parametrize("interleaved", [True, False])
@pytest.mark.parametrize("config", [(32, 8, 128, 16, 1, False), (8, 1, 64, 1, 1, False), (8, 2, 256, 64, 4, True), (4, 4, 128, 7, 2, False)])
def test_gpu_matches_reference(layout, interleaved, config):
    import torch
    q_heads, kv_heads, dim, page, queries, causal = config
    rng = np.random.default_rng(sum(config))
    batch = PagedBatch(rng, groups=4, per_group=6, prompt_pages=max(1, 160 // page), sub_pages=max(1, 40 // page),
                       own_pages=max(2, 100 // page), page_size=page, kv_heads=kv_heads, head_dim=dim, causal_queries=queries)
    q = bf16_round(rng.standard_normal((batch.batch * queries, q_heads, dim), dtype=np.float32))
    w = chunktree.PagedAttention(device="cuda", kv_layout=layout)
    qo_indptr = None if queries == 1 else torch.arange(batch.batch + 1, dtype=torch.int32, device="cuda") * queries
    w.plan(torch.as_tensor(batch.indptr, device="cuda"), batch.indices, batch.last_page_len, q_heads, kv_heads, dim, page,
           qo_indptr=qo_indptr, causal=causal)
    q_gpu = _to_gpu(q, torch.bfloat16)
    out = torch.full_like(q_gpu, float("nan"))
    lse = torch.full(q_gpu.shape[:2], float("nan"), device="cuda")
    for _ in range(2):  # the second run reuses the work the first loaded (or reloaded for its strides)
        w.run(q_gpu, _to_gpu(batch.pools(layout, interleaved), torch.bfloat16), out=out, lse=lse)
    torch.cuda.synchronize()
    check(out.float().cpu().numpy(), lse.cpu().numpy(), batch.expected(q, queries, causal), 1e-2)


@gpu
def test_gpu_graph_replays_the_latest_plan():
    import torch
    rng = np.random.default_rng(21)
    first, second = (PagedBatch(rng, groups=2, per_group=4, page_size=16, kv_heads=2, head_dim=128, identical=0) for _ in range(2))
    assert first.batch == second.batch
    num_pages = max(first.num_pages, second.num_pages)
    pool = np.zeros((num_pages, 2, 16, 2, 128), dtype=np.float32)
    pool[: first.num_pages, 0], pool[: first.num_pages, 1] = first.k, first.v
    second.k, second.v = pool[: second.num_pages, 0].copy(), pool[: second.num_pages, 1].copy()  # the same pool for both
    kv = _to_gpu(pool, torch.bfloat16)
    q = bf16_round(rng.standard_normal((first.batch, 8, 128), dtype=np.float32))
    q_gpu = _to_gpu(q, torch.bfloat16)
    out = torch.full_like(q_gpu, float("nan"))
    w = chunktree.PagedAttention(device="cuda")
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        w.plan(first.indptr, first.indices, first.last_page_len, 8, 2, 128, 16)
        w.run(q_gpu, kv, out=out)  # a warm-up run outside the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            w.run(q_gpu, kv, out=out)
        for batch in (first, second):
            w.plan(batch.indptr, batch.indices, batch.last_page_len, 8, 2, 128, 16)
            out.fill_(float("nan"))
            graph.replay()
            stream.synchronize()
            expected_o, _ = batch.expected(q, 1, False)
            got = out.float().cpu().numpy()
            assert np.linalg.norm(got - expected_o) / np.linalg.norm(expected_o) < 1e-2


@gpu
def test_gpu_graph_of_a_padded_batch_as_vllm_pads_it():
    """vLLM pads a CUDA graph's decode batch for FlashInfer with sequences of no page (kv_indptr
    repeats its last value, kv_last_page_len 1): replayed over such plans, the real rows match the
    reference and the padding rows are out 0 (lse -inf), whatever the number of real sequences."""
    import torch
    rng = np.random.default_rng(22)
    batch = PagedBatch(rng, groups=2, per_group=3, page_size=16, kv_heads=2, head_dim=128, identical=0)
    graph_size = batch.batch + 3
    kv = _to_gpu(np.stack([batch.k, batch.v], axis=1), torch.bfloat16)
    q = bf16_round(rng.standard_normal((graph_size, 8, 128), dtype=np.float32))
    q_gpu = _to_gpu(q, torch.bfloat16)
    out = torch.full_like(q_gpu, float("nan"))
    lse = torch.full(q_gpu.shape[:2], float("nan"), device="cuda")
    w = chunktree.PagedAttention(device="cuda")
    stream = torch.cuda.Stream()

    def plan(real):
        indptr = np.concatenate([batch.indptr[: real + 1], np.full(graph_size - real, batch.indptr[real], np.int32)])
        last = np.concatenate([batch.last_page_len[:real], np.ones(graph_size - real, np.int32)])
        w.plan(indptr, batch.indices[: batch.indptr[real]], last, 8, 2, 128, 16)

    with torch.cuda.stream(stream):
        plan(batch.batch)
        w.run(q_gpu, kv, out=out, lse=lse)  # a warm-up run outside the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            w.run(q_gpu, kv, out=out, lse=lse)
        for real in (batch.batch, batch.batch - 2, 1):
            plan(real)
            out.fill_(float("nan"))
            lse.fill_(float("nan"))
            graph.replay()
            stream.synchronize()
            got, got_lse = out.float().cpu().numpy(), lse.cpu().numpy()
            expected_o, expected_lse = batch.expected(q[: batch.batch], 1, False)
            check(got[:real], got_lse[:real], (expected_o[:real], expected_lse[:real]), 1e-2)
            assert np.all(got[real:] == 0) and np.all(got_lse[real:] == -np.inf), f"{real} real sequences: padding rows"


def _flashinfer():
    """FlashInfer through the bench's loader (its prebuilt modules in .whl/flashinfer-aot when they
    match), or a skip."""
    import pathlib
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "bench"))
    try:
        from peers import flashinfer_module, prepare_environment
        prepare_environment()
        return flashinfer_module()
    except (ImportError, RuntimeError) as error:
        pytest.skip(f"flashinfer: {error}")


@gpu
def test_gpu_matches_flashinfer():
    """The same page tables through FlashInfer's BatchDecodeWithPagedKVCacheWrapper (NHD, the
    layout its prebuilt modules hold)."""
    import torch
    flashinfer = _flashinfer()
    layout = "NHD"
    rng = np.random.default_rng(31)
    batch = PagedBatch(rng, groups=4, per_group=8, prompt_pages=20, sub_pages=4, own_pages=6, page_size=16, kv_heads=8, head_dim=128)
    kv = _to_gpu(batch.pools(layout, True), torch.bfloat16)
    q = torch.randn(batch.batch, 32, 128, device="cuda", dtype=torch.bfloat16)
    indptr, indices, last = (torch.as_tensor(x, device="cuda") for x in (batch.indptr, batch.indices, batch.last_page_len))
    workspace = torch.empty(128 * 1024 * 1024, dtype=torch.uint8, device="cuda")
    theirs = flashinfer.BatchDecodeWithPagedKVCacheWrapper(workspace, layout)
    theirs.plan(indptr, indices, last, 32, 8, 128, 16, pos_encoding_mode="NONE", q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
    expected_o, expected_lse = theirs.run(q, kv, return_lse=True)
    w = chunktree.PagedAttention(device="cuda", kv_layout=layout)
    w.plan(indptr, indices, last, 32, 8, 128, 16)
    out, lse = w.run(q, kv, return_lse=True)
    torch.cuda.synchronize()
    error = (out.float() - expected_o.float()).norm(dim=-1) / expected_o.float().norm(dim=-1)
    assert error.max().item() < 2e-2
    # FlashInfer's lse is in base 2 (its kernels fold log2(e) into the scale); ours is natural.
    torch.testing.assert_close(lse, expected_lse.float() * math.log(2.0), rtol=2e-3, atol=2e-3)


@gpu
def test_gpu_matches_flashinfer_cascade():
    """N samples of one prompt: FlashInfer's cascade wrapper given the levels (the prompt's pages for
    every sample, then each sample's own), chunktree the flat page table of each sample."""
    import torch
    flashinfer = _flashinfer()
    samples, prompt_pages, own_pages, page = 24, 40, 3, 16
    own_first = prompt_pages + np.arange(samples) * own_pages
    last = np.random.default_rng(32).integers(1, page + 1, samples).astype(np.int32)
    kv = torch.randn(prompt_pages + samples * own_pages, 2, page, 8, 128, device="cuda").bfloat16()
    q = torch.randn(samples, 32, 128, device="cuda", dtype=torch.bfloat16)
    cuda = lambda a: torch.as_tensor(np.asarray(a, dtype=np.int32), device="cuda")  # noqa: E731
    own_indptr = np.arange(samples + 1) * own_pages
    own_indices = (own_first[:, None] + np.arange(own_pages)).ravel()
    workspace = torch.empty(128 * 1024 * 1024, dtype=torch.uint8, device="cuda")
    theirs = flashinfer.MultiLevelCascadeAttentionWrapper(2, workspace, "NHD")
    theirs.plan([cuda([0, samples]), cuda(np.arange(samples + 1))], [cuda([0, prompt_pages]), cuda(own_indptr)],
                [cuda(np.arange(prompt_pages)), cuda(own_indices)], [cuda([page]), cuda(last)], 32, 8, 128, page, causal=False,
                pos_encoding_mode="NONE", q_data_type=torch.bfloat16, kv_data_type=torch.bfloat16)
    expected = theirs.run(q, kv)
    flat_indptr = np.arange(samples + 1) * (prompt_pages + own_pages)
    flat = np.concatenate([np.concatenate([np.arange(prompt_pages), own_first[s] + np.arange(own_pages)]) for s in range(samples)])
    w = chunktree.PagedAttention(device="cuda")
    w.plan(flat_indptr, flat, last, 32, 8, 128, page)
    out = w.run(q, kv)
    torch.cuda.synchronize()
    error = (out.float() - expected.float()).norm(dim=-1) / expected.float().norm(dim=-1)
    assert error.max().item() < 2e-2


# ------------------------------------------------------------------------------------------------
# torch operators

def _torch_or_none():
    try:
        import torch
    except ImportError:
        return None
    return torch


@pytest.mark.skipif(_torch_or_none() is None, reason="needs torch")
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_torch_compile_fullgraph_matches_eager(device):
    """A decode step's layer (a projection, then chunktree) compiled with fullgraph=True: chunktree's
    run is the operator chunktree::paged_run, which the compiler traces through its fake."""
    torch = _torch_or_none()
    if device == "cuda" and not _gpu_ready():
        pytest.skip("needs a Hopper GPU")
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    rng = np.random.default_rng(41)
    batch = PagedBatch(rng, groups=2, per_group=3, page_size=16, kv_heads=2, head_dim=64)
    kv = torch.as_tensor(batch.pools("NHD", True)).to(device, dtype)
    w = chunktree.PagedAttention(device=device, kv_layout="NHD", **({"num_threads": 2} if device == "cpu" else {}))
    w.plan(batch.indptr, batch.indices, batch.last_page_len, 4, 2, 64, 16)
    torch.manual_seed(0)
    projection = torch.nn.Linear(256, 256, bias=False).to(device, dtype)
    x = torch.randn(batch.batch, 256, device=device, dtype=dtype)

    def layer(hidden):
        q = projection(hidden).view(-1, 4, 64)
        out, lse = w.run(q, kv, return_lse=True)
        return out.flatten(1) + hidden, lse, out

    with torch.no_grad():  # a decode step: the operator has no backward
        eager = layer(x)
        compiled = torch.compile(layer, fullgraph=True, backend="aot_eager" if device == "cpu" else "inductor")(x)
    if device == "cuda":
        torch.cuda.synchronize()
    for compiled_result, eager_result in zip(compiled, eager):
        torch.testing.assert_close(compiled_result, eager_result)
    # The eager result is right, too: against the reference on the same q. (Its attention output
    # itself: the residual sum, rounded to bf16, would carry the hidden state's rounding.)
    with torch.no_grad():
        q = projection(x).view(-1, 4, 64).float().cpu().numpy()
    check(eager[2].float().cpu().numpy(), eager[1].cpu().numpy(), batch.expected(q, 1, False), 1e-5 if device == "cpu" else 1e-2)


@pytest.mark.skipif(_torch_or_none() is None, reason="needs torch")
@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_hf_parallel_sampling_example(device):
    """examples/hf_parallel_sampling.py: a transformers Llama decoding N samples with chunktree."""
    pytest.importorskip("transformers")
    if device == "cuda" and not _gpu_ready():
        pytest.skip("needs a Hopper GPU")
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parents[2] / "examples" / "hf_parallel_sampling.py"
    spec = importlib.util.spec_from_file_location("hf_parallel_sampling", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main(["--device", device, "--samples", "4", "--prompt", "100", "--steps", "6"]) == 0
