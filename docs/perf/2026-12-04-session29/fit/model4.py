from model import *
SLOTS = 2*SMS
def micros_d(row, sp, P):
    hd = row['head_dim']; slots = SLOTS
    tiles=[0,0]; tsteps=[0.0,0.0]; longest=[-1,-1]; state_rows=0; wg={}
    for r in sp['runs']:
        k = r['wgmma']
        g = (min(r['rows'], 64) + 15)//16
        wgt = 1.0 if k else (1 + P['beta']*(g-1))
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
        if k: lt = max(lt, start + longest[k]*P['wg_step']*hd/128)
        else:
            n = min(tiles[0], slots)
            lstep = max(P['L'], P['a'] + P['c']*n)
            lt = max(lt, P['lstart'] + longest[k]*lstep*hd/128)
    tail = P['tail']*(P['ms_start']+longest[0]*P['ms_step']*hd/128) if tiles[0] > slots else 0.0
    return max(max(total/slots, lt)+tail, wg_end) + states
