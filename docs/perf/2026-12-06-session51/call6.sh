#!/usr/bin/env bash
# Session 51, call 6: call 4's traces again, twice (a second and third sample of each case; call 4 had
# one). Same builds and carry as call 4: [".device/s51trm", ".device/s51tr89"].
for pass in 1 2; do
  mkdir -p $OUT/p$pass && OUT=$OUT/p$pass bash docs/perf/2026-12-06-session51/call4.sh | grep -E "^==|wgmma:|combined -> stored|CTAs finish|\.csv(\.wgmma)?:"
done
