# Session 29's grid search over 63's forms (run after the dump: see the patch): prints the best scores.
import itertools, sys
sys.path.insert(0, '.')
from data import *
from model import *
M = {k: v for k, v in measured().items() if k[2] == 'chunktree'}
print('main', score(micros_base, BASE, M, dump))
res = []
for L, a, c, beta, sb in itertools.product((0.8, 0.85, 0.9), (0, 0.16, 0.3), (0.0060, 0.0069, 0.0078), (0, 0.2), (3e6, 2e6, 1.5e6, 1e6, 0.75e6)):
    P = dict(BASE); P.update(L=L, a=a, c=c, beta=beta, state_bpus=sb)
    res.append((round(score(micros_base, P, M, dump)[0], 3), L, a, c, beta, sb))
for r in sorted(res)[:5]: print(r)
