import heapq
from model import *
SLOTS = 2*SMS

def rr_loads(runs, P, hd):
    """Static round robin of the longest-first tile list over SLOTS CTAs: per CTA (starts µs, weighted steps)."""
    order = sorted(runs, key=lambda r: -r['steps'])
    S = [0.0]*SLOTS; B = [0.0]*SLOTS
    idx = 0
    for r in order:
        a, b = idx, idx + r['tiles']; idx = b
        groups = (min(r['rows'], 64) + 15)//16
        w = r['steps'] * (1 + P['alpha']*(groups-1)) * hd/128
        full, rest = divmod(r['tiles'], SLOTS)
        first = a % SLOTS
        for j in range(SLOTS):
            # tiles of [a,b) with k % SLOTS == j
            cnt = full + (1 if (j - first) % SLOTS < rest else 0)
            S[j] += cnt*P['ms_start']; B[j] += cnt*w
    return S, B

def fluid(S, B, P):
    """CTAs stream B_j steps after S_j µs; n streaming share the HBM: a step takes max(lone, n*unit)."""
    ev = sorted((s, b) for s, b in zip(S, B) if b > 0 or s > 0)
    t = 0.0; active = []  # heap of remaining steps (as absolute 'virtual' work)
    # processor sharing with a cap: simulate with remaining work list
    pending = list(ev); pending.reverse()
    rem = []  # remaining steps of active CTAs
    end = 0.0
    while pending or rem:
        n = len(rem)
        rate = 1.0/max(P['lone'], n*P['unit']) if n else 0.0  # steps per µs per CTA
        t_next_arrival = pending[-1][0] if pending else float('inf')
        t_next_finish = t + min(rem)/rate if n else float('inf')
        tn = min(t_next_arrival, t_next_finish)
        if n:
            done = (tn - t)*rate
            rem = [x - done for x in rem]
        t = tn
        rem = [x for x in rem if x > 1e-9]
        while pending and pending[-1][0] <= t + 1e-12:
            s, b = pending.pop()
            if b > 0: rem.append(b)
        end = t
    return end

def micros_v63(row, sp, P):
    hd = row['head_dim']
    has_wg = any(r['wgmma'] for r in sp['runs'])
    if has_wg: return micros_base(row, sp, P)
    state_rows = sum(r['state_rows'] for r in sp['runs'])
    states = 2.0*state_rows*row['queries']*row['q_heads']*hd*4/P['state_bpus']
    S, B = rr_loads(sp['runs'], P, hd)
    return fluid(S, B, P) + P.get('tail63', 0.0) + states
