"""chunktree's calls as torch operators (torch.library), so that torch.compile(fullgraph=True) traces
a decode step that calls them: the operator runs the call eagerly and its fake implementation gives
the outputs' shapes. Registered on first use by PagedAttention when torch is loaded.

    torch.ops.chunktree.paged_run(q, k, v, wrapper) -> (out, lse)

`wrapper` is the id of a live PagedAttention (an int that the compiled graph holds as a constant;
PagedAttention.run passes its own, so callers never name it):
the plan and its device workspace are host state that no tensor can carry. plan() stays outside
the compiled region, as in every engine (it reads the step's page table on the host)."""

from __future__ import annotations

import itertools
import weakref
from typing import Any, Tuple

import torch

_wrappers: "weakref.WeakValueDictionary[int, Any]" = weakref.WeakValueDictionary()
_ids = itertools.count(1)


def register(wrapper: Any) -> int:
    """An id for `wrapper` that paged_run finds it by while it lives."""
    wrapper_id = next(_ids)
    _wrappers[wrapper_id] = wrapper
    return wrapper_id


@torch.library.custom_op("chunktree::paged_run", mutates_args=())
def paged_run(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, wrapper: int) -> Tuple[torch.Tensor, torch.Tensor]:
    attention = _wrappers.get(wrapper)
    if attention is None:
        raise ValueError(f"chunktree::paged_run: no live PagedAttention has id {wrapper}")
    # A compiled graph may hand over a strided q (the binding reads q C-contiguous); contiguous() of a
    # contiguous one is itself.
    out, lse = attention._run_pools(q.contiguous(), k, v, None, None, True, None)
    return out, lse


@paged_run.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, wrapper: int) -> Tuple[torch.Tensor, torch.Tensor]:
    return torch.empty_like(q), q.new_empty((q.shape[0], q.shape[1]), dtype=torch.float32)
