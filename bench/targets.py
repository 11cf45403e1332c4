"""The open issues' kernel targets from one run's CSVs of `chunktree bench` and bench/baselines.py:
P1-P5 and spec-decode of tracker #13 ("issue 10"), P4 and the half-private rows of #11 ("issue 8");
with the run's decode loop (bench/decode_loop.py) and host-bench CSVs also issue 9's decode-loop
targets, which #13 keeps.

    python3 bench/targets.py CHUNKTREE_CSV BASELINES_CSV [DECODE_LOOP_CSV HOST_CSV] [--ceilings CEILINGS_JSON]
                             [--reads READS_CSV]

Prints a markdown table: target, measured, met or not. With the run's ceilings (run_all.sh's
ceilings.json, which holds the time of one empty launch measured in the same run), P1's line also
names the rows that no call can bring to 1.15 × floor: those where one launch plus the floor is
already more. With the run's read reference (run_all.sh's reads.csv: a plain read of each case's
bytes, timed as the rows are), P1's line names the rows where that read alone takes more than
1.15 × floor, and P5's gives the reads' times.
"""

import argparse
import csv
import json
import statistics

from plot import number, open_csv, read_rows


def value(row, column):
    return number(row.get(column))


P1_BOUND = 1.15  # × floor


def p1_line(ours, launch_us=None, reads=None, missing=""):
    """P1: every chunkattn-t3 row ≤ 1.15 × floor. A call takes at least one empty launch (the run's
    one_launch_us, its own start and end included) plus its floor, so where launch_us is known the
    line names the rows whose floor is too small for the target: launch + floor > 1.15 × floor,
    i.e. floor < launch / 0.15. Where the run timed a plain read of each row's bytes (`reads`: µs
    by (preset, case), bench --read-reference), it names the rows where that read alone exceeds
    1.15 × floor. `missing` says what was asked for and could not be read."""
    p1 = {case: row for (preset, case), row in ours.items() if preset == "chunkattn-t3"}
    ratios = [value(row, "x_floor") for row in p1.values()]
    floor = {case: value(row, "floor_us") for case, row in p1.items()}
    measured = f"{min(ratios):.2f}–{max(ratios):.2f} × floor"

    def beyond(bound_us, what):
        bounded = sorted((case for case in p1 if floor[case] and bound_us(case) and bound_us(case) > P1_BOUND * floor[case]), key=floor.get)
        named = ", ".join(f"{case} ≥ {bound_us(case) / floor[case]:.2f} ×" for case in bounded)
        return f"; {what} exceeds {P1_BOUND} × floor on {len(bounded)} of {len(p1)}" + (f": {named}" if bounded else "")

    if launch_us:
        measured += beyond(lambda case: launch_us + floor[case], f"one launch ({launch_us:.2f} µs, this run) + floor")
    if reads:
        measured += beyond(lambda case: reads.get(("chunkattn-t3", case)), "a plain read of the row's bytes (hbm-read, this run)")
    measured += missing
    return f"| P1 | every chunkattn-t3 row ≤ {P1_BOUND} × floor | {measured} | {'yes' if max(ratios) <= P1_BOUND else 'no'} |"


def read_times(path):
    """A read reference's µs by (preset, case) (bench --read-reference's CSV), or None where the
    file cannot be read."""
    rows = read_keyed(path, ("preset", "case", "impl")) if path else None
    if rows is None:
        return None
    return {(preset, case): value(row, "median_us") for (preset, case, impl), row in rows.items() if impl == "hbm-read" and value(row, "median_us")}


def main(ours_path, peers_path, launch_us=None, reads_path=None):
    rows = {(row["preset"], row["case"], row["impl"]): row for row in read_rows([ours_path, peers_path])}
    ours = {(p, c): row for (p, c, impl), row in rows.items() if impl == "chunktree"}
    reads = read_times(reads_path)
    lines = ["| id | target | measured | met |", "|---|---|---|---|"]
    # A run whose read reference failed says so, rather than leaving the bound out silently.
    missing = f"; no read reference ({reads_path}: unreadable, or no hbm-read rows)" if reads_path and not reads else ""
    lines.append(p1_line(ours, launch_us, reads, missing))

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
    p2_measured = f"{tflops:.0f} TFLOP/s (whole call)" if tflops else "not measured: no hydragen-micro b4096_p8k_s0 time"
    lines.append(f"| P2 | hydragen b4096_p8k_s0 ≥ 600 TFLOP/s | {p2_measured} | {'yes' if tflops and tflops >= 600 else 'no'} |")

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
    p5_reads = [t for (preset, _), t in (reads or {}).items() if preset == "small"]
    read_note = f"; a plain read of each row's bytes (hbm-read, this run) {min(p5_reads):.1f}–{max(p5_reads):.1f} µs" if p5_reads else ""
    lines.append(f"| P5 | small ≤ 8 µs per call | {min(p5):.1f}–{max(p5):.1f} µs{read_note} | {'yes' if max(p5) <= 8 else 'no'} |")
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
    parser.add_argument("--ceilings", metavar="CEILINGS_JSON", help="the run's ceilings.json (one_launch_us: P1's launch bound)")
    parser.add_argument("--reads", metavar="READS_CSV", help="the run's read reference (bench --read-reference): P1's and P5's read bounds")
    args = parser.parse_args()
    if len(args.loop_csvs) not in (0, 2):
        parser.error("give the decode loop's CSV and host-bench's CSV together, or neither")
    launch = None
    if args.ceilings:
        try:
            with open(args.ceilings) as handle:
                launch = json.load(handle).get("one_launch_us")
        except (OSError, ValueError) as error:  # a failed run's: P1's line then goes without its bound
            print(f"targets.py: no launch time from {args.ceilings} ({error})", flush=True)
    print("\n".join(main(args.chunktree_csv, args.baselines_csv, launch, args.reads)), flush=True)  # first: a decode-loop error loses none of it
    if args.loop_csvs:
        print("\n".join(decode_loop_lines(*args.loop_csvs)))
