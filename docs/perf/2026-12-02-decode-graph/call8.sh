#!/usr/bin/env bash
# Session 6, call 8: is the short-call regression the merge kernel's loop? cb5b237 against cb5b237 with 6230f4c's merge kernel (v1) and 6230f4c.
set -u
d=.device/s6/ab
bench/compare.sh $OUT/ab8 new=$d/new v1=$d/v1 old=$d/old new2=$d/new v12=$d/v1 -- small > $OUT/ab8.log 2>&1; echo "compare rc $?"
cat $OUT/ab8/compare.md | grep -v shapes; rm -f $OUT/ab8/one.csv
