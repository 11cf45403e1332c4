# For each plan timed at several k on H100s (data.py), the model's k at the H100's HBM against the
# fastest k timed. Run in the folder of session 63's `host_tiles/fit_tools.tgz` (data.py, prices.py),
# with session 63's tile dumps in /tmp/tiles/out (`scratch_tools.tgz`: dump, built by its build.sh) and
# /tmp/tiles/k_all built from both archives: g++ -std=c++20 -O2 -DK_WGMMA_SMS_MEMORY -Iinclude -Isrc
# -Ibuild/default/tools/generated k.cpp fit/cm_sweep.cpp -o /tmp/tiles/k_all.
from data import S61, S63
from prices import model
for src in (S61, S63):
    for row, meas in src.items():
        inseq, wfirst, wsms, mall, rows, chosen = model(row)
        k = int(chosen)
        best_k = min(meas, key=meas.get)
        if k in meas:
            at = f"{meas[k]:.1f}"; ratio = f"{meas[k] / meas[best_k]:.3f}"
        else:
            lo = max([m for m in meas if m < k], default=None); hi = min([m for m in meas if m > k], default=None)
            at = f"not timed (k {lo}: {meas.get(lo, float('nan')):.1f}, k {hi}: {meas.get(hi, float('nan')):.1f})"
            ratio = "-"
        print(f"| {row} | {k} | {at} | {best_k} | {meas[best_k]:.1f} | {ratio} |")
