import math
SMS = 132
def dealt_wgmma(tiles_by_steps, head_dim, P):
    ends = [0.0]*SMS
    for steps in sorted(tiles_by_steps, reverse=True):
        n = tiles_by_steps[steps]
        tile = P['wg_start'] + steps*P['wg_step']*head_dim/128
        rounds, rest = divmod(n, SMS)
        ends = [e + rounds*tile for e in ends]
        ends.sort()
        for i in range(rest): ends[i] += tile
    return max(ends)

BASE = dict(wg_step=0.85, wg_start=2.3, ms_step=1.9, ms_start=3.0, lone_step=0.85, tail=0.1, state_bpus=3.0e6)

def micros_base(row, sp, P=BASE):
    """cost_model.cpp's micros() on one dumped split; with P's optional form parameters of the search
    (beta: weight per extra 16-row group of an mma.sync tile's steps; L, a, c: the longest tile's step
    max(L, a + c * tiles in its wave); lstart: its start) the forms tried in session 29. The defaults
    reproduce the C++ model exactly."""
    hd = row['head_dim']; slots = 2*SMS
    tiles=[0,0]; tsteps=[0.0,0.0]; longest=[-1,-1]; state_rows=0; wg={}
    for r in sp['runs']:
        k = r['wgmma']
        wgt = 1.0 if k else 1 + P.get('beta', 0.0)*((min(r['rows'], 64) + 15)//16 - 1)
        tiles[k]+=r['tiles']; tsteps[k]+=r['tiles']*r['steps']*wgt; longest[k]=max(longest[k], r['steps']*wgt)
        if k: wg[r['steps']] = wg.get(r['steps'],0)+r['tiles']
        state_rows += r['state_rows']
    states = 2.0*state_rows*row['queries']*row['q_heads']*hd*4/P['state_bpus']
    wg_end = dealt_wgmma(wg, hd, P) if longest[1] >= 0 else 0.0
    if longest[0] < 0: return wg_end + states
    total=0.0; lt=0.0
    for k in (0,1):
        if longest[k] < 0: continue
        start, step, slotsk = (P['wg_start'], P['wg_step'], 2.0) if k else (P['ms_start'], P['ms_step'], 1.0)
        total += slotsk*(start*tiles[k] + step*hd/128*tsteps[k])
        if k:
            lt = max(lt, start + longest[k]*P['wg_step']*hd/128)
        else:
            lstep = max(P.get('L', P['lone_step']), P.get('a', 0.0) + P.get('c', 0.0)*min(tiles[0], slots))
            lt = max(lt, P.get('lstart', start) + longest[k]*lstep*hd/128)
    tail = P['tail']*(P['ms_start']+longest[0]*P['ms_step']*hd/128) if tiles[0] > slots else 0.0
    return max(max(total/slots, lt)+tail, wg_end) + states

def pick(row, f, P):
    best=None
    for sp in row['splits']:
        t = f(row, sp, P)
        if best is None or t < best[0]-1e-9: best=(t, sp['split'])
    return best[1]

def score(f, P, M, dump, verbose=False, keys=None):
    tot=0.0; n=0; unknown=[]; misses=[]
    for key, m in M.items():
        if keys and key not in keys: continue
        if len(m) < 3: continue
        row = dump[key]; p = pick(row, f, P)
        best = min(m.values())
        if p not in m: unknown.append((key, p)); continue
        loss = m[p]/best-1; tot+=loss; n+=1
        if loss > 0.02: misses.append((round(loss,3), key, p, min(m, key=m.get)))
    if verbose:
        for x in sorted(misses, reverse=True): print(x)
        print('unknown', unknown)
    return tot, n, len(unknown)
