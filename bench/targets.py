"""Issue 5's targets (P1-P5) from one run's CSVs of `chunktree bench` and bench/baselines.py.

    python3 bench/targets.py CHUNKTREE_CSV BASELINES_CSV

Prints a markdown table: target, measured, met or not.
"""

import statistics
import sys

from plot import number, read_rows


def value(row, column):
    return number(row.get(column))


def main(ours_path, peers_path):
    rows = {(row["preset"], row["case"], row["impl"]): row for row in read_rows([ours_path, peers_path])}
    ours = {(p, c): row for (p, c, impl), row in rows.items() if impl == "chunktree"}
    lines = ["| id | target | measured | met |", "|---|---|---|---|"]

    p1 = [value(row, "x_floor") for (preset, _), row in ours.items() if preset == "chunkattn-t3"]
    lines.append(f"| P1 | every chunkattn-t3 row ≤ 1.15 × floor | {min(p1):.2f}–{max(p1):.2f} × floor | {'yes' if max(p1) <= 1.15 else 'no'} |")

    p2 = ours.get(("hydragen-micro", "b4096_p8k_s0"))
    tflops = value(p2, "tflops") if p2 else None
    lines.append(f"| P2 | shared phase, 4096 sequences on one 8K prefix, GQA-8: ≥ 500 TFLOP/s | {tflops:.0f} TFLOP/s "
                 f"(hydragen b4096_p8k_s0, whole call) | {'yes' if tflops and tflops >= 500 else 'no'} |")

    speedups = []
    for (preset, case), row in ours.items():
        theirs = rows.get((preset, case, "flashinfer-cascade"))
        if theirs and value(theirs, "median_us") and value(row, "median_us"):
            speedups.append(value(theirs, "median_us") / value(row, "median_us"))
    slower = sum(1 for s in speedups if s < 1.0)
    lines.append(f"| P3 | median ≥ 1.5× faster than FlashInfer cascade, slower on none | median {statistics.median(speedups):.2f}×, "
                 f"range {min(speedups):.2f}–{max(speedups):.2f}×, slower on {slower} of {len(speedups)} | "
                 f"{'yes' if statistics.median(speedups) >= 1.5 and slower == 0 else 'no'} |")

    p4 = []
    for (preset, case), row in ours.items():
        if preset != "no-share":
            continue
        peers = [value(rows.get((preset, case, impl), {}), "median_us") for impl in ("sdpa", "flashinfer-decode")]
        peers = [p for p in peers if p]
        p4.append(value(row, "median_us") / min(peers))
    lines.append(f"| P4 | no-share ≤ 1.05 × the faster of SDPA and FlashInfer decode | {min(p4):.2f}–{max(p4):.2f}× | "
                 f"{'yes' if max(p4) <= 1.05 else 'no'} |")

    p5 = [value(row, "median_us") for (preset, _), row in ours.items() if preset == "small"]
    lines.append(f"| P5 | small ≤ 8 µs per call | {min(p5):.1f}–{max(p5):.1f} µs | {'yes' if max(p5) <= 8 else 'no'} |")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
