# Session 68: CacheAttention.plan() at B = 64 (CPU backend) and its guard, timed in one process; run once
# with the installed package and once with PYTHONPATH naming a copy whose .py files are the change.
import time, statistics, chunktree
def t(f, n=20000):
    v=[]
    for _ in range(n):
        a=time.perf_counter(); f(); v.append(time.perf_counter()-a)
    return statistics.median(v)*1e6
batch, prompt = 64, 4096
cache = chunktree.PrefixCache(num_layers=1, num_kv_heads=8, head_dim=128, capacity_chunks=64+batch*4, dtype="bf16", device="cpu")
first = cache.add([0]+list(range(1,prompt)))
seqs = [first.seq] + cache.fork(first.seq, batch-1)
cache.append_batch(seqs, [5]*batch)
att = chunktree.CacheAttention(cache, num_q_heads=32)
att.plan(seqs)
g = att._one_call if hasattr(att, "_one_call") else (lambda: att._busy)
def guard():
    with g(): pass
print("guard %.2f plan %s" % (min(t(guard) for _ in range(3)), " ".join("%.2f" % t(lambda: att.plan(seqs), 4000) for _ in range(5))))
