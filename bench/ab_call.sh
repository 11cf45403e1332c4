#!/usr/bin/env bash
# One device call that checks an experimental build and times it against others: the build's GPU
# unit tests (a hang shows as their timeout), bench/compare.sh over the builds in the order given
# and then reversed (the card's drift shows between the passes), and, with GPU_CHECK=1, the build's
# quick grids and sanitizers in what time is left. Every build is a gzipped CLI carried in .device/,
# optionally run with environment settings (a branch's probes). Everything lands in /tmp/NAME, packed
# into $OUT/NAME.tgz after each step, so a call cut short returns what it measured.
#
#   bench/ab_call.sh NAME CLI_GZ TESTS_XZ LABEL=GZ[,VAR=VALUE...] ...
#     CLI_GZ, TESTS_XZ: the checked build's CLI (gzip) and GPU tests (xz)
#     CALL_S (default 560): the call's seconds; UNIT_FILTER: a gtest filter; GPU_CHECK (default 1)
#     PRESETS (default "spec-decode hydragen-micro gqa-llama3 chunkattn-t3 tree"): compare.sh's
set -u
name=${1:?usage: bench/ab_call.sh NAME CLI_GZ TESTS_XZ LABEL=GZ[,VAR=VALUE...] ...}
cli_gz=${2:?} tests_xz=${3:?}
shift 3
start=$SECONDS
budget=${CALL_S:-560}
left() { echo $((budget - (SECONDS - start))); }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; date -u
x=/tmp/x_$name R=/tmp/$name && rm -rf $x $R && mkdir -p $x/checked/tools $x/checked/tests $x/bin $R
gunzip -c "$cli_gz" > $x/checked/tools/chunktree && xz -dc "$tests_xz" > $x/checked/tests/chunktree_gpu_tests || exit 1
chmod +x $x/checked/tools/chunktree $x/checked/tests/chunktree_gpu_tests
# Each build as a script: its CLI (unpacked once per file) run with its settings.
builds=()
for spec in "$@"; do
  label=${spec%%=*} rest=${spec#*=}
  gz=${rest%%,*} settings=$([ "$gz" = "$rest" ] || echo "${rest#*,}" | tr ',' ' ')
  cli=$x/bin/$(echo "$gz" | tr '/' '_')
  [ -x "$cli" ] || { gunzip -c "$gz" > "$cli" && chmod +x "$cli"; } || exit 1
  printf '#!/bin/sh\nexec env %s %s "$@"\n' "$settings" "$cli" > $x/$label && chmod +x $x/$label
  builds+=("$label=$x/$label")
done
$x/checked/tools/chunktree info | head -3
pack() { tar -C /tmp -czf $OUT/$name.tgz $name; }
trap 'pack; date -u' EXIT
timeout 150 $x/checked/tests/chunktree_gpu_tests --gtest_filter="${UNIT_FILTER:-*}" > $R/unit.txt 2>&1
rc=$?; echo "== unit tests rc $rc ($((SECONDS - start)) s)"; grep -E "^\[  (PASSED|FAILED)|tests ran" $R/unit.txt | tail -8
[ $rc -eq 0 ] || exit $rc
pack
read -ra presets <<< "${PRESETS:-spec-decode hydragen-micro gqa-llama3 chunkattn-t3 tree}"
reversed=($(printf '%s\n' "${builds[@]}" | tac))
t=$(left); [ $t -gt 60 ] && timeout $t bench/compare.sh $R/ab1 "${builds[@]}" -- "${presets[@]}" > /dev/null 2>&1
pack; cat $R/ab1/compare.md 2>/dev/null; echo "== A/B pass 1 ($((SECONDS - start)) s)"
t=$(left); [ $t -gt 150 ] && timeout $((t - 30)) bench/compare.sh $R/ab2 "${reversed[@]}" -- "${presets[@]}" > /dev/null 2>&1
cat $R/ab2/compare.md 2>/dev/null; echo "== A/B pass 2 ($((SECONDS - start)) s)"
grep -h "^probe:" $R/ab1/*.txt 2>/dev/null | sort | uniq -c
pack
[ "${GPU_CHECK:-1}" = 1 ] || exit 0
t=$(left); [ $t -gt 40 ] && timeout $t scripts/gpu-check --no-build --build-dir $x/checked --work /tmp/gc_$name --skip-full-grid \
  --only quick-grid,seq-first-quick-grid,random-trees,memcheck,racecheck,synccheck > $R/gpu_check.txt 2>&1
echo "== gpu-check rc $? ($((SECONDS - start)) s)"; grep -A9 "gpu-check summary" $R/gpu_check.txt 2>/dev/null
