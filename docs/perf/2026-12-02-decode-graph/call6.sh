#!/usr/bin/env bash
# Session 6, call 6: A/B of 6230f4c against cb5b237 (and cb5b237 again) on the rows the run showed slower.
set -u
d=.device/s6/ab
bench/compare.sh $OUT/ab new=$d/new old=$d/old new2=$d/new -- small chunkattn-t3 > $OUT/ab.log 2>&1; echo "compare rc $?"
cat $OUT/ab/compare.md | head -60; rm -f $OUT/ab/one.csv
