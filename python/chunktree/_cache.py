"""The prefix cache, its plans and attention over it: PrefixCache, Plan, make_plan, attend, and
CacheAttention for a decode loop."""

from __future__ import annotations

import threading
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _core
from ._arguments import (_HEADS, _INT32, _Q_LAYOUT, _THREADS, _UINT64, Array, _array, _handle, _instance, _int32_array, _integer,
                         _library, _on_cuda, _outputs, _scale, _sequence, _stream, _stream_argument)


def _plain_ints(values: Any, low: int, high: int) -> bool:
    """True for a list or tuple of plain ints within [low, high]: the common case (a decode step's
    batch), checked in C without numpy."""
    return type(values) in (list, tuple) and _core.plain_ints(values, low, high)


def _handles(values: Any, name: str) -> List[int]:
    """A list of sequence handles: plain ints checked without a name built per handle (a decode
    step's batch), anything else handle by handle, each named in its error."""
    if _plain_ints(values, *_UINT64):
        return list(values)
    if _library(values) == "numpy" and values.ndim == 1 and values.dtype.kind in "iu" and (values.size == 0 or values.min() >= 0):
        return values.tolist()  # an engine's batch as a numpy int array: no test per handle (a bool array is not one)
    return [_handle(seq, f"{name}[{i}]") for i, seq in enumerate(_sequence(values, name, "a list of sequence handles"))]


def _tokens(tokens: Any) -> List[int]:
    if _plain_ints(tokens, *_INT32):  # a decode step's append: no numpy round trip
        return list(tokens)
    return _int32_array(tokens, "tokens", (None,), "[n]").tolist()


class AddResult(NamedTuple):
    """What PrefixCache.add returns."""
    seq: int             #: the new sequence's handle
    cached_tokens: int   #: leading tokens whose KV the cache already held
    slots: Any           #: numpy int32 [n, 2] (chunk, offset): where to write the KV of the other tokens


class PrefixCache:
    """A tree of token sequences over one pool of fixed-size KV chunks; shared prefixes are found
    automatically. Every layer uses the same tree; each layer has its own K and V pools.

    Args:
        num_kv_heads: KV heads per token.
        head_dim: 64, 128 or 256.
        capacity_chunks: chunks in the pool (each holds `chunk_size` tokens of every layer).
        num_layers: layers whose KV the pool holds.
        chunk_size: tokens per chunk: 16, 32, 64 or 128.
        dtype: "bf16", "f16", or "f32" (CPU only).
        device: "cpu" or "cuda" (a Hopper GPU).
    """

    def __init__(self, num_kv_heads: int, head_dim: int, capacity_chunks: int, *, num_layers: int = 1, chunk_size: int = 64,
                 dtype: str = "bf16", device: str = "cpu") -> None:
        self._cache = _core.PrefixCache(_integer(num_layers, "num_layers"), _integer(num_kv_heads, "num_kv_heads"),
                                        _integer(head_dim, "head_dim"), _integer(chunk_size, "chunk_size"),
                                        _instance(dtype, str, "dtype", "'bf16', 'f16' or 'f32'"),
                                        _integer(capacity_chunks, "capacity_chunks"), _instance(device, str, "device", "'cpu' or 'cuda'"))
        self._device = self._cache.config["device"]  # kept: plan() asks every step, and config builds a new dict at each read

    def add(self, tokens: Sequence[int]) -> AddResult:
        """Adds a sequence; its longest cached prefix is shared, the rest gets new slots."""
        seq, cached, slots = self._cache.add(_tokens(tokens))
        return AddResult(seq, cached, slots)

    def append(self, seq: int, tokens: Sequence[int]) -> Any:
        """Extends a sequence (decode: one token or several); returns the new tokens' slots [n, 2]."""
        return self._cache.append(_handle(seq), _tokens(tokens))

    def append_batch(self, seqs: Sequence[int], tokens: Sequence[int]) -> Any:
        """A decode step's appends in one call: the same number k of tokens for every sequence,
        tokens[i*k:(i+1)*k] to seqs[i]; returns their slots [len(tokens), 2] in that order. All or
        nothing: a bad handle, a repeated sequence or a full cache changes nothing."""
        return self._cache.append_batch(_handles(seqs, "seqs"), _tokens(tokens))

    def fork(self, seq: int, n: int = 1) -> List[int]:
        """n new sequences that share everything `seq` holds so far; `seq` itself stays."""
        return self._cache.fork(_handle(seq), _integer(n, "n"))

    def remove(self, seq: int) -> None:
        """Drops a sequence; chunks no other sequence uses return to the pool."""
        self._cache.remove(_handle(seq))

    def write_kv(self, layer: int, slots: Any, k: Array, v: Array, stream: Optional[int] = None) -> None:
        """Writes K and V, each [len(slots), num_kv_heads, head_dim], into `slots` of one layer: host
        K and V in float32, float16 or bfloat16 (converted to the cache's dtype), device K and V in
        float32 or the cache's dtype (both the same). A finite host value that the cache's dtype rounds
        to inf (|x| ≥ 65520 in an f16 cache) is a ValueError and nothing is written; device K and V are
        not read on the host, so there such a value is stored as inf (and attention over it is NaN).

        With K and V on the GPU the copy runs on `stream` (default: the current torch or cupy stream
        of k) and the call returns at once: no allocation, no synchronization, capturable in a CUDA
        graph. From host memory it returns once the KV is in the pool.

        slots: exactly [n, 2] ints (chunk, offset), as add and append return them: a numpy array, a
        CPU tensor or nested lists; anything else (another shape, floats, bools, values past int32)
        is a ValueError, never reshaped or converted. Write the slots that add or append returned for
        a sequence that is still in the cache; a slot that holds no live token, or one given twice in
        the call, is refused. Writing a slot again overwrites that token's KV for every sequence that
        shares it.

        Slots on the GPU (an int32 [n, 2] C-contiguous CUDA tensor), with K and V there too: what a
        CUDA graph captures when every step writes other slots (copy each step's slots into the same
        tensor, like an engine's slot mapping). The kernel reads them, so they are not checked as
        host slots are (a repeated one keeps whichever copy lands last); a slot outside the pool is
        not written."""
        layout = "[n, num_kv_heads, head_dim]"
        k = _array(k, "k", layout)
        v = _array(v, "v", layout)
        layer = _integer(layer, "layer")
        if _library(slots) != "numpy" and _on_cuda(slots):
            slots = _array(slots, "slots", "[n, 2]")
            if len(slots.shape) != 2 or slots.shape[1] != 2 or str(slots.dtype).split(".")[-1] != "int32":
                raise ValueError(f"slots on the GPU must be an int32 [n, 2] (chunk, offset) tensor, got {str(slots.dtype)} "
                                 f"{list(slots.shape)}")
            self._cache.write_kv_device_slots(layer, slots, k, v, _stream(k, stream))
            return
        slots = _int32_array(slots, "slots", (None, 2), "[n, 2] (chunk, offset)")
        self._cache.write_kv(layer, slots, k, v, _stream(k, stream))

    def stats(self) -> dict:
        """capacity_chunks, chunks_in_use, tokens_stored (shared ones once), tokens_without_sharing,
        sequences, nodes."""
        return self._cache.stats()

    def __contains__(self, seq: int) -> bool:
        try:
            return self._cache.contains(_handle(seq))
        except KeyError:
            return False

    def length(self, seq: int) -> int:
        return self._cache.length(_handle(seq))

    def tokens(self, seq: int) -> List[int]:
        return self._cache.tokens(_handle(seq))

    def slots(self, seq: int) -> Any:
        """Every token's slot [length, 2] (chunk, offset), in order."""
        return self._cache.slots(_handle(seq))

    @property
    def version(self) -> int:
        """Bumped by every change of the tree; a plan is current while this stays the same."""
        return self._cache.version

    @property
    def config(self) -> dict:
        return self._cache.config

    @property
    def device(self) -> str:
        return self._device


class Plan:
    """A batch of sequences as attention work over the cache's tree (make_plan). For a GPU cache
    it also keeps the uploaded device plans, one per (num_q_heads, scale); a device plan serves one
    call at a time (its scratch is shared), so do not run the same Plan on two streams at once."""

    def __init__(self, cache: PrefixCache, plan: Any) -> None:
        self._cache = cache
        self._plan = plan
        self._device_plans: dict = {}
        self._retired = False  # set by CacheAttention.plan() when the next plan takes over its memory

    @property
    def batch(self) -> List[int]:
        return self._live().batch

    @property
    def queries_per_seq(self) -> int:
        return self._live().queries_per_seq

    @property
    def num_items(self) -> int:
        return self._live().num_items

    @property
    def num_shared_items(self) -> int:
        return self._live().num_shared_items

    def is_current(self) -> bool:
        """False once the cache's tree has changed (make a new plan then), and for a plan of
        CacheAttention.plan() once the next plan() has replaced it."""
        return not self._retired and self._plan.is_current(self._cache._cache)

    def _live(self) -> Any:
        """The C++ plan, unless CacheAttention.plan() has handed its memory to a later step."""
        if self._retired:
            raise ValueError("this plan came from CacheAttention.plan(), and a later plan() has replaced it (its memory plans the "
                             "steps after); use the plan that plan() returned last, or make_plan for a plan of your own")
        return self._plan

    def _device_plan(self, num_q_heads: int, scale: float):
        key = (num_q_heads, scale)
        if key not in self._device_plans:
            self._device_plans[key] = _core.DevicePlan(self._cache._cache, self._live(), num_q_heads, scale)
        return self._device_plans[key]


def make_plan(cache: PrefixCache, batch: Sequence[int], *, min_shared_rows: int = 2, max_item_tokens: Optional[int] = None,
              queries_per_seq: int = 1, num_q_heads: Optional[int] = None) -> Plan:
    """Plans attention for a batch of sequence handles (any order, repeats allowed).

    Args:
        min_shared_rows: spans read by fewer sequences are read privately.
        max_item_tokens: cut spans into items of at most this many tokens (0: whole; otherwise at
            least the cache's chunk size); no item holds more than chunktree.MAX_ITEM_TOKENS
            (32768), whatever this asks. None: for a
            GPU cache the CUDA backend's cost model chooses (with num_q_heads, default the cache's
            kv heads); for a CPU cache, whole spans (up to MAX_ITEM_TOKENS an item).
        queries_per_seq: the last queries_per_seq tokens of every sequence are its query tokens,
            each seeing the sequence up to itself (speculative decoding, prefill suffixes).
    """
    _instance(cache, PrefixCache, "cache", "a chunktree.PrefixCache")
    batch = _handles(batch, "batch")
    min_shared_rows = _integer(min_shared_rows, "min_shared_rows")
    queries_per_seq = _integer(queries_per_seq, "queries_per_seq")
    heads = _q_heads(cache, num_q_heads)
    return Plan(cache, _core.make_plan(cache._cache, batch, *_plan_options(cache, min_shared_rows, max_item_tokens, queries_per_seq, heads)))


def _q_heads(cache: PrefixCache, num_q_heads: Optional[int]) -> int:
    """The q heads of a plan or call: the cache's kv heads by default, else a positive multiple of them."""
    kv_heads = cache.config["num_kv_heads"]
    heads = kv_heads if num_q_heads is None else _integer(num_q_heads, "num_q_heads", _HEADS)
    if heads % kv_heads:
        raise ValueError(f"num_q_heads ({heads}) must be a positive multiple of the cache's kv heads ({kv_heads})")
    return heads


def _plan_options(cache: PrefixCache, min_shared_rows: int, max_item_tokens: Optional[int], queries_per_seq: int,
                  heads: int) -> tuple:
    """make_plan's options as the binding takes them: max_item_tokens None is the CUDA backend's cost
    model on a GPU cache (-1: it splits in the same pass) and whole spans on the CPU."""
    if max_item_tokens is None:
        max_item_tokens = -1 if cache.device == "cuda" else 0
    else:
        max_item_tokens = _integer(max_item_tokens, "max_item_tokens", bounds=(0, _INT32[1]))
    return min_shared_rows, max_item_tokens, queries_per_seq, heads


def attend(cache: PrefixCache, plan: Plan, q: Array, *, layer: int = 0, out: Optional[Array] = None, lse: Optional[Array] = None,
           return_lse: bool = False, num_q_heads: Optional[int] = None, scale: Optional[float] = None, num_threads: int = 0,
           stream: Optional[int] = None) -> Union[Array, Tuple[Array, Array]]:
    """Attention of every query token of the plan's batch over its sequence's KV in one layer.

    q: [batch · queries_per_seq, num_q_heads, head_dim] (token i of batch entry b at row
    b · queries_per_seq + i), on the cache's device (in the cache's dtype on the GPU). Returns out
    (same shape; allocated like q unless given) and, with return_lse (or lse given), lse
    [batch · queries_per_seq, num_q_heads] in float32, natural log. On the GPU the call is enqueued
    on `stream` (default: the current torch or cupy stream of q) and returns at once.
    """
    _instance(cache, PrefixCache, "cache", "a chunktree.PrefixCache")
    _instance(plan, Plan, "plan", "a chunktree.Plan (from make_plan)")
    if plan._cache is not cache:
        raise ValueError("the plan was made for another cache; make a plan for this one")
    plan._live()  # a plan that CacheAttention replaced is refused, even where a device copy of it is kept
    q = _array(q, "q", _Q_LAYOUT)
    heads = int(q.shape[1]) if num_q_heads is None else _integer(num_q_heads, "num_q_heads", _HEADS)
    scale = _scale(scale, "scale")
    layer = _integer(layer, "layer")
    out, lse = _outputs(q, out, lse, return_lse)
    if cache.device == "cuda":
        _core.cuda_attend(cache._cache, plan._device_plan(heads, scale), layer, q, out, lse, _stream(q, stream))
    else:
        _stream_argument(stream)
        _core.cpu_attend(cache._cache, plan._live(), layer, q, out, lse, heads, scale, _integer(num_threads, "num_threads", _THREADS))
    return (out, lse) if lse is not None else out


class _OneCallAtATime:
    """Holds a wrapper for one call, refusing (not waiting for) an overlapping one: another thread's,
    or one made from inside the call. A class, not a contextlib generator: plan() and run() pass
    through it every step (and run() every layer where it is not captured), and a generator's
    context costs ~3 times as much."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise ValueError("another call (plan or run) is using this CacheAttention right now; it serves one call at a time: "
                             "give each thread its own, or wait for the call to return")

    def __exit__(self, *exception: Any) -> None:
        self._lock.release()


class CacheAttention:
    """Attention over a PrefixCache for a decode loop: plan() once per step (after the step's
    appends), run() in every layer. On the GPU one device workspace serves every step: plan()
    uploads the step's work with one asynchronous copy on the stream (no allocation while it fits: the
    first plan leaves room for plans up to 4x its size), and run() is capturable: run() calls
    captured in a CUDA graph (torch.cuda.graph) replay whatever plan() gave last, with the q, out
    and lse the capture was given. run() takes q, out and lse with more rows than the plan's query
    tokens (a batch of B uses their first B · queries_per_seq rows; out and lse have q's rows), so
    capture with buffers of the largest batch. Call plan()
    outside the capture. A plan that the captured workspace or buffers cannot hold raises
    CapacityError and changes nothing: to go on with it, make a new CacheAttention and capture again.
    num_q_heads defaults to the cache's kv heads.

        attention = chunktree.CacheAttention(cache, num_q_heads=32)
        for step in steps:
            slots = cache.append_batch(seqs, next_tokens)    # and write_kv in every layer
            attention.plan(seqs)
            for layer in range(layers):
                out = attention.run(q[layer], layer=layer)

    Plan and run on the same stream; one CacheAttention serves one call (plan, run) at a time: an
    overlapping call from another thread raises ValueError.
    """

    def __init__(self, cache: PrefixCache, num_q_heads: Optional[int] = None, *, scale: Optional[float] = None,
                 min_shared_rows: int = 2, max_item_tokens: Optional[int] = None) -> None:
        self._cache = _instance(cache, PrefixCache, "cache", "a chunktree.PrefixCache")
        self._heads = _q_heads(cache, num_q_heads)
        self._scale = _scale(scale, "scale")
        self._min_shared_rows = _integer(min_shared_rows, "min_shared_rows")
        self._max_item_tokens = max_item_tokens
        self._spare_plan = _core.Plan()  # the next step is planned into it, then it swaps with the last: memory reused
        # An empty batch planned now: options that the planner refuses are refused here, not at the first plan().
        _core.make_plan_into(self._spare_plan, cache._cache, [], *_plan_options(cache, self._min_shared_rows, max_item_tokens, 1, self._heads))
        self._device = _core.DevicePlan(cache._cache, self._heads, self._scale) if cache.device == "cuda" else None
        self._plan: Optional[Plan] = None
        self._busy = _OneCallAtATime()  # plan() rewrites the plans run() reads, with the GIL released

    def plan(self, batch: Sequence[int], *, queries_per_seq: int = 1, stream: Optional[int] = None) -> Plan:
        """Plans the step for a batch of sequence handles (see make_plan) and, on the GPU, uploads it
        on `stream` (default: the current torch or cupy stream). Returns the plan; it stays valid
        until the next plan(), which reuses its memory for the step after (a refused plan() changes
        nothing)."""
        with self._busy:
            return self._plan_step(batch, queries_per_seq, stream)

    def _plan_step(self, batch: Sequence[int], queries_per_seq: int, stream: Optional[int]) -> Plan:
        batch = _handles(batch, "batch")
        options = _plan_options(self._cache, self._min_shared_rows, self._max_item_tokens, _integer(queries_per_seq, "queries_per_seq"),
                                self._heads)
        planned = self._spare_plan
        _core.make_plan_into(planned, self._cache._cache, batch, *options)
        if self._device is not None:
            self._device.update(self._cache._cache, planned, _stream(None, stream))
        if self._plan is not None:
            self._spare_plan = self._plan._plan
            self._plan._retired = True
        else:
            self._spare_plan = _core.Plan()
        self._plan = Plan(self._cache, planned)
        self._rows = len(batch) * planned.queries_per_seq  # the q rows run() uses
        return self._plan

    def run(self, q: Array, *, layer: int = 0, out: Optional[Array] = None, lse: Optional[Array] = None, return_lse: bool = False,
            num_threads: int = 0, stream: Optional[int] = None) -> Union[Array, Tuple[Array, Array]]:
        """attend() with the last plan: q [batch · queries_per_seq, num_q_heads, head_dim], or more
        rows (the first are used; the rest of a given out and lse are left as they are, of new ones
        zero and -inf); returns out (and lse) as attend() does. On the GPU enqueued on `stream`
        (default: q's current stream)."""
        with self._busy:
            return self._run_step(q, layer, out, lse, return_lse, num_threads, stream)

    def _run_step(self, q: Array, layer: int, out: Optional[Array], lse: Optional[Array], return_lse: bool, num_threads: int,
                  stream: Optional[int]) -> Union[Array, Tuple[Array, Array]]:
        if self._plan is None:
            raise ValueError("CacheAttention.run before any plan: call plan(batch) first")
        q = _array(q, "q", _Q_LAYOUT)
        layer = _integer(layer, "layer")
        new_out, new_lse = out is None, lse is None
        out, lse = _outputs(q, out, lse, return_lse)
        if q.shape[0] > self._rows:  # rows past the plan's: new arrays get the empty state there, not garbage
            if new_out:
                out[self._rows:] = 0
            if new_lse and lse is not None:
                lse[self._rows:] = float("-inf")
        if self._device is not None:
            _core.cuda_attend(self._cache._cache, self._device, layer, q, out, lse, _stream(q, stream))
        else:
            _stream_argument(stream)
            for name, array in (("out", out), ("lse", lse)):
                if array is not None and array.shape[0] != q.shape[0]:
                    raise ValueError(f"{name} has {array.shape[0]} rows but q has {q.shape[0]}; out and lse have q's rows")
            rows = self._rows
            leading = lambda array: array if array is None or array.shape[0] <= rows else array[:rows]  # noqa: E731
            _core.cpu_attend(self._cache._cache, self._plan._plan, layer, leading(q), leading(out), leading(lse), self._heads,
                             self._scale, _integer(num_threads, "num_threads", _THREADS))
        return (out, lse) if lse is not None else out

