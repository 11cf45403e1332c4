"""The open issues' kernel targets from one run's CSVs of `chunktree bench` and bench/baselines.py:
P1-P5 and spec-decode of tracker #13 ("issue 10"), P4 and the half-private rows of #11 ("issue 8").

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

    # #11: the chunkattn-t3 rows at least half private with a floor of at least 100 µs.
    half_private = {case: value(row, "x_floor") for (preset, case), row in ours.items()
                    if preset == "chunkattn-t3" and value(row, "floor_us") >= 100
                    and 2 * value(row, "shared_tokens") <= value(row, "shared_tokens") + value(row, "suffix")}
    worst = max(half_private, key=half_private.get)
    lines.append(f"| #11 | chunkattn-t3 rows at least half private, floor ≥ 100 µs: ≤ 1.15 × floor | "
                 f"{sum(x <= 1.15 for x in half_private.values())} of {len(half_private)}, worst {worst} {half_private[worst]:.2f} × | "
                 f"{'yes' if max(half_private.values()) <= 1.15 else 'no'} |")

    p2 = ours.get(("hydragen-micro", "b4096_p8k_s0"))
    tflops = value(p2, "tflops") if p2 else None
    lines.append(f"| P2 | hydragen b4096_p8k_s0 ≥ 600 TFLOP/s | {tflops:.0f} TFLOP/s (whole call) | "
                 f"{'yes' if tflops and tflops >= 600 else 'no'} |")

    speedups, spec_decode = [], []
    for (preset, case), row in ours.items():
        theirs = rows.get((preset, case, "flashinfer-cascade"))
        if theirs and value(theirs, "median_us") and value(row, "median_us"):
            speedups.append(value(theirs, "median_us") / value(row, "median_us"))
            if preset == "spec-decode":
                spec_decode.append(speedups[-1])
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
    lines.append(f"| — | spec-decode ≥ 1.2× FlashInfer cascade | {min(spec_decode):.2f}–{max(spec_decode):.2f}× | "
                 f"{'yes' if min(spec_decode) >= 1.2 else 'no'} |")
    lines.append(f"| P4 | no-share ≤ 1.02 × the faster of SDPA and FlashInfer decode | {min(p4):.3f}–{max(p4):.3f}× | "
                 f"{'yes' if max(p4) <= 1.02 else 'no'} |")

    p5 = [value(row, "median_us") for (preset, _), row in ours.items() if preset == "small"]
    lines.append(f"| P5 | small ≤ 8 µs per call | {min(p5):.1f}–{max(p5):.1f} µs | {'yes' if max(p5) <= 8 else 'no'} |")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
