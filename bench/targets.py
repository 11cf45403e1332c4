"""The open issues' kernel targets from one run's CSVs of `chunktree bench` and bench/baselines.py:
P1-P5 and spec-decode of tracker #13 ("issue 10"), P4 and the half-private rows of #11 ("issue 8");
with the run's decode loop (bench/decode_loop.py) and host-bench CSVs also issue 9's decode-loop
targets, which #13 keeps.

    python3 bench/targets.py CHUNKTREE_CSV BASELINES_CSV [DECODE_LOOP_CSV HOST_CSV]

Prints a markdown table: target, measured, met or not.
"""

import argparse
import csv
import statistics

from plot import number, open_csv, read_rows


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
    return lines


def read_keyed(path, key_columns):
    """A CSV's rows by their key columns, or None where the file cannot be read (a run whose step
    failed: its targets are then reported as not measured)."""
    try:
        with open_csv(path) as handle:
            return {tuple(row.get(column) for column in key_columns): row for row in csv.DictReader(handle)}
    except OSError:
        return None


def decode_loop_lines(loop_path, host_path):
    """Issue 9's targets, which #13 keeps: chunktree's step in CUDA-graph mode (`chunktree-graph`)
    against the peers' (every FlashInfer wrapper in either mode, and SDPA where named), its host
    share, and make_plan's time for 1024 sequences (host-bench). A target whose rows are missing or
    empty (a failed or cut decode loop) is reported as not measured, naming what is missing."""
    step = read_keyed(loop_path, ("case", "impl"))
    host = read_keyed(host_path, ("case", "what"))
    lines = []

    def line(target, measured, met):
        lines.append(f"| — (issue 9) | {target} | {measured} | {'yes' if met else 'no'} |")

    def ours(case):
        """chunktree-graph's (µs per step, host µs per step) on `case`, or a reason it has none."""
        if step is None:
            return None, f"not measured: {loop_path} unreadable"
        row = step.get((case, "chunktree-graph"), {})
        us, host_us = value(row, "us_per_step"), value(row, "host_us_per_step")
        return ((us, host_us), None) if us and host_us is not None else (None, f"not measured: no chunktree-graph time for {case}")

    times, missing = ours("b64_p4k")
    if times:
        share = times[1] / times[0]
        line("host work ≤ 10 % of chunktree's step on b64_p4k",
             f"{times[1]:.1f} of {times[0]:.1f} µs ({100 * share:.1f} %; the share moves with the host's speed)", share <= 0.10)
    else:
        line("host work ≤ 10 % of chunktree's step on b64_p4k", missing, False)

    plan = value((host or {}).get(("b1024_p2k", "make_plan"), {}), "median_us")
    line("make_plan for B = 1024 ≤ 50 µs (host-bench b1024_p2k)",
         f"{plan:.1f} µs" if plan else f"not measured: no b1024_p2k make_plan in {host_path}", plan is not None and plan <= 50)

    def against(cases, impls, target, bound):
        """chunktree-graph's speedup on each case over the fastest of `impls` with a time there."""
        parts, speedups = [], []
        for case in cases:
            times, missing = ours(case)
            theirs = {impl: value((step or {}).get((case, impl), {}), "us_per_step") for impl in impls}
            theirs = {impl: t for impl, t in theirs.items() if t}
            if not times or not theirs:
                parts.append(f"{case} " + (missing or "not measured: no peer time"))
                speedups.append(0.0)
                continue
            fastest = min(theirs, key=theirs.get)
            speedups.append(theirs[fastest] / times[0])
            parts.append(f"{case} {speedups[-1]:.2f}× ({fastest})")
        line(target, ", ".join(parts), min(speedups) >= bound)

    flashinfer = [f"flashinfer-{kind}{mode}" for kind in ("decode", "cascade") for mode in ("", "-graph")]
    against(("b64_p4k", "b256_p2k"), flashinfer, "≥ 2.5× the faster FlashInfer wrapper on b64_p4k and b256_p2k", 2.5)
    against(("b8_p1k", "b8_p1k_distinct"), flashinfer + ["sdpa"], "never slower than the fastest peer on b8_p1k and b8_p1k_distinct", 1.0)
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chunktree_csv")
    parser.add_argument("baselines_csv")
    parser.add_argument("loop_csvs", nargs="*", metavar="DECODE_LOOP_CSV HOST_CSV")
    args = parser.parse_args()
    if len(args.loop_csvs) not in (0, 2):
        parser.error("give the decode loop's CSV and host-bench's CSV together, or neither")
    print("\n".join(main(args.chunktree_csv, args.baselines_csv)), flush=True)  # first: a decode-loop error loses none of it
    if args.loop_csvs:
        print("\n".join(decode_loop_lines(*args.loop_csvs)))
