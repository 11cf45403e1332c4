#!/usr/bin/env bash
# A/B of the decode step's GPU time for two chunktree builds in one GPU call (the kernel experiments'
# pattern since session 38): where each layer's time goes on the engine path (b64_p4k, b256_p2k:
# docs/perf/2026-12-05-session40/paged_profile.py) and the cache path (b64_p4k:
# docs/perf/2026-12-05-session38/loop_profile.py), through A's wheel, B's, then A's again (a drift of
# the card shows as A against A); then bench/compare.sh over PRESETS; then ncu of the engine path's
# wgmma launch through each wheel. A build's DIR holds wheel/*.whl and its CLI (chunktree or
# tools/chunktree). Writes OUT/paged_profile_LABEL.txt, loop_profile_LABEL.txt, ab/ (compare.sh's),
# ncu_paged_LABEL.txt, and prints each part's summary.
#
#   bench/ab_decode_step.sh OUT A_LABEL=DIR B_LABEL=DIR [PRESET ...]   (default presets: chunkattn-t3 tree gqa-llama3 spec-decode)
set -u
cd "$(dirname "$0")/.."
out=${1:?usage: bench/ab_decode_step.sh OUT A_LABEL=DIR B_LABEL=DIR [PRESET ...]}
a=${2:?} b=${3:?}
shift 3
presets=("$@")
[ ${#presets[@]} -eq 0 ] && presets=(chunkattn-t3 tree gqa-llama3 spec-decode)
mkdir -p "$out"
start=$SECONDS
cli_of() { if [ -x "$1/tools/chunktree" ]; then echo "$1/tools/chunktree"; else echo "$1/chunktree"; fi; }
for build in "$a" "$b"; do
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "/tmp/ab_${build%%=*}/site" "${build#*=}"/wheel/*.whl || exit 1
done
for build in "$a" "$b" "$a"; do
  label=${build%%=*}
  PYTHONPATH=/tmp/ab_$label/site timeout 60 python3 docs/perf/2026-12-05-session40/paged_profile.py b64_p4k b256_p2k >> "$out/paged_profile_$label.txt" 2>&1
  PYTHONPATH=/tmp/ab_$label/site timeout 40 python3 docs/perf/2026-12-05-session38/loop_profile.py b64_p4k >> "$out/loop_profile_$label.txt" 2>&1
  echo "== $label profiles at $((SECONDS - start)) s"
  grep "replay span" "$out/paged_profile_$label.txt" | tail -2
  grep "replay span" "$out/loop_profile_$label.txt" | tail -1
done
timeout 150 bench/compare.sh "$out/ab" "${a%%=*}=$(cli_of "${a#*=}")" "${b%%=*}=$(cli_of "${b#*=}")" -- "${presets[@]}" > "$out/compare.log" 2>&1
echo "compare rc $? at $((SECONDS - start)) s"; cat "$out/ab/compare.md"
metrics=gpu__time_duration.sum,dram__bytes_read.sum,lts__t_sector_hit_rate.pct,smsp__inst_executed.sum
metrics+=,regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio
for build in "$a" "$b"; do
  label=${build%%=*}
  PYTHONPATH=/tmp/ab_$label/site timeout 60 ncu --clock-control none --graph-profiling node --metrics "$metrics" -k regex:wgmma_states \
    --launch-skip 8 --launch-count 2 python3 bench/decode_loop.py "/tmp/ab_ncu_$label.csv" --cases b64_p4k --impls chunktree-paged-graph \
    --layers 4 --steps 2 --warmup 2 > "$out/ncu_paged_$label.txt" 2>&1
  echo "ncu $label rc $? at $((SECONDS - start)) s"
  grep -E "gpu__time_duration|hit_rate|long_scoreboard|inst_executed.sum" "$out/ncu_paged_$label.txt" | head -8
done
