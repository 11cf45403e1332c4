"""Reads a per-tile trace of the mma.sync kernel (src/kernels/tile_trace.cuh) and prints where its
tiles' time goes: each phase's median and range, how long CTAs wait between their tiles, and how
unevenly the CTAs finish.

    python3 bench/tile_trace.py TRACE.csv

Record one with a build configured with -DCHUNKTREE_TILE_TRACE=ON:
    CHUNKTREE_TILE_TRACE=TRACE.csv build-trace/tools/chunktree bench --repeats 5 --batch 512 ...
(the file holds the last eager launch of the kernel).
"""

import csv
import statistics
import sys
from collections import defaultdict

PHASES = [
    ("taken -> handed (Q and header)", "taken", "handed"),
    ("handed -> first stage", "handed", "first_stage"),
    ("first stage -> stages done", "first_stage", "stages_done"),
    ("stages done -> stored", "stages_done", "stored"),
]


def micros(nanoseconds):
    return nanoseconds / 1e3


def main(path):
    with open(path) as file:
        rows = [{key: int(value) for key, value in row.items()} for row in csv.DictReader(file)]
    rows = [row for row in rows if row["stored"] > 0]
    if not rows:
        sys.exit(f"{path}: no traced tile")
    start = min(row["taken"] for row in rows)
    end = max(row["stored"] for row in rows)
    print(f"{len(rows)} tiles, {micros(end - start):.1f} us from the first tile taken to the last stored")
    for name, first, second in PHASES:
        spans = [micros(row[second] - row[first]) for row in rows]
        print(f"  {name:32s} median {statistics.median(spans):7.2f}  min {min(spans):7.2f}  max {max(spans):7.2f} us")
    by_cta = defaultdict(list)
    for row in rows:
        by_cta[row["cta"]].append(row)
    gaps = []
    for tiles in by_cta.values():
        tiles.sort(key=lambda row: row["taken"])
        gaps += [micros(after["first_stage"] - before["stages_done"]) for before, after in zip(tiles, tiles[1:])]
    if gaps:
        print(f"  between a CTA's tiles (stages done -> next first stage): median {statistics.median(gaps):.2f} us over {len(gaps)} transitions")
    ends = sorted(micros(max(row["stored"] for row in tiles) - start) for tiles in by_cta.values())
    tenth = len(ends) // 10
    print(f"  CTAs finish: first {ends[0]:.1f}, p10 {ends[tenth]:.1f}, median {statistics.median(ends):.1f}, "
          f"p90 {ends[-1 - tenth]:.1f}, last {ends[-1]:.1f} us ({len(ends)} CTAs)")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
