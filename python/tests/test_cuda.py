"""The CUDA backend through Python with torch tensors (skipped without torch or a Hopper GPU)."""
import numpy as np
import pytest

import chunktree
from conftest import random_tree, reference

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(not (torch.cuda.is_available() and chunktree.hopper_visible()), reason="needs a Hopper GPU and torch")

Q_HEADS, KV_HEADS, DIM = 8, 2, 128


def bf16(x):
    """Values rounded to bfloat16, as float32 numpy (what the GPU cache stores)."""
    return torch.as_tensor(np.asarray(x, dtype=np.float32)).to(torch.bfloat16).float().numpy()


def to_gpu(x):
    return torch.as_tensor(np.asarray(x, dtype=np.float32)).to("cuda", torch.bfloat16)


def gpu_cache(capacity=512):
    return chunktree.PrefixCache(num_kv_heads=KV_HEADS, head_dim=DIM, capacity_chunks=capacity, chunk_size=32, dtype="bf16", device="cuda")


def expect_close(out, lse, q, k, v):
    expected_o, expected_lse = reference(bf16(q), bf16(k), bf16(v))
    got = out.float().cpu().numpy()
    assert np.linalg.norm(got - expected_o) / np.linalg.norm(expected_o) < 1e-2
    np.testing.assert_allclose(lse.cpu().numpy(), expected_lse, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("queries", [1, 3])
def test_attend_with_torch_tensors(queries):
    tree = random_tree(gpu_cache(), KV_HEADS, DIM, seed=11, sequences=40, convert=to_gpu)
    for s in range(len(tree.seqs)):
        tree.append(s, [7000 + 10 * s + t for t in range(queries)], convert=to_gpu)
    plan = chunktree.make_plan(tree.cache, tree.seqs, queries_per_seq=queries, num_q_heads=Q_HEADS)
    q = torch.randn(len(tree.seqs) * queries, Q_HEADS, DIM, device="cuda").to(torch.bfloat16)
    out = torch.full_like(q, float("nan"))
    lse = torch.full((q.shape[0], Q_HEADS), float("nan"), device="cuda")
    chunktree.attend(tree.cache, plan, q, out=out, lse=lse)
    torch.cuda.synchronize()
    for s in range(len(tree.seqs)):
        for i in range(queries):
            k, v = tree.sequence_kv(s, len(tree.tokens[s]) - queries + i + 1)
            row = s * queries + i
            expect_close(out[row], lse[row], q[row].float().cpu().numpy(), k, v)


def test_attend_on_a_side_stream_and_in_a_cuda_graph():
    tree = random_tree(gpu_cache(), KV_HEADS, DIM, seed=12, sequences=16, convert=to_gpu)
    plan = chunktree.make_plan(tree.cache, tree.seqs, num_q_heads=Q_HEADS)
    q = torch.randn(len(tree.seqs), Q_HEADS, DIM, device="cuda").to(torch.bfloat16)
    expected = chunktree.attend(tree.cache, plan, q)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        on_side = chunktree.attend(tree.cache, plan, q)  # enqueued on the current (side) stream
    torch.cuda.current_stream().wait_stream(side)
    assert torch.equal(on_side, expected)
    out = torch.empty_like(q)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        chunktree.attend(tree.cache, plan, q, out=out)
    out.zero_()
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, expected)


def test_write_kv_on_the_current_stream_and_in_a_cuda_graph():
    """A decode step as an engine captures it: the new token's K/V written and attended in one graph
    on a side stream; replaying it must give what eager calls give."""
    cache = gpu_cache()
    seqs = [cache.add(list(range(40 + s))).seq for s in range(6)]  # prompts' KV stays as allocated (zeros)
    slots = np.concatenate([cache.append(s, [900 + i]) for i, s in enumerate(seqs)])
    k = torch.randn(len(seqs), KV_HEADS, DIM, device="cuda").bfloat16()
    v = torch.randn(len(seqs), KV_HEADS, DIM, device="cuda").bfloat16()
    plan = chunktree.make_plan(cache, seqs, num_q_heads=Q_HEADS)
    q = torch.randn(len(seqs), Q_HEADS, DIM, device="cuda").bfloat16()
    cache.write_kv(0, slots, k, v)
    expected = chunktree.attend(cache, plan, q)
    torch.cuda.synchronize()
    cache.write_kv(0, slots, torch.zeros_like(k), torch.zeros_like(v))
    out = torch.empty_like(q)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=side):
        cache.write_kv(0, slots, k, v)  # on the capturing (current) stream: no allocation, no sync
        chunktree.attend(cache, plan, q, out=out)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(out, expected)


def decode_step(cache, seqs, rng):
    """One token appended to every sequence, its K and V written (random, on the device)."""
    slots = cache.append_batch(seqs, [int(t) for t in rng.integers(0, 50, len(seqs))])
    cache.write_kv(0, slots, torch.randn(len(seqs), KV_HEADS, DIM, device="cuda").bfloat16(),
                   torch.randn(len(seqs), KV_HEADS, DIM, device="cuda").bfloat16())


def test_cache_attention_graph_replays_every_later_plan():
    """A decode loop as an engine runs it: run() captured once in a CUDA graph, then 200 steps that
    append, fork and finish sequences, each step plan() then replay; every replay is bitwise what an
    eager attend() of the same plan gives."""
    rng = np.random.default_rng(5)
    cache = gpu_cache(capacity=4096)
    prompt = cache.add(list(range(1000, 1300)))
    cache.write_kv(0, prompt.slots, torch.randn(300, KV_HEADS, DIM, device="cuda").bfloat16(),
                   torch.randn(300, KV_HEADS, DIM, device="cuda").bfloat16())
    other = cache.add(list(range(2000, 2070)))
    cache.write_kv(0, other.slots, torch.randn(70, KV_HEADS, DIM, device="cuda").bfloat16(),
                   torch.randn(70, KV_HEADS, DIM, device="cuda").bfloat16())
    seqs = [prompt.seq] + cache.fork(prompt.seq, 7) + [other.seq] + cache.fork(other.seq, 2)
    max_batch = 20
    q = torch.randn(max_batch, Q_HEADS, DIM, device="cuda").bfloat16()
    out = torch.empty(max_batch, Q_HEADS, DIM, device="cuda", dtype=torch.bfloat16)
    lse = torch.empty(max_batch, Q_HEADS, device="cuda")
    attention = chunktree.CacheAttention(cache, num_q_heads=Q_HEADS)
    decode_step(cache, seqs, rng)
    attention.plan(seqs)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        attention.run(q, out=out, lse=lse)  # buffers of the largest batch: a batch of B uses their first B rows
    for step in range(200):
        if step % 17 == 3 and len(seqs) + 2 <= max_batch:
            seqs += cache.fork(seqs[int(rng.integers(len(seqs)))], 2)
        if step % 13 == 6 and len(seqs) > 3:
            cache.remove(seqs.pop(int(rng.integers(len(seqs)))))
        decode_step(cache, seqs, rng)
        batch = len(seqs)
        q[:batch].copy_(torch.randn(batch, Q_HEADS, DIM, device="cuda"))
        out.fill_(float("nan"))
        lse.fill_(float("nan"))
        plan = attention.plan(seqs)
        graph.replay()
        expected, expected_lse = chunktree.attend(cache, plan, q[:batch], return_lse=True, num_q_heads=Q_HEADS)
        torch.cuda.synchronize()
        assert torch.equal(out[:batch], expected), f"step {step}"
        assert torch.equal(lse[:batch], expected_lse), f"step {step}"


def test_a_whole_decode_step_in_one_graph_with_slots_on_the_gpu():
    """write_kv through slots in a device tensor (refilled every step) and CacheAttention.run, both
    in one captured graph; every replay equals the same step run eagerly on a twin cache with host
    slots."""
    rng = np.random.default_rng(9)
    twins = [gpu_cache(capacity=1024) for _ in range(2)]
    prompt_k, prompt_v = torch.randn(2, 100, KV_HEADS, DIM, device="cuda").bfloat16()
    seqs = []
    for cache in twins:
        first = cache.add(list(range(100)))
        cache.write_kv(0, first.slots, prompt_k, prompt_v)
        seqs.append([first.seq] + cache.fork(first.seq, 5))
    attentions = [chunktree.CacheAttention(cache, num_q_heads=Q_HEADS) for cache in twins]
    batch = len(seqs[0])
    q = torch.randn(batch, Q_HEADS, DIM, device="cuda").bfloat16()
    k, v = torch.randn(2, batch, KV_HEADS, DIM, device="cuda").bfloat16()
    slots_on_gpu = torch.zeros(batch, 2, dtype=torch.int32, device="cuda")
    out = torch.empty_like(q)
    graph = None
    for step in range(12):
        tokens = [int(t) for t in rng.integers(0, 50, batch)]
        host_slots = [cache.append_batch(s, tokens) for cache, s in zip(twins, seqs)]
        np.testing.assert_array_equal(host_slots[0], host_slots[1])
        slots_on_gpu.copy_(torch.as_tensor(host_slots[1]))
        k.copy_(torch.randn(batch, KV_HEADS, DIM, device="cuda"))
        v.copy_(torch.randn(batch, KV_HEADS, DIM, device="cuda"))
        twins[0].write_kv(0, host_slots[0], k, v)
        attentions[0].plan(seqs[0])
        expected = attentions[0].run(q)
        attentions[1].plan(seqs[1])
        if graph is None:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                twins[1].write_kv(0, slots_on_gpu, k, v)
                attentions[1].run(q, out=out)
        out.fill_(float("nan"))
        graph.replay()
        torch.cuda.synchronize()
        assert torch.equal(out, expected), f"step {step}"
    with pytest.raises(ValueError, match="int32"):
        twins[1].write_kv(0, slots_on_gpu.long(), k, v)


def test_cache_attention_refuses_a_plan_its_captured_graph_cannot_hold():
    cache = gpu_cache(capacity=4096)
    seqs = [cache.add([1, 2, 3]).seq, cache.add([1, 2, 4]).seq]
    attention = chunktree.CacheAttention(cache, num_q_heads=Q_HEADS)
    attention.plan(seqs)
    q = torch.randn(2, Q_HEADS, DIM, device="cuda").bfloat16()
    out = torch.empty_like(q)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        attention.run(q, out=out)
    seqs += [cache.add([5, s, 6]).seq for s in range(1200)]  # more rows than the workspace keeps room for (1024)
    with pytest.raises(chunktree.CapacityError, match="Capture again"):
        attention.plan(seqs)
    with pytest.raises(ValueError, match="outside the stream capture"):
        with torch.cuda.graph(torch.cuda.CUDAGraph()):
            attention.plan(seqs[:2])
    attention.plan(seqs[:2])  # still serves plans that fit
    graph.replay()
    torch.cuda.synchronize()


def test_levels_and_merge_on_the_gpu():
    seqs, queries = 130, 2  # 260 query rows per kv head × group 4: wgmma tiles
    prompt_k, prompt_v = torch.randn(300, KV_HEADS, DIM, device="cuda").bfloat16(), torch.randn(300, KV_HEADS, DIM, device="cuda").bfloat16()
    own_k, own_v = torch.randn(seqs * 6, KV_HEADS, DIM, device="cuda").bfloat16(), torch.randn(seqs * 6, KV_HEADS, DIM, device="cuda").bfloat16()
    levels = chunktree.Levels([[chunktree.SharedSegment(chunktree.KvSegment(prompt_k, prompt_v), 0, seqs)]],
                              own=[chunktree.KvSegment(own_k[6 * s:6 * s + 6], own_v[6 * s:6 * s + 6]) for s in range(seqs)],
                              queries_per_seq=queries)
    q = torch.randn(seqs * queries, Q_HEADS, DIM, device="cuda").bfloat16()
    out, lse = chunktree.attend_levels(levels, q, return_lse=True)
    torch.cuda.synchronize()
    for s in (0, 77, seqs - 1):
        for i in range(queries):
            k = torch.cat([prompt_k, own_k[6 * s:6 * s + 6 - queries + i + 1]]).float().cpu().numpy()
            v = torch.cat([prompt_v, own_v[6 * s:6 * s + 6 - queries + i + 1]]).float().cpu().numpy()
            expect_close(out[s * queries + i], lse[s * queries + i], q[s * queries + i].float().cpu().numpy(), k, v)
    # Split the same attention into the prompt and the own part, and merge: the same result.
    prompt_only = chunktree.Levels([[chunktree.SharedSegment(chunktree.KvSegment(prompt_k, prompt_v), 0, seqs)]], queries_per_seq=1)
    part_a = chunktree.attend_levels(prompt_only, q[::queries].contiguous(), return_lse=True)
    own_levels = chunktree.Levels([], own=[chunktree.KvSegment(own_k[6 * s:6 * s + 6], own_v[6 * s:6 * s + 6]) for s in range(seqs)])
    part_b = chunktree.attend_levels(own_levels, q[::queries].contiguous(), return_lse=True)
    merged_o, merged_lse = chunktree.merge_state(part_a[0].float(), part_a[1], part_b[0].float(), part_b[1])
    whole = chunktree.attend_levels(chunktree.Levels(levels.levels, own=own_levels.own), q[::queries].contiguous(), return_lse=True)
    torch.testing.assert_close(merged_lse, whole[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(merged_o, whole[0].float(), rtol=2e-2, atol=2e-2)


def test_gpu_errors_are_clear():
    tree = random_tree(gpu_cache(), KV_HEADS, DIM, seed=13, sequences=4, convert=to_gpu)
    plan = chunktree.make_plan(tree.cache, tree.seqs)
    with pytest.raises(ValueError, match="q"):
        chunktree.attend(tree.cache, plan, torch.randn(4, KV_HEADS, DIM).bfloat16())  # on the CPU
    with pytest.raises(ValueError, match="q"):
        chunktree.attend(tree.cache, plan, torch.randn(4, KV_HEADS, DIM, device="cuda"))  # float32, not the cache's bf16
