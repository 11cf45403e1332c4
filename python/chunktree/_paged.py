"""The paged front end: attention over a serving engine's own page table and KV pages
(FlashInfer's format)."""

from __future__ import annotations

import sys
from typing import Any, Optional, Tuple, Union

from . import _core
from ._arguments import (_Q_LAYOUT, _THREADS, Array, _array, _flag, _int32_array, _integer, _library, _on_cuda, _outputs, _real,
                         _scale, _stream, _stream_argument, _type_name)


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


def _dtype_name(value: Any, name: str) -> Optional[str]:
    """A dtype given to plan() (None, a name, or a torch or numpy dtype) as chunktree names its
    dtypes: 'float16', 'bfloat16' or 'float32'."""
    if value is None:
        return None
    if isinstance(value, str) or type(value).__module__.startswith("torch"):
        text = str(value)
    else:
        import numpy
        try:
            text = numpy.dtype(value).name  # numpy's dtypes and scalar types (numpy.float16), ml_dtypes' bfloat16
        except TypeError:
            text = str(value)
    text = {"half": "float16", "float": "float32"}.get(text.removeprefix("torch."), text.removeprefix("torch."))
    if text not in ("float16", "bfloat16", "float32"):
        raise ValueError(f"{name} must be None or float16, bfloat16 or float32 (a name, torch or numpy dtype), got {value!r}")
    return text


def _array_dtype(array: Array) -> str:
    """An array's dtype by the names _dtype_name gives."""
    return str(array.dtype).removeprefix("torch.")


def _flashinfer_plan_options(pos_encoding_mode: Any, window_left: Any, logits_soft_cap: Any, rope_scale: Any, rope_theta: Any,
                             non_blocking: Any, block_tables: Any, fixed_split_size: Any, disable_split_kv: Any) -> None:
    """FlashInfer's decode plan() options that chunktree takes only at the values that change nothing
    (what an engine passes when it uses none of them); any other value is refused, saying why."""
    if not isinstance(pos_encoding_mode, str):  # a call of before FlashInfer's order, whose 8th argument was qo_indptr
        raise TypeError(f"plan()'s 8th argument is FlashInfer's pos_encoding_mode (a str), got {_type_name(pos_encoding_mode)}; "
                        "chunktree's qo_indptr, causal and stream are keywords: pass qo_indptr=..., causal=...")
    if pos_encoding_mode != "NONE":
        raise ValueError(f"pos_encoding_mode {pos_encoding_mode!r}: chunktree applies no positional encoding inside attention; apply "
                         "RoPE to q and k before (as vLLM and SGLang do) and pass 'NONE'")
    if window_left is not None and _integer(window_left, "window_left", None) != -1:
        raise ValueError(f"window_left {window_left}: chunktree has no sliding window; pass -1 (every token is seen)")
    if logits_soft_cap is not None and _real(logits_soft_cap, "logits_soft_cap") != 0.0:
        raise ValueError(f"logits_soft_cap {logits_soft_cap}: chunktree has no logit soft-capping; pass None or 0")
    for name, value in (("rope_scale", rope_scale), ("rope_theta", rope_theta)):
        if value is not None:
            raise ValueError(f"{name} {value}: it is read only with pos_encoding_mode 'ROPE_LLAMA', which chunktree does not apply; "
                             "pass None")
    _flag(non_blocking, "non_blocking")  # either way: plan() reads the table on the host and uploads it asynchronously
    if block_tables is not None:
        raise ValueError("block_tables is for FlashInfer's trtllm-gen kernels; pass None (chunktree reads kv_indptr and kv_indices)")
    if fixed_split_size is not None and _integer(fixed_split_size, "fixed_split_size", None) != -1:
        raise ValueError(f"fixed_split_size {fixed_split_size}: chunktree chooses its KV split from a cost model of its kernels (the "
                         "same plan gives the same bits); pass None or -1")
    if _flag(disable_split_kv, "disable_split_kv"):
        raise ValueError("disable_split_kv=True: chunktree chooses its KV split from a cost model of its kernels; pass False")


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
    A sequence of no page (an engine's padding of a CUDA graph's batch, as vLLM pads FlashInfer's)
    reads nothing: its rows get out 0 and lse -inf.
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
        self._queries, self._dtypes = 1, None  # the last plan's query tokens per sequence, and dtypes given (None: none)
        if "torch" in sys.modules:
            self._attach_torch()
        if device == "cuda":
            self._core = _core.CudaPagedAttention(kv_layout)
        else:
            self._core = _core.CpuPagedAttention(_integer(num_threads, "num_threads", _THREADS))

    device = property(lambda self: self._device, doc="'cpu' or 'cuda'")
    kv_layout = property(lambda self: self._layout, doc="'NHD' or 'HND'")

    def plan(self, kv_indptr: Any, kv_indices: Any, kv_last_page_len: Any, num_qo_heads: int, num_kv_heads: int, head_dim: int,
             page_size: int, pos_encoding_mode: str = "NONE", window_left: int = -1, logits_soft_cap: Optional[float] = None,
             q_data_type: Any = None, kv_data_type: Any = None, o_data_type: Any = None, data_type: Any = None,
             sm_scale: Optional[float] = None, rope_scale: Optional[float] = None, rope_theta: Optional[float] = None,
             non_blocking: bool = True, block_tables: Any = None, seq_lens: Any = None, fixed_split_size: Optional[int] = None,
             disable_split_kv: bool = False, *, qo_indptr: Any = None, causal: bool = False, stream: Optional[int] = None) -> None:
        """Plans a step for every layer (see the class). A refused plan leaves the last one in place.

        The arguments are FlashInfer's BatchDecodeWithPagedKVCacheWrapper.plan()'s, in its order, so
        that an engine's call ports as it is; chunktree's own (qo_indptr, causal, stream) are keywords.
        Options chunktree does not have are taken only at the values that change nothing (RoPE
        'NONE', no window, no soft cap, FlashInfer's own split) and refused otherwise. The dtypes,
        where given (data_type for both q and KV), are checked by run(): q, the KV and out must have
        them. seq_lens, where given, must be the lengths the table gives."""
        _flashinfer_plan_options(pos_encoding_mode, window_left, logits_soft_cap, rope_scale, rope_theta, non_blocking, block_tables,
                                 fixed_split_size, disable_split_kv)
        default = _dtype_name(data_type, "data_type")
        dtypes = (_dtype_name(q_data_type, "q_data_type") or default, _dtype_name(kv_data_type, "kv_data_type") or default,
                  _dtype_name(o_data_type, "o_data_type"))
        arrays = (_host_indices(kv_indptr, "kv_indptr", "[batch + 1]"), _host_indices(kv_indices, "kv_indices", "[kv_indptr[-1]]"),
                  _host_indices(kv_last_page_len, "kv_last_page_len", "[batch]"),
                  None if qo_indptr is None else _host_indices(qo_indptr, "qo_indptr", "[batch + 1]"))
        shape = (_integer(num_qo_heads, "num_qo_heads"), _integer(num_kv_heads, "num_kv_heads"), _integer(head_dim, "head_dim"),
                 _integer(page_size, "page_size"), _flag(causal, "causal"),
                 _scale(sm_scale, "sm_scale"))
        if seq_lens is not None:
            _expect_seq_lens(_host_indices(seq_lens, "seq_lens", "[batch]"), *arrays[:3], shape[3])
        if self._device == "cuda":
            self._core.plan(*arrays, *shape, _stream(None, stream))
        else:
            _stream_argument(stream)
            self._core.plan(*arrays, *shape)
        qo = arrays[3]
        self._queries = 1 if qo is None or len(qo) < 2 else int(qo[1] - qo[0])
        self._dtypes = dtypes if dtypes != (None, None, None) else None

    def plan_fingerprint(self) -> int:
        """A 64-bit digest of the last plan as this backend runs it: the sharing found, the rows'
        order, the pages, the shape and the item split. Ranks of a tensor-parallel engine that plan
        the same page table for their head slices get equal digests (on GPUs with as many SMs):
        comparing them across ranks checks that every rank runs the same schedule."""
        return int(self._core.plan_fingerprint())

    def run(self, q: Array, kv_cache: Any, *, out: Optional[Array] = None, lse: Optional[Array] = None, return_lse: bool = False,
            stream: Optional[int] = None, q_scale: Optional[float] = None, k_scale: Optional[float] = None,
            v_scale: Optional[float] = None, enable_pdl: Optional[bool] = None, window_left: Optional[int] = None, sinks: Any = None,
            q_len_per_req: Optional[int] = None, skip_softmax_threshold_scale_factor: Optional[float] = None,
            kv_cache_sf: Any = None) -> Union[Array, Tuple[Array, Array]]:
        """Attention of q [query tokens, num_qo_heads, head_dim] over one layer's kv_cache with the
        last plan. Returns out (like q unless given) and, with return_lse (or lse given), lse
        [query tokens, num_qo_heads] in float32. On the GPU enqueued on `stream` (default: q's
        current torch or cupy stream). Under torch.compile, with no out, lse or stream given, the
        call is the torch operator chunktree::paged_run (import torch before making the
        PagedAttention, or run it once eagerly first).

        FlashInfer's (0.6.8) run() options are taken at the values that change nothing: scales None
        or 1 (bf16 and f16 KV, no fp8), window_left None or -1, no sinks, no skipped softmax, no KV
        scale factors, q_len_per_req None or the plan's query tokens per sequence; enable_pdl
        either way (the kernels chain on their own)."""
        if not (q_scale is None and k_scale is None and v_scale is None and enable_pdl is None and window_left is None and sinks is None
                and q_len_per_req is None and skip_softmax_threshold_scale_factor is None
                and kv_cache_sf is None):  # one test on the common path: run() is called per layer
            _flashinfer_run_options(q_scale, k_scale, v_scale, enable_pdl, window_left, sinks, q_len_per_req,
                                    skip_softmax_threshold_scale_factor, kv_cache_sf, self._queries)
        q = _array(q, "q", _Q_LAYOUT)
        k, v = _pools(kv_cache, self._layout)
        if self._dtypes is not None:
            _expect_planned_dtypes(self._dtypes, q, k, out)
        if self._op is None and _library(q) == "torch":
            self._attach_torch()
        if self._op is not None and self._compiling() and out is None and lse is None and stream is None:
            out, lse = self._op(q, k, v, self._op_id)
            return (out, lse) if _flag(return_lse, "return_lse") else out
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
            _stream_argument(stream)
            self._core.run(k, v, self._layout, q, out, lse)
        return (out, lse) if lse is not None else out


def _expect_seq_lens(seq_lens, kv_indptr, kv_indices, kv_last_page_len, page_size: int) -> None:
    """seq_lens given to plan() (FlashInfer's) must be the lengths the table gives."""
    import numpy
    if len(seq_lens) != len(kv_last_page_len):
        raise ValueError(f"seq_lens has {len(seq_lens)} entries; expected one per sequence ({len(kv_last_page_len)})")
    pages = numpy.diff(kv_indptr.astype(numpy.int64)) if len(kv_indptr) else numpy.zeros(0, numpy.int64)
    if len(pages) != len(seq_lens):
        return  # the plan's own check names the table's error
    lengths = numpy.where(pages > 0, (pages - 1) * page_size + kv_last_page_len, 0)
    wrong = numpy.flatnonzero(lengths != seq_lens)
    if wrong.size:
        s = int(wrong[0])
        raise ValueError(f"seq_lens[{s}] is {int(seq_lens[s])} but the page table gives sequence {s} {int(lengths[s])} tokens "
                         "((pages - 1) * page_size + kv_last_page_len); pass None or the table's lengths")


def _flashinfer_run_options(q_scale: Any, k_scale: Any, v_scale: Any, enable_pdl: Any, window_left: Any, sinks: Any,
                            q_len_per_req: Any, skip_softmax_threshold_scale_factor: Any, kv_cache_sf: Any, planned_queries: int) -> None:
    """FlashInfer's run() options at the values that change nothing (see PagedAttention.run)."""
    for name, value in (("q_scale", q_scale), ("k_scale", k_scale), ("v_scale", v_scale)):
        if value is not None and _real(value, name) != 1.0:
            raise ValueError(f"{name} {value}: chunktree reads bf16 and f16 KV unscaled (no fp8); pass None or 1.0")
    if enable_pdl is not None:
        _flag(enable_pdl, "enable_pdl")
    if window_left is not None and _integer(window_left, "window_left", None) != -1:
        raise ValueError(f"window_left {window_left}: chunktree has no sliding window; pass None or -1")
    if sinks is not None:
        raise ValueError("sinks: chunktree has no attention sinks; pass None")
    if skip_softmax_threshold_scale_factor is not None or kv_cache_sf is not None:
        raise ValueError("skip_softmax_threshold_scale_factor and kv_cache_sf: chunktree computes every softmax term exactly and "
                         "reads bf16 and f16 KV without scale factors; pass None")
    if q_len_per_req is not None and _integer(q_len_per_req, "q_len_per_req", None) != planned_queries:
        raise ValueError(f"q_len_per_req {q_len_per_req}: the plan has {planned_queries} query tokens per sequence (plan()'s "
                         "qo_indptr); pass None or that")


def _expect_planned_dtypes(dtypes, q: Array, k: Array, out: Optional[Array]) -> None:
    """q, the KV and out against the dtypes plan() was given (None: not given)."""
    q_dtype, kv_dtype, o_dtype = dtypes
    for name, want, array, hint in (("q", q_dtype, q, "q_data_type"), ("kv_cache", kv_dtype, k, "kv_data_type")):
        if want is not None and _array_dtype(array) != want:
            raise ValueError(f"{name} is {_array_dtype(array)} but plan() was given {hint} {want}; pass {name} of that dtype or plan "
                             "with its own")
    if o_dtype is not None:
        got = _array_dtype(q if out is None else out)
        if got != o_dtype:
            raise ValueError(f"out would be {got} but plan() was given o_data_type {o_dtype}; pass out= of that dtype (out is q's "
                             "dtype unless given)")


def _torch_operators():
    """chunktree._torch_ops: the torch operators, registered when first imported (it imports torch,
    so not before a PagedAttention needs it)."""
    from . import _torch_ops as ops
    return ops
