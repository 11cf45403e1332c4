"""The levels API: attention over KV the caller owns, in shared levels and each sequence's own
segment (docs/LEVELS.md)."""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

from . import _core
from ._arguments import (_Q_LAYOUT, _THREADS, Array, _array, _instance, _int32_array, _integer, _on_cuda, _outputs, _scale, _sequence,
                         _stream, _stream_argument)


class KvSegment:
    """`length` tokens of KV the caller owns. Contiguous (pages None): k and v are
    [n >= length, kv_heads, head_dim] and the segment is their first `length` tokens (default n).
    Paged: k and v are page pools [num_pages, page_size, kv_heads, head_dim] and `pages` lists the
    page ids in order, exactly ceil(length / page_size) of them. k and v are referenced, not copied:
    keep them where they are while plans that use them live (every call reads what they hold then);
    their memory is not checked again, so a tensor moved to other memory in place (torch's set_ or
    resize_) leaves the segment reading freed memory: make a new KvSegment (and Levels) instead.
    `pages` is copied here: a later change to the list or array is not seen; make a new KvSegment
    (and Levels) for another page list."""

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
        _stream_argument(stream)
        _core.cpu_attend_levels(levels._levels, q, out, lse, scale, _integer(num_threads, "num_threads", _THREADS))
    return (out, lse) if lse is not None else out
