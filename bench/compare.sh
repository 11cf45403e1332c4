#!/usr/bin/env bash
# A/B timing of several chunktree builds in one GPU call: each CLI times the same presets, plus
# the custom shapes of bench/shapes.txt or of the file SHAPES names (one `chunktree bench` flag line
# each, the case named by its first word), chunktree's own rows only (no peers). Writes
# OUT/<label>.csv per build and OUT/compare.md, a table of each case's median per build, the first
# build's ratio to the others, and the floor.
#
#   [SHAPES=FILE] bench/compare.sh OUT LABEL=CLI [LABEL=CLI ...] [-- PRESET ...]
#   (without `--`, every preset; `--` alone, none: the shapes only)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/compare.sh OUT LABEL=CLI [LABEL=CLI ...] [-- PRESET ...]}
shift
builds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do builds+=("$1"); shift; done
presets=(all)
[ "${1:-}" = "--" ] && shift && presets=("$@")
mkdir -p "$out"
[ "${presets[*]}" = all ] && presets=($("${builds[0]#*=}" bench --list | grep -v '^ ' | cut -d: -f1))

# Appends the rows of one `chunktree bench` run (a preset, or one custom shape named NAME) to CSV.
bench_into() {  # bench_into CLI CSV LOG NAME BENCH_FLAGS...
  local cli=$1 csv=$2 log=$3 name=$4; shift 4
  "$cli" bench "$@" --csv "$out/.bench_scratch.csv" >> "$log" 2>&1 || { echo "compare: $cli bench $* failed (see $log)"; return; }
  [ -f "$csv" ] || head -1 "$out/.bench_scratch.csv" > "$csv"
  tail -n +2 "$out/.bench_scratch.csv" | sed "s/^custom,custom,/shapes,$name,/" >> "$csv"
}

for build in "${builds[@]}"; do
  label=${build%%=*}
  cli=${build#*=}
  csv="$out/$label.csv"
  rm -f "$csv" "$out/$label.txt"
  for preset in "${presets[@]}"; do bench_into "$cli" "$csv" "$out/$label.txt" "$preset" --preset "$preset"; done
  while read -r name flags; do
    [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
    # shellcheck disable=SC2086  # the flags are words
    bench_into "$cli" "$csv" "$out/$label.txt" "$name" $flags
  done < "${SHAPES:-bench/shapes.txt}"
  rm -f "$out/.bench_scratch.csv"
  echo "compare: $label done"
done
python3 - "$out" "${builds[@]%%=*}" > "$out/compare.md" <<'PY'
import csv, sys
out, labels = sys.argv[1], sys.argv[2:]
rows = {}
for label in labels:
    try:
        with open(f"{out}/{label}.csv") as f:
            for r in csv.DictReader(f):
                if r["impl"] == "chunktree" and r["median_us"]:
                    rows.setdefault((r["preset"], r["case"]), {})[label] = (float(r["median_us"]), float(r["floor_us"] or "nan"))
    except FileNotFoundError:
        pass
print("| preset | case | floor µs | " + " | ".join(f"{l} µs" for l in labels) + " | " +
      " | ".join(f"{labels[0]} / {l}" for l in labels[1:]) + f" | {labels[0]} × floor |")
print("|---" * (4 + 2 * len(labels)) + "|")
for (preset, case), times in rows.items():
    first = times.get(labels[0])
    floor = next(iter(times.values()))[1]
    cells = [f"{times[l][0]:.1f}" if l in times else "-" for l in labels]
    ratios = [f"{first[0] / times[l][0]:.3f}" if first and l in times else "-" for l in labels[1:]]
    x_floor = f"{first[0] / floor:.2f}" if first else "-"
    print(f"| {preset} | {case} | {floor:.1f} | " + " | ".join(cells + ratios) + f" | {x_floor} |")
PY
cat "$out/compare.md"
