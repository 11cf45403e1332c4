"""chunktree: exact, prefix-aware attention for LLM decoding on NVIDIA Hopper.

The Python face of the C++ library (docs/DESIGN.md, docs/LEVELS.md). Tensors are passed by DLPack
without copies: torch, cupy and jax arrays on a CUDA GPU, and numpy (or torch/jax) arrays on the
CPU. They must be C-contiguous (PagedAttention's kv_cache may be a strided view); dtypes are
bfloat16, float16 or float32 (float32 KV on the CPU only). Outputs are allocated like q (torch,
cupy or numpy); jax arrays, being immutable, are inputs only: pass out= (and lse=) arrays of
another library with them. num_threads (CPU backend): worker threads, 0 for one per hardware
thread.

    cache = chunktree.PrefixCache(num_kv_heads=8, head_dim=128, capacity_chunks=4096, device="cuda")
    added = cache.add(prompt_tokens)                    # shares the longest cached prefix
    cache.write_kv(0, added.slots, k_new, v_new)        # KV of the uncached tokens only
    plan = chunktree.make_plan(cache, [added.seq, ...]) # rebuild whenever the tree changes
    out = chunktree.attend(cache, plan, q)              # q [batch, q_heads, head_dim]

Errors: ValueError for a bad argument (the message says what to fix), TypeError for an argument of
the wrong type (the message names it and what it must be), KeyError for an unknown sequence handle,
chunktree.CapacityError when the chunk pool is full, NotImplementedError for what this build or
device cannot run, RuntimeError for a failed CUDA call. A failed call leaves the cache unchanged.

Threads: a PrefixCache is not thread-safe. Read-only calls (attend, make_plan, stats, tokens, ...)
may run concurrently on one cache; a mutation (add, append, fork, remove, write_kv) must not overlap
any other call on the same cache (where the cache detects such a conflict it raises ValueError).
Different caches are independent.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple, Union

from . import _core

__all__ = [
    "AddResult", "CacheAttention", "CapacityError", "KvSegment", "Levels", "PagedAttention", "Plan", "PrefixCache", "SharedSegment", "attend",
    "attend_levels",
    "hopper_visible", "make_plan", "merge_state", "merge_state_in_place", "merge_states",
]
__version__: str = _core.__version__

CapacityError = _core.CapacityError
Array = Any  # a DLPack-capable array (torch.Tensor, cupy.ndarray, jax.Array, numpy.ndarray)


def hopper_visible() -> bool:
    """True when some visible device is a Hopper GPU (compute capability 9.0). Making a CUDA cache
    or wrapper goes further: it runs a probe kernel there and raises if this build cannot run on it."""
    return _core.hopper_visible()


# ------------------------------------------------------------------------------------------------
# Arrays: where they live, and new ones of the same library

def _library(array: Array) -> str:
    return type(array).__module__.split(".")[0]


def _on_cuda(array: Array) -> bool:
    device = getattr(array, "__dlpack_device__", None)
    return device is not None and device()[0] == 2  # kDLCUDA


def _empty(like: Array, shape: Tuple[int, ...], dtype: Optional[str] = None) -> Array:
    """A new array of the same library, device and (unless given) dtype as `like`."""
    library = _library(like)
    if library == "torch":
        import torch
        return torch.empty(shape, dtype=getattr(torch, dtype) if dtype else like.dtype, device=like.device)
    if library == "numpy":
        import numpy
        return numpy.empty(shape, dtype=dtype or like.dtype)
    if library == "cupy":
        import cupy
        with like.device:
            return cupy.empty(shape, dtype=dtype or like.dtype)
    raise ValueError(f"cannot allocate outputs for a {type(like).__name__}; pass out= (and lse=) as writable arrays "
                     "(torch, cupy or numpy)")


_torch_has_gpu = False  # once true, stays true: a process does not lose its GPUs


def _torch_on_gpu() -> bool:
    """Whether torch is loaded and sees a GPU (asked once it does: torch.cuda.is_available() costs
    microseconds on every plan())."""
    global _torch_has_gpu
    if not _torch_has_gpu:
        _torch_has_gpu = "torch" in sys.modules and sys.modules["torch"].cuda.is_available()
    return _torch_has_gpu


def _torch_current_stream(torch: Any, device: Any) -> int:
    """The cudaStream_t of torch's current stream on `device` (None: the current device). torch's
    raw-stream getter, where it has one, skips building a Stream object (~5 µs a call)."""
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)
    if raw is None:
        return torch.cuda.current_stream(device).cuda_stream
    return raw(torch.cuda.current_device() if device is None else device.index)


def _stream(array: Optional[Array], stream: Optional[int]) -> int:
    """The CUDA stream to enqueue on: the given handle, else the current stream of the array's library
    (with no array: of torch or cupy, whichever is loaded), else the default stream."""
    if stream is not None:
        return _integer(stream, "stream (a cudaStream_t handle)", bounds=_UINT64)
    device = None
    if array is not None:
        library = _library(array)
        if library == "torch":
            if not _on_cuda(array):
                return 0
            device = array.device
    else:
        library = "torch" if _torch_on_gpu() else ("cupy" if "cupy" in sys.modules else "")
    if library == "torch":
        import torch
        return _torch_current_stream(torch, device)
    if library == "cupy":
        import cupy
        return cupy.cuda.get_current_stream().ptr
    return 0


# ------------------------------------------------------------------------------------------------
# Arguments: checked here, so that a wrong one is a TypeError or ValueError that names it

_INT32 = (-2**31, 2**31 - 1)
_UINT64 = (0, 2**64 - 1)


def _integer(value: Any, name: str, bounds: Optional[Tuple[int, int]] = _INT32) -> int:
    """value as an int within bounds (None: any); bools and floats are not ints."""
    if not isinstance(value, bool):
        try:
            result = operator.index(value)
        except TypeError:
            pass
        else:
            if bounds is not None and not bounds[0] <= result <= bounds[1]:
                raise ValueError(f"{name} must be within [{bounds[0]}, {bounds[1]}], got {result}")
            return result
    raise TypeError(f"{name} must be an int, got {type(value).__name__}")


def _real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


_THREADS = (0, 2**31 - 1)  # num_threads: 0 is one per hardware thread
_HEADS = (1, 2**31 - 1)  # num_q_heads given (None is the default: 0 never reaches the C++ API's "default")
_F32_ROUNDS_TO_ZERO = 2.0**-150  # magnitudes up to this are 0 in float32, the C++ API's "default"


def _scale(value: Any, name: str) -> float:
    """The softmax scale for the C++ API, where 0 means 1/sqrt(head_dim): None gives that 0, and a
    given scale must be finite and not 0 in float32 (it would silently turn into the default)."""
    if value is None:
        return 0.0
    scale = _real(value, name)
    if not math.isfinite(scale) or abs(scale) <= _F32_ROUNDS_TO_ZERO:
        raise ValueError(f"{name} must be a finite number other than 0, got {scale}; leave it None for 1/sqrt(head_dim)")
    return scale


def _instance(value: Any, kind: type, name: str, expected: str) -> Any:
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    return value


def _handle(value: Any, name: str = "seq") -> int:
    """A sequence handle; an int that no handle can be is unknown (KeyError), like a removed one."""
    handle = _integer(value, name, bounds=None)
    if not _UINT64[0] <= handle <= _UINT64[1]:
        raise KeyError(f"{name}: {handle} is not a sequence handle; use a handle returned by add or fork")
    return handle


def _is_sequence(value: Any) -> bool:
    """A list, tuple, range or array: something with a length that can be indexed, but no string."""
    return hasattr(value, "__len__") and hasattr(value, "__getitem__") and not isinstance(value, (str, bytes, dict))


def _sequence(value: Any, name: str, expected: str) -> tuple:
    if not _is_sequence(value):
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__}")
    return tuple(value)


def _array(value: Any, name: str, layout: str) -> Array:
    """value if it is an array (DLPack) of as many dimensions as `layout` names ("[tokens, heads]")."""
    library = _library(value)
    # torch first: torch.compile traces this check (through PagedAttention.run), not hasattr on a tensor.
    if not (library == "torch" or (hasattr(value, "__dlpack__") and hasattr(value, "shape"))):
        raise TypeError(f"{name} must be an array {layout} (torch, cupy, jax or numpy), got {type(value).__name__}")
    dims = layout.count(",") + 1
    if len(value.shape) != dims:
        raise ValueError(f"{name} must have {dims} dimensions {layout}, got shape {tuple(value.shape)}")
    if library == "numpy" and value.dtype.byteorder == ">":
        raise ValueError(f"{name} is big-endian ({value.dtype}); pass {name}.astype({value.dtype.newbyteorder('=').str!r})")
    return value


def _writable(value: Any, name: str, layout: str) -> Array:
    """An array that a call writes: `_array`, and not read-only (a numpy array whose writeable flag
    is off, or a jax array, which is immutable)."""
    value = _array(value, name, layout)
    if _library(value) in ("jax", "jaxlib") or not getattr(getattr(value, "flags", None), "writeable", True):
        raise ValueError(f"{name} is read-only; pass a writable array {layout} (torch, cupy or numpy)")
    return value


def _int32_array(values: Any, name: str, shape: Tuple[Optional[int], ...], layout: str):
    """values (a numpy array, a CPU tensor, or nested lists of ints) as a C-contiguous numpy int32
    array of `shape` (None: any extent). Nothing is converted silently: floats, bools, values that
    int32 cannot hold, and any other shape are refused rather than truncated, wrapped or reshaped."""
    import numpy
    if _on_cuda(values):
        raise ValueError(f"{name} must be a host array {layout}, got one on a CUDA device; pass .cpu() of it")
    if not _is_sequence(values):
        raise TypeError(f"{name} must be {layout} ints (a numpy array, a CPU tensor or a list), got {type(values).__name__}")
    try:
        array = numpy.asarray(values)
    except (TypeError, ValueError) as error:  # ragged lists, arrays numpy cannot read
        raise ValueError(f"{name} must be {layout} ints, got a {type(values).__name__} that is not one: {error}") from None
    if array.ndim != len(shape) or any(want is not None and got != want for want, got in zip(shape, array.shape)):
        raise ValueError(f"{name} must have shape {layout}, got shape {tuple(array.shape)}")
    untyped_empty = array.size == 0 and not hasattr(values, "dtype")  # numpy reads an empty list as float64
    if array.dtype.kind not in "iu" and not untyped_empty:
        raise ValueError(f"{name} must hold ints (an integer dtype; not bool or float), got dtype {array.dtype}")
    if array.size and array.dtype != numpy.int32 and (array.min() < _INT32[0] or array.max() > _INT32[1]):
        raise ValueError(f"{name} must hold int32 values, got values from {array.min()} to {array.max()}")
    return numpy.ascontiguousarray(array, dtype=numpy.int32)


# ------------------------------------------------------------------------------------------------
# The prefix cache

def _plain_ints(values: Any, low: int, high: int) -> bool:
    """True for a list or tuple of plain ints within [low, high]: the common case (a decode step's
    batch), checked in C without numpy."""
    return type(values) in (list, tuple) and _core.plain_ints(values, low, high)


def _handles(values: Any, name: str) -> List[int]:
    """A list of sequence handles: plain ints checked without a name built per handle (a decode
    step's batch), anything else handle by handle, each named in its error."""
    if _plain_ints(values, *_UINT64):
        return list(values)
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
        float32 or the cache's dtype (both the same).

        With K and V on the GPU the copy runs on `stream` (default: the current torch or cupy stream
        of k) and the call returns at once: no allocation, no synchronization, capturable in a CUDA
        graph. From host memory it returns once the KV is in the pool.

        slots: exactly [n, 2] ints (chunk, offset), as add and append return them: a numpy array, a
        CPU tensor or nested lists; anything else (another shape, floats, bools, values past int32)
        is a ValueError, never reshaped or converted. Write the slots that add or append returned for
        a sequence that is still in the cache; a slot that holds no live token is refused. Writing a
        slot again overwrites that token's KV for every sequence that shares it.

        Slots on the GPU (an int32 [n, 2] C-contiguous CUDA tensor), with K and V there too: what a
        CUDA graph captures when every step writes other slots (copy each step's slots into the same
        tensor, like an engine's slot mapping). The kernel reads them, so they are not checked as
        host slots are; a slot outside the pool is not written."""
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
        return self._cache.config["device"]


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
            least the cache's chunk size). None: for a
            GPU cache the CUDA backend's cost model chooses (with num_q_heads, default the cache's
            kv heads); for a CPU cache, whole spans.
        queries_per_seq: the last queries_per_seq tokens of every sequence are its query tokens,
            each seeing the sequence up to itself (speculative decoding, prefill suffixes).
    """
    _instance(cache, PrefixCache, "cache", "a chunktree.PrefixCache")
    batch = _handles(batch, "batch")
    min_shared_rows = _integer(min_shared_rows, "min_shared_rows")
    queries_per_seq = _integer(queries_per_seq, "queries_per_seq")
    heads = cache.config["num_kv_heads"] if num_q_heads is None else _integer(num_q_heads, "num_q_heads", _HEADS)
    return Plan(cache, _core.make_plan(cache._cache, batch, *_plan_options(cache, min_shared_rows, max_item_tokens, queries_per_seq, heads)))


def _plan_options(cache: PrefixCache, min_shared_rows: int, max_item_tokens: Optional[int], queries_per_seq: int,
                  heads: int) -> tuple:
    """make_plan's options as the binding takes them: max_item_tokens None is the CUDA backend's cost
    model on a GPU cache (-1: it splits in the same pass) and whole spans on the CPU."""
    if max_item_tokens is None:
        max_item_tokens = -1 if cache.device == "cuda" else 0
    else:
        max_item_tokens = _integer(max_item_tokens, "max_item_tokens", bounds=(0, _INT32[1]))
    return min_shared_rows, max_item_tokens, queries_per_seq, heads


_Q_LAYOUT = "[tokens, q_heads, head_dim]"


def _outputs(q: Array, out: Optional[Array], lse: Optional[Array], return_lse: bool):
    """out (like q) and lse ([tokens, q_heads] float32, or None): the given arrays, else new ones."""
    out = _empty(q, tuple(q.shape)) if out is None else _writable(out, "out", _Q_LAYOUT)
    if lse is not None:
        lse = _writable(lse, "lse", "[tokens, q_heads]")
    elif return_lse:
        lse = _empty(q, (q.shape[0], q.shape[1]), "float32")
    return out, lse


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
        _core.cpu_attend(cache._cache, plan._live(), layer, q, out, lse, heads, scale, _integer(num_threads, "num_threads", _THREADS))
    return (out, lse) if lse is not None else out


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

    Plan and run on the same stream; one CacheAttention serves one run at a time.
    """

    def __init__(self, cache: PrefixCache, num_q_heads: Optional[int] = None, *, scale: Optional[float] = None,
                 min_shared_rows: int = 2, max_item_tokens: Optional[int] = None) -> None:
        self._cache = _instance(cache, PrefixCache, "cache", "a chunktree.PrefixCache")
        kv_heads = cache.config["num_kv_heads"]
        self._heads = kv_heads if num_q_heads is None else _integer(num_q_heads, "num_q_heads", _HEADS)
        if self._heads < 1 or self._heads % kv_heads:
            raise ValueError(f"num_q_heads ({self._heads}) must be a positive multiple of the cache's kv heads ({kv_heads})")
        self._scale = _scale(scale, "scale")
        self._min_shared_rows = _integer(min_shared_rows, "min_shared_rows")
        self._max_item_tokens = max_item_tokens
        self._device = _core.DevicePlan(cache._cache, self._heads, self._scale) if cache.device == "cuda" else None
        self._spare_plan = _core.Plan()  # the next step is planned into it, then it swaps with the last: memory reused
        self._plan: Optional[Plan] = None

    def plan(self, batch: Sequence[int], *, queries_per_seq: int = 1, stream: Optional[int] = None) -> Plan:
        """Plans the step for a batch of sequence handles (see make_plan) and, on the GPU, uploads it
        on `stream` (default: the current torch or cupy stream). Returns the plan; it stays valid
        until the next plan(), which reuses its memory for the step after (a refused plan() changes
        nothing)."""
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
        rows (the first are used; the rest of out and lse are left as they are); returns out (and
        lse) as attend() does. On the GPU enqueued on `stream` (default: q's current stream)."""
        if self._plan is None:
            raise ValueError("CacheAttention.run before any plan: call plan(batch) first")
        q = _array(q, "q", _Q_LAYOUT)
        layer = _integer(layer, "layer")
        out, lse = _outputs(q, out, lse, return_lse)
        if self._device is not None:
            _core.cuda_attend(self._cache._cache, self._device, layer, q, out, lse, _stream(q, stream))
        else:
            for name, array in (("out", out), ("lse", lse)):
                if array is not None and array.shape[0] != q.shape[0]:
                    raise ValueError(f"{name} has {array.shape[0]} rows but q has {q.shape[0]}; out and lse have q's rows")
            rows = self._rows
            leading = lambda array: array if array is None or array.shape[0] <= rows else array[:rows]  # noqa: E731
            _core.cpu_attend(self._cache._cache, self._plan._plan, layer, leading(q), leading(out), leading(lse), self._heads,
                             self._scale, _integer(num_threads, "num_threads", _THREADS))
        return (out, lse) if lse is not None else out


# ------------------------------------------------------------------------------------------------
# The levels API: KV the caller owns

class KvSegment:
    """`length` tokens of KV the caller owns. Contiguous (pages None): k and v are
    [n >= length, kv_heads, head_dim] and the segment is their first `length` tokens (default n).
    Paged: k and v are page pools [num_pages, page_size, kv_heads, head_dim] and `pages` lists the
    page ids in order, exactly ceil(length / page_size) of them. The arrays are referenced, not
    copied: keep them where they are while plans that use them live."""

    def __init__(self, k: Array, v: Array, length: Optional[int] = None, pages: Optional[Sequence[int]] = None) -> None:
        layout = "[n, kv_heads, head_dim]" if pages is None else "[num_pages, page_size, kv_heads, head_dim]"
        k, v = _array(k, "k", layout), _array(v, "v", layout)
        if length is None:
            if pages is not None:
                raise ValueError("a paged KvSegment needs its length")
            length = int(k.shape[0])
        length = _integer(length, "length")
        if length < 0:
            raise ValueError(f"length must be at least 0, got {length}")
        if tuple(k.shape) != tuple(v.shape):
            raise ValueError(f"k has shape {tuple(k.shape)} but v has {tuple(v.shape)}; K and V of a segment have one shape")
        if pages is None and length > k.shape[0]:
            raise ValueError(f"length {length} is past the {k.shape[0]} tokens that k and v hold")
        # Read-only: plans hold the arrays' addresses, so the arrays stay referenced here.
        self._k, self._v, self._length = k, v, length
        self._pages = tuple(_int32_array(pages, "pages", (None,), "[num_pages]").tolist()) if pages is not None else ()
        self._segment = _core.KvSegment(k, v, self._length, list(self._pages))

    k = property(lambda self: self._k, doc="K: [n, kv_heads, head_dim], or a page pool")
    v = property(lambda self: self._v, doc="V, shaped like K")
    length = property(lambda self: self._length, doc="tokens in the segment")
    pages = property(lambda self: self._pages, doc="page ids in order (empty: contiguous)")


class SharedSegment(NamedTuple):
    """A shared segment and the sequences [seq_begin, seq_end) that read it whole."""
    kv: KvSegment
    seq_begin: int
    seq_end: int


class Levels:
    """Shared levels (outermost first; each any list of SharedSegment) plus each sequence's own KV
    (one KvSegment per sequence, read causally: its last queries_per_seq tokens are the query
    tokens' own K and V), as in docs/LEVELS.md. For the GPU it keeps the uploaded plan per q shape,
    dtype and scale; one plan serves one call at a time (its scratch is shared), so do not run the
    same Levels on two streams at once."""

    def __init__(self, levels: Sequence[Sequence[SharedSegment]], own: Sequence[KvSegment] = (), queries_per_seq: int = 1) -> None:
        # Read-only (tuples): uploaded plans are kept per q shape and would not see changes.
        self._level_list = tuple(
            tuple(_instance(shared, SharedSegment, f"levels[{i}][{j}]", "a chunktree.SharedSegment")
                  for j, shared in enumerate(_sequence(level, f"levels[{i}]", "a list of SharedSegment")))
            for i, level in enumerate(_sequence(levels, "levels", "a list of levels (lists of SharedSegment)")))
        self._own = tuple(_instance(segment, KvSegment, f"own[{i}]", "a chunktree.KvSegment")
                          for i, segment in enumerate(_sequence(own, "own", "a list of KvSegment")))
        self._queries = _integer(queries_per_seq, "queries_per_seq")
        if self._queries < 1:
            raise ValueError(f"queries_per_seq must be at least 1, got {self._queries}")
        self._levels = _core.Levels([[(_instance(s.kv, KvSegment, f"levels[{i}][{j}].kv", "a chunktree.KvSegment")._segment,
                                       _integer(s.seq_begin, f"levels[{i}][{j}].seq_begin"), _integer(s.seq_end, f"levels[{i}][{j}].seq_end"))
                                      for j, s in enumerate(level)] for i, level in enumerate(self._level_list)],
                                    [segment._segment for segment in self._own], self._queries)
        self._plans: dict = {}

    levels = property(lambda self: self._level_list, doc="the shared levels, outermost first")
    own = property(lambda self: self._own, doc="each sequence's own KV")
    queries_per_seq = property(lambda self: self._queries, doc="query tokens per sequence")

    def _device_plan(self, q: Array, scale: float):
        key = (tuple(q.shape), str(q.dtype), scale)
        if key not in self._plans:
            self._plans[key] = _core.LevelsPlan(self._levels, q, scale)
        return self._plans[key]


def attend_levels(levels: Levels, q: Array, *, out: Optional[Array] = None, lse: Optional[Array] = None, return_lse: bool = False,
                  scale: Optional[float] = None, num_threads: int = 0, stream: Optional[int] = None) -> Union[Array, Tuple[Array, Array]]:
    """Attention over caller-owned KV in shared levels. q: [num_seqs · queries_per_seq, q_heads,
    head_dim]; returns out like q and, with return_lse, lse [num_seqs · queries_per_seq, q_heads]
    (float32). Everything on the CPU, or everything on one GPU (bf16/f16; the first call with a q of
    a new shape uploads a plan and keeps it on `levels`)."""
    _instance(levels, Levels, "levels", "a chunktree.Levels")
    q = _array(q, "q", _Q_LAYOUT)
    scale = _scale(scale, "scale")
    out, lse = _outputs(q, out, lse, return_lse)
    if _on_cuda(q):
        _core.cuda_attend_levels(levels._device_plan(q, scale), q, out, lse, _stream(q, stream))
    else:
        _core.cpu_attend_levels(levels._levels, q, out, lse, scale, _integer(num_threads, "num_threads", _THREADS))
    return (out, lse) if lse is not None else out


# ------------------------------------------------------------------------------------------------
# The paged front end: an engine's own page table and KV pages

def _host_indices(values: Any, name: str, layout: str):
    """A page-table array as host int32: a CUDA torch or cupy array is copied to the host first (as
    FlashInfer's plan does; it waits for the array's stream)."""
    if _on_cuda(values):
        library = _library(values)
        if library == "torch":
            values = values.cpu()
        elif library == "cupy":
            import cupy
            values = cupy.asnumpy(values)
    return _int32_array(values, name, (None,), layout)


_POOL_LAYOUTS = {"NHD": "[pages, page, kv_heads, head_dim]", "HND": "[pages, kv_heads, page, head_dim]"}


def _pools(kv_cache: Any, layout: str) -> Tuple[Array, Array]:
    """K and V pools of one layer: a (k, v) pair, or views of a [pages, 2, ...] tensor (no copy)."""
    pool = _POOL_LAYOUTS[layout]
    if isinstance(kv_cache, (tuple, list)):
        if len(kv_cache) != 2:
            raise ValueError(f"kv_cache must be one [pages, 2, ...] tensor or a (k, v) pair, got a {type(kv_cache).__name__} of {len(kv_cache)}")
        return _array(kv_cache[0], "kv_cache[0] (K)", pool), _array(kv_cache[1], "kv_cache[1] (V)", pool)
    kv_cache = _array(kv_cache, "kv_cache", pool.replace("[pages, ", "[pages, 2, "))
    if kv_cache.shape[1] != 2:
        raise ValueError(f"kv_cache must hold K and V in its second dimension [pages, 2, ...], got shape {tuple(kv_cache.shape)}")
    return kv_cache[:, 0], kv_cache[:, 1]


class PagedAttention:
    """Attention over a serving engine's own paged KV, planned from its page table (FlashInfer's
    format): the engine keeps its KV pages and page tables; chunktree finds the pages that
    sequences share (equal page ids at the start of their page lists, at any depth) and reads each
    shared page once per batch.

        w = chunktree.PagedAttention(device="cuda", kv_layout="NHD")     # or "HND"; device="cpu"
        w.plan(kv_indptr, kv_indices, kv_last_page_len, num_qo_heads, num_kv_heads, head_dim, page_size)
        for layer in range(layers):
            out = w.run(q[layer], kv_caches[layer])                  # or: out, lse = ...(return_lse=True)

    kv_indptr [batch + 1], kv_indices [kv_indptr[-1]] and kv_last_page_len [batch] are int arrays
    (host or CUDA; CUDA ones are copied to the host); sequence s holds pages
    kv_indices[kv_indptr[s]:kv_indptr[s+1]], all full but the last (kv_last_page_len[s] tokens).
    qo_indptr [batch + 1] (default: one query token per sequence) gives each sequence's q rows;
    every sequence needs the same count. With causal, query token i of n sees its sequence's
    tokens up to length − n + i (its own K and V are the last n); without, it sees them all.
    kv_cache is one layer's pages: [pages, 2, page, kv_heads, head_dim] (NHD) or
    [pages, 2, kv_heads, page, head_dim] (HND), or a (k, v) pair of [pages, page, kv_heads,
    head_dim] (or HND) arrays, read through their strides without copies. q head h reads kv head
    h // (num_qo_heads // num_kv_heads); lse is in natural log.

    On the GPU (bf16 or f16; q in the KV's dtype) plan() uploads the step's work on `stream` with
    one asynchronous copy (no allocation while it fits) and run() is capturable: run() calls
    captured in a CUDA graph replay whatever plan() gave last, with the arrays they were captured
    with. The plan holds the pools' strides: the first run() with a kv_cache of other strides than
    the last (at first: a contiguous [pages, 2, ...] tensor) loads the work again, which is refused
    under capture: run once before capturing. One PagedAttention serves one run at a time.
    """

    def __init__(self, device: str = "cuda", kv_layout: str = "NHD", *, num_threads: int = 0) -> None:
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if kv_layout not in ("NHD", "HND"):
            raise ValueError(f"kv_layout must be 'NHD' or 'HND', got {kv_layout!r}")
        self._device, self._layout = device, kv_layout
        self._op = self._op_id = self._compiling = None
        if "torch" in sys.modules:
            self._attach_torch()
        if device == "cuda":
            self._core = _core.CudaPagedAttention(kv_layout)
        else:
            self._core = _core.CpuPagedAttention(_integer(num_threads, "num_threads", _THREADS))

    device = property(lambda self: self._device, doc="'cpu' or 'cuda'")
    kv_layout = property(lambda self: self._layout, doc="'NHD' or 'HND'")

    def plan(self, kv_indptr: Any, kv_indices: Any, kv_last_page_len: Any, num_qo_heads: int, num_kv_heads: int, head_dim: int,
             page_size: int, qo_indptr: Any = None, causal: bool = False, sm_scale: Optional[float] = None,
             stream: Optional[int] = None) -> None:
        """Plans a step for every layer (see the class). A refused plan leaves the last one in place."""
        arrays = (_host_indices(kv_indptr, "kv_indptr", "[batch + 1]"), _host_indices(kv_indices, "kv_indices", "[kv_indptr[-1]]"),
                  _host_indices(kv_last_page_len, "kv_last_page_len", "[batch]"),
                  None if qo_indptr is None else _host_indices(qo_indptr, "qo_indptr", "[batch + 1]"))
        shape = (_integer(num_qo_heads, "num_qo_heads"), _integer(num_kv_heads, "num_kv_heads"), _integer(head_dim, "head_dim"),
                 _integer(page_size, "page_size"), bool(_instance(causal, bool, "causal", "a bool")),
                 _scale(sm_scale, "sm_scale"))
        if self._device == "cuda":
            self._core.plan(*arrays, *shape, _stream(None, stream))
        else:
            self._core.plan(*arrays, *shape)

    def plan_fingerprint(self) -> int:
        """A 64-bit digest of the last plan as this backend runs it: the sharing found, the rows'
        order, the pages, the shape and the item split. Ranks of a tensor-parallel engine that plan
        the same page table for their head slices get equal digests (on GPUs with as many SMs):
        comparing them across ranks checks that every rank runs the same schedule."""
        return int(self._core.plan_fingerprint())

    def run(self, q: Array, kv_cache: Any, *, out: Optional[Array] = None, lse: Optional[Array] = None, return_lse: bool = False,
            stream: Optional[int] = None) -> Union[Array, Tuple[Array, Array]]:
        """Attention of q [query tokens, num_qo_heads, head_dim] over one layer's kv_cache with the
        last plan. Returns out (like q unless given) and, with return_lse (or lse given), lse
        [query tokens, num_qo_heads] in float32. On the GPU enqueued on `stream` (default: q's
        current torch or cupy stream). Under torch.compile, with no out, lse or stream given, the
        call is the torch operator chunktree::paged_run (import torch before making the
        PagedAttention, or run it once eagerly first)."""
        q = _array(q, "q", _Q_LAYOUT)
        k, v = _pools(kv_cache, self._layout)
        if self._op is None and _library(q) == "torch":
            self._attach_torch()
        if self._op is not None and self._compiling() and out is None and lse is None and stream is None:
            out, lse = self._op(q, k, v, self._op_id)
            return (out, lse) if return_lse else out
        return self._run_pools(q, k, v, out, lse, return_lse, stream)

    def _attach_torch(self) -> None:
        """The torch operator and this object's id for it, kept on the object: torch.compile then
        traces run() into the operator without imports (the eager path skips the operator's ~10 µs
        of dispatch). Made on construction when torch is loaded, else by the first eager run()."""
        ops = _torch_operators()
        self._op_id = ops.register(self)
        self._op = ops.paged_run
        self._compiling = sys.modules["torch"].compiler.is_compiling

    def _run_pools(self, q: Array, k: Array, v: Array, out: Optional[Array], lse: Optional[Array], return_lse: bool,
                   stream: Optional[int]) -> Union[Array, Tuple[Array, Array]]:
        out, lse = _outputs(q, out, lse, return_lse)
        if self._device == "cuda":
            self._core.run(k, v, self._layout, q, out, lse, _stream(q, stream))
        else:
            self._core.run(k, v, self._layout, q, out, lse)
        return (out, lse) if lse is not None else out


def _torch_operators():
    """chunktree._torch_ops: the torch operators, registered when first imported. (Not named like
    the module: `from . import _torch_ops` would return a package attribute of that name.)"""
    from . import _torch_ops as ops
    return ops


# ------------------------------------------------------------------------------------------------
# Merge primitives

_O_LAYOUT = "[tokens, heads, head_dim]"
_LSE_LAYOUT = "[tokens, heads]"

def merge_state(a_o: Array, a_lse: Array, b_o: Array, b_lse: Array, out_o: Optional[Array] = None, out_lse: Optional[Array] = None,
                stream: Optional[int] = None) -> Tuple[Array, Array]:
    """The merge of two attention states: o [tokens, heads, head_dim], lse [tokens, heads] (float32,
    natural log). The empty state (o = 0, lse = -inf) changes nothing; the result never holds NaN
    from it, and repeated calls give the same bits. out_o/out_lse may be a's or b's arrays."""
    a_o, b_o = _array(a_o, "a_o", _O_LAYOUT), _array(b_o, "b_o", _O_LAYOUT)
    a_lse, b_lse = _array(a_lse, "a_lse", _LSE_LAYOUT), _array(b_lse, "b_lse", _LSE_LAYOUT)
    out_o = _empty(a_o, tuple(a_o.shape)) if out_o is None else _writable(out_o, "out_o", _O_LAYOUT)
    out_lse = _empty(a_lse, tuple(a_lse.shape), "float32") if out_lse is None else _writable(out_lse, "out_lse", _LSE_LAYOUT)
    _core.merge_state(a_o, a_lse, b_o, b_lse, out_o, out_lse, _stream(a_o, stream))
    return out_o, out_lse


def merge_state_in_place(o: Array, lse: Array, other_o: Array, other_lse: Array, stream: Optional[int] = None) -> None:
    """(o, lse) = merge((o, lse), (other_o, other_lse)), written into o and lse."""
    o, other_o = _writable(o, "o", _O_LAYOUT), _array(other_o, "other_o", _O_LAYOUT)
    lse, other_lse = _writable(lse, "lse", _LSE_LAYOUT), _array(other_lse, "other_lse", _LSE_LAYOUT)
    _core.merge_state_in_place(o, lse, other_o, other_lse, _stream(o, stream))


def merge_states(o: Array, lse: Array, out_o: Optional[Array] = None, out_lse: Optional[Array] = None,
                 stream: Optional[int] = None) -> Tuple[Array, Array]:
    """Merges n states per token in order: o [tokens, n, heads, head_dim], lse [tokens, n, heads] into
    [tokens, heads, head_dim] and [tokens, heads]."""
    o, lse = _array(o, "o", "[tokens, n, heads, head_dim]"), _array(lse, "lse", "[tokens, n, heads]")
    shape = tuple(o.shape)
    out_o = _empty(o, (shape[0], shape[2], shape[3])) if out_o is None else _writable(out_o, "out_o", _O_LAYOUT)
    out_lse = _empty(lse, (shape[0], shape[2]), "float32") if out_lse is None else _writable(out_lse, "out_lse", _LSE_LAYOUT)
    _core.merge_states(o, lse, out_o, out_lse, _stream(o, stream))
    return out_o, out_lse
