#!/usr/bin/env bash
# For the next session (any Hopper card, ~60-90 s warm; carry [".device/s65f"]): where a `small`
# row's one-tile CTAs spend their end phase. Session 66's trace (small_trace/) puts 1.5-2.4 µs of a
# 3.4-5.5 µs tile after its last stage (stages done -> combined 0.7, combined -> stored 0.8-1.7),
# and ~1.2 µs before its first stage. Nsight Compute's source counters (warp stalls sampled per SASS
# instruction) on the mma.sync kernel of two rows say which instructions of the end phase wait, and on
# what, before anything is changed. Writes OUT/ncu_<row>.ncu-rep and OUT/ncu_<row>_source.csv.
# BUILD names another build's directory (session 67's call_probe.sh passes .device/s67f: the same kernels).
x=/tmp/x66n && rm -rf $x && mkdir -p $x && gunzip -c "${BUILD:-.device/s65f}/chunktree.gz" > $x/chunktree && chmod +x $x/chunktree || exit 1
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
while read -r row flags; do
  # shellcheck disable=SC2086  # the flags are words
  timeout 60 ncu --clock-control none --section SourceCounters --section WarpStateStats --section LaunchStats --warp-sampling-interval 0 \
    -k regex:mma_sync_states --launch-skip 3 --launch-count 1 -o "$OUT/ncu_$row" $x/chunktree bench --repeats 5 $flags < /dev/null > "$OUT/ncu_$row.log" 2>&1
  echo "== $row: rc $?"; grep -E "Duration|Stall|Warp Cycles" "$OUT/ncu_$row.log" | head -6
  ncu -i "$OUT/ncu_$row.ncu-rep" --page source --csv --print-source sass > "$OUT/ncu_${row}_source.csv" 2> /dev/null
  ls -la "$OUT/ncu_$row.ncu-rep" "$OUT/ncu_${row}_source.csv"
done < <(grep -E "^(b1_gqa_512|b8_gqa_p1k_s0) " "$(dirname "$0")/small_rows.txt")
