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
    hd = row['head_dim']; slots = 2*SMS
    tiles=[0,0]; tsteps=[0,0]; longest=[-1,-1]; state_rows=0; wg={}
    for r in sp['runs']:
        k = r['wgmma']; tiles[k]+=r['tiles']; tsteps[k]+=r['tiles']*r['steps']; longest[k]=max(longest[k], r['steps'])
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
        lstep = P['wg_step'] if k else P['lone_step']
        lt = max(lt, start + longest[k]*lstep*hd/128)
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
