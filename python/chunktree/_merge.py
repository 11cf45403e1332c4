"""Merge primitives: the exact merge of attention states (o, lse)."""

from __future__ import annotations

from typing import Optional, Tuple

from . import _core
from ._arguments import Array, _array, _empty, _stream, _writable


_O_LAYOUT = "[tokens, heads, head_dim]"
_LSE_LAYOUT = "[tokens, heads]"

def merge_state(a_o: Array, a_lse: Array, b_o: Array, b_lse: Array, out_o: Optional[Array] = None, out_lse: Optional[Array] = None,
                stream: Optional[int] = None) -> Tuple[Array, Array]:
    """The merge of two attention states: o [tokens, heads, head_dim], lse [tokens, heads] (float32,
    natural log). The empty state (o = 0, lse = -inf) changes nothing; the result never holds NaN
    from it, while NaN in a state (however little it weighs) stays NaN in the result. Repeated calls
    give the same bits. out_o/out_lse may be a's or b's arrays."""
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
