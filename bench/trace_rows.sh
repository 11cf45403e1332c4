#!/usr/bin/env bash
# Per-tile traces of several builds in one device call: each build runs each row of ROWS (lines
# `NAME chunktree-bench-flags`, as bench/shapes.txt), its 5th call (eager) traced into
# OUT/tr/LABEL_NAME.csv (and .csv.wgmma; a build from session 67 on also writes its CTAs' and the
# merge's warps' .units files beside them), with clocks.sm, power and throttle reasons sampled every
# 20 ms beside them (OUT/tr/clocks.csv, the rows' start times in OUT/tr/marks.txt); prints each
# row's bench line, any `probe:` lines and bench/tile_trace.py's summary, and packs OUT/tr into
# OUT/tr.tgz, whatever ends the call. A build is LABEL=COMMAND: a CLI built with
# -DCHUNKTREE_TILE_TRACE=ON, behind `env VAR=VALUE ...` where it needs settings (a probe's).
#
#   bench/trace_rows.sh OUT ROWS LABEL=COMMAND [LABEL=COMMAND ...]
set -u
cd "$(dirname "$0")/.."
out=${1:?usage: bench/trace_rows.sh OUT ROWS LABEL=COMMAND [LABEL=COMMAND ...]}
rows=${2:?usage: bench/trace_rows.sh OUT ROWS LABEL=COMMAND [LABEL=COMMAND ...]}
shift 2
mkdir -p "$out/tr" || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,clocks_throttle_reasons.active --format=csv -lms 20 > "$out/tr/clocks.csv" &
sampler=$!
pack() { kill $sampler 2> /dev/null; tar -C "$out" -czf "$out/tr.tgz" tr && rm -rf "$out/tr"; date -u; }
trap pack EXIT
for build in "$@"; do
  label=${build%%=*}
  read -ra command <<< "${build#*=}"
  while read -r row flags; do
    [ -z "$row" ] || [ "${row:0:1}" = "#" ] && continue
    name=${label}_$row
    echo "== $name $(date -u +%T.%N)" >> "$out/tr/marks.txt"
    # shellcheck disable=SC2086  # the flags are words
    CHUNKTREE_TILE_TRACE=$out/tr/$name.csv CHUNKTREE_TILE_TRACE_CALL=5 timeout 40 "${command[@]}" bench --repeats 5 $flags \
      > "$out/tr/${name}_bench.txt" 2>&1 || echo "$name: rc $?"
    echo "== $name"; grep -hE "^probe:|^\S+\s+\S+\s+chunktree\s" "$out/tr/${name}_bench.txt" | head -3
    traces=("$out/tr/$name.csv")
    [ -f "$out/tr/$name.csv.wgmma" ] && traces+=("$out/tr/$name.csv.wgmma")  # a call without wgmma tiles writes none
    python3 bench/tile_trace.py "${traces[@]}" 2>&1 | head -40
  done < "$rows"
done
