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

from . import _core
from ._cache import AddResult, CacheAttention, Plan, PrefixCache, attend, make_plan
from ._levels import KvSegment, Levels, SharedSegment, attend_levels
from ._merge import merge_state, merge_state_in_place, merge_states
from ._paged import PagedAttention

__all__ = [
    "AddResult", "CacheAttention", "CapacityError", "KvSegment", "Levels", "MAX_ITEM_TOKENS", "PagedAttention", "Plan", "PrefixCache",
    "SharedSegment", "attend",
    "attend_levels",
    "hopper_visible", "make_plan", "merge_state", "merge_state_in_place", "merge_states",
]
__version__: str = _core.__version__
# No work item holds more KV tokens than this, whatever a split asks (longer spans are cut and merged
# exactly): the GPU kernels' fp32 row sums drift with an item's length (docs/DESIGN.md, "Items").
MAX_ITEM_TOKENS: int = _core.MAX_ITEM_TOKENS

CapacityError = _core.CapacityError


def hopper_visible() -> bool:
    """True when some visible device is a Hopper GPU (compute capability 9.0). Making a CUDA cache
    or wrapper goes further: it runs a probe kernel there and raises if this build cannot run on it."""
    return _core.hopper_visible()

