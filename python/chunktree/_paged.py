"""The paged front end: attention over a serving engine's own page table and KV pages
(FlashInfer's format)."""

from __future__ import annotations

import sys
from typing import Any, Optional, Tuple, Union

from . import _core
from ._arguments import (_Q_LAYOUT, _THREADS, Array, _array, _flag, _int32_array, _integer, _library, _on_cuda, _outputs, _scale, _stream,
                         _type_name)


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
            raise ValueError(f"kv_cache must be one [pages, 2, ...] tensor or a (k, v) pair, got a {_type_name(kv_cache)} of {len(kv_cache)}")
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
    under capture: run once before capturing. One PagedAttention serves one call (plan, run) at
    a time: an overlapping call from another thread raises ValueError.
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
                 _integer(page_size, "page_size"), _flag(causal, "causal"),
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
    """chunktree._torch_ops: the torch operators, registered when first imported (it imports torch,
    so not before a PagedAttention needs it)."""
    from . import _torch_ops as ops
    return ops
