#!/usr/bin/env bash
# The whole benchmark on a GPU machine, in one go: chunktree on every preset (ceilings measured in
# the same run), its host work (host-bench), the Python baselines on the same cases, the whole
# decode step against the peers (decode_loop.py, with its floors from the same ceilings), a plain
# read of each near-floor case's bytes (reads.csv), tables and plots. Everything lands in OUT.
#
#   bench/run_all.sh OUT [--no-baselines]
# Needs build/default/tools/chunktree built (scripts/bench builds it), torch, and for FlashInfer
# the wheels of bench/README.md installed on PYTHONPATH. With nvidia-smi, OUT/clocks.csv samples the
# card's clocks and power throughout.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/run_all.sh OUT [--no-baselines]}
baselines=1
[ "${2:-}" = "--no-baselines" ] && baselines=0
mkdir -p "$out"
cli=build/default/tools/chunktree
export PYTHONUNBUFFERED=1 FLASHINFER_NO_DOWNLOAD=1

# The card's clocks, power and throttle reasons every 100 ms while everything runs (clocks.csv): a
# compute-bound row that follows a power-hungry one can start at a clock the power cap lowered
# (docs/KERNEL_NOTES.md, p32k_b256_s0), so a run shows when that happened.
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv -lms 100 > "$out/clocks.csv" &
  sampler=$!
  trap 'kill $sampler 2> /dev/null' EXIT
fi

bench/host_machine.sh > "$out/host_machine.txt" 2>&1  # how fast this host is (its host work moves with it)
"$cli" bench --preset all --csv "$out/chunktree.csv" --json "$out/chunktree.json" --ceilings-json "$out/ceilings.json" \
  | tee "$out/chunktree.txt" || exit 1
"$cli" host-bench --csv "$out/host.csv" | tee "$out/host.txt" || exit 1  # a decode step's host work: append, plan, upload
csvs=("$out/chunktree.csv")
if [ $baselines = 1 ]; then
  cases=()
  for preset in $("$cli" bench --list | grep -v '^ ' | cut -d: -f1); do
    "$cli" bench --preset "$preset" --cases-json "$out/cases_$preset.json" && cases+=(--cases "$out/cases_$preset.json")
  done
  python3 bench/baselines.py "${cases[@]}" --ceilings "$out/ceilings.json" --out "$out/baselines.csv" 2>&1 | tee "$out/baselines.txt"
  # The whole decode step against the peers (needs the chunktree package for the device's Python).
  python3 bench/decode_loop.py "$out/decode_loop.csv" --ceilings "$out/ceilings.json" 2>&1 | tee "$out/decode_loop.txt" \
    && python3 bench/decode_loop.py "$out/decode_loop.csv" --plot "$out/decode_loop.png" \
    || echo "bench/run_all.sh: decode_loop.py failed or has failed rows (see decode_loop.txt)"
  csvs+=("$out/baselines.csv")
fi
# What a kernel that only streams each case's bytes takes (`hbm-read` rows), for the presets whose
# targets sit near the floor or near one launch (P1, P4, P5): bench/targets.py reads it beside P1
# and P5, and the tables show it beside P4's. Last, so that a failure here costs nothing else.
"$cli" bench --preset chunkattn-t3 --preset no-share --preset small --read-reference --csv "$out/reads.csv" > "$out/reads.txt" 2>&1 \
  && csvs+=("$out/reads.csv") || echo "bench/run_all.sh: the read reference failed (see reads.txt)"
{ echo "after the run (the host's speed moves within a run):"; bench/host_machine.sh | tail -2; } >> "$out/host_machine.txt" 2>&1
python3 bench/report.py "${csvs[@]}" > "$out/tables.md"
python3 bench/plot.py "${csvs[@]}" --out-dir "$out/plots" && tar -C "$out" -cf "$out/plots.tar" plots && rm -rf "$out/plots"
rm -f "$out"/cases_*.json
echo "bench/run_all.sh: results in $out"
