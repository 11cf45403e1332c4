# Session 68: the Python layer of an eager layer (write_kv, attend) on torch CPU tensors, the C++ calls
# replaced by no-ops; run with the installed package, then with PYTHONPATH naming a copy holding the change.
import time, statistics, torch, numpy as np, chunktree
from chunktree import _cache as C
def t(f, n=20000):
    v=[]
    for _ in range(n):
        a=time.perf_counter(); f(); v.append(time.perf_counter()-a)
    return statistics.median(v)*1e6
cache = chunktree.PrefixCache(num_layers=1, num_kv_heads=8, head_dim=128, capacity_chunks=8, dtype="f32", device="cpu")
seq = cache.add([1]).seq
plan = chunktree.make_plan(cache, [seq])
class Null:
    def __getattr__(self, name): return lambda *a, **k: None
real_core, real_cache = C._core, cache._cache
q = torch.randn(64, 32, 128); out = torch.empty_like(q)
slots = np.zeros((64, 2), dtype=np.int32); k = torch.randn(64, 8, 128); v = torch.randn(64, 8, 128)
cache._cache = Null()
print("write_kv python  %.2f" % min(t(lambda: cache.write_kv(0, slots, k, v)) for _ in range(3)))
cache._cache = real_cache
plan._live()
C._core = Null()
print("attend python    %.2f" % min(t(lambda: chunktree.attend(cache, plan, q, layer=0, out=out)) for _ in range(3)))
C._core = real_core
from chunktree import _arguments as A
print("_array(k)        %.2f" % t(lambda: A._array(k, "k", "[n, num_kv_heads, head_dim]")))
print("_library+_on_cuda %.2f" % t(lambda: A._library(slots) != "numpy" and A._on_cuda(slots)))
print("_int32_array     %.2f" % t(lambda: C._int32_array(slots, "slots", (None, 2), "[n, 2] (chunk, offset)")))
print("_stream(k)       %.2f" % t(lambda: A._stream(k, None)))
print("_outputs         %.2f" % t(lambda: C._outputs(q, out, None, False)))
print("_instance        %.2f" % t(lambda: A._instance(cache, C.PrefixCache, "cache", "x")))
print("plan._live       %.2f" % t(lambda: plan._live()))
print("_device_plan?    %s" % hasattr(plan, "_device_plan"))
