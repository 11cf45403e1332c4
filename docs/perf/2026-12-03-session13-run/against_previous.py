#!/usr/bin/env python3
"""chunktree's rows of this run against the latest committed run before it (d73855c, session 12
call 4): the median ratio per row, and the rows slower by more than 3 % whose p10 is above the old
run's p90 (slower beyond both runs' spread). Usage: against_previous.py NEW.csv OLD.csv"""
import csv
import sys


def rows(path):
    return {(r["preset"], r["case"], r["impl"]): r for r in csv.DictReader(open(path))}


new, old = rows(sys.argv[1]), rows(sys.argv[2])
common = sorted(k for k in new if k in old)
ratios = sorted((float(new[k]["median_us"]) / float(old[k]["median_us"]), k) for k in common)
print(f"{len(common)} rows in both runs; median ratio new/old {ratios[len(ratios) // 2][0]:.3f}; "
      f"{sum(r < 0.97 for r, _ in ratios)} faster by > 3 %, {sum(r > 1.03 for r, _ in ratios)} slower by > 3 %")
for r, k in ratios:
    beyond = float(new[k]["p10_us"]) > float(old[k]["p90_us"])
    if r > 1.03 or (r > 1.0 and beyond):
        print(f"  slower: {' '.join(k)} {float(old[k]['median_us']):.1f} -> {float(new[k]['median_us']):.1f} us "
              f"({r:.3f}){' beyond the spread' if beyond else ''}")
