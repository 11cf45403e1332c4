#!/bin/bash
# A/B of step_host_perf.cpp (update_perf.cpp when ab9_raw.txt was made): /tmp/hb/update_perf_old and _new (built against the two libraries) in turn,
# N rounds; prints each side's per-round medians (µs): append_batch, make_plan, update.
N=${N:-5}
for r in $(seq $N); do for v in old new; do for a in "64 4096" "256 2048"; do echo "$v $(/tmp/hb/update_perf_$v $a 3000)"; done; done; done | awk '
{ side=$1; case_=$2; ap[side" "case_]=ap[side" "case_]" "$4; pl[side" "case_]=pl[side" "case_]" "$9; up[side" "case_]=up[side" "case_]" "$12 }
END { for (k in ap) print k, "append", ap[k], "| plan", pl[k], "| update", up[k] }' | sort
