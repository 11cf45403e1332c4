"""The open issues' kernel targets from one run's CSVs of `chunktree bench` and bench/baselines.py:
P1-P5 and spec-decode of tracker #13 ("issue 10"), P4 and the half-private rows of #11 ("issue 8");
with the run's decode loop (bench/decode_loop.py) and host-bench CSVs also issue 9's decode-loop
targets, which #13 keeps (tracker #12).

    python3 bench/targets.py CHUNKTREE_CSV BASELINES_CSV [DECODE_LOOP_CSV HOST_CSV]

Prints a markdown table: target, measured, met or not.
"""

import argparse
import csv
import statistics

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
    return lines


def decode_loop_lines(loop_path, host_path):
    """Issue 9's targets: chunktree's step in CUDA-graph mode (`chunktree-graph`) against the peers'
    (every FlashInfer wrapper in either mode, and SDPA where named), its host share, and make_plan's
    time for 1024 sequences (host-bench)."""
    with open(loop_path, newline="") as handle:
        step = {(row["case"], row["impl"]): row for row in csv.DictReader(handle)}
    with open(host_path, newline="") as handle:
        host = {(row["case"], row["what"]): row for row in csv.DictReader(handle)}
    ours = lambda case: step.get((case, "chunktree-graph"), {})  # noqa: E731
    lines = []

    row = ours("b64_p4k")
    share = value(row, "host_us_per_step") / value(row, "us_per_step")
    lines.append(f"| #12 | host work ≤ 10 % of chunktree's step on b64_p4k | {value(row, 'host_us_per_step'):.1f} of "
                 f"{value(row, 'us_per_step'):.1f} µs ({100 * share:.1f} %; the share moves with the host's speed: host_machine.txt) | "
                 f"{'yes' if share <= 0.10 else 'no'} |")

    plan = value(host.get(("b1024_p2k", "make_plan"), {}), "median_us")
    lines.append(f"| #12 | make_plan for B = 1024 ≤ 50 µs (host-bench b1024_p2k) | {plan:.1f} µs | {'yes' if plan <= 50 else 'no'} |")

    def against(case, impls):
        """chunktree-graph's speedup over the fastest of `impls` that ran on `case`, and that impl."""
        times = {impl: value(step.get((case, impl), {}), "us_per_step") for impl in impls}
        times = {impl: t for impl, t in times.items() if t}
        fastest = min(times, key=times.get)
        return times[fastest] / value(ours(case), "us_per_step"), fastest

    flashinfer = [f"flashinfer-{kind}{mode}" for kind in ("decode", "cascade") for mode in ("", "-graph")]
    faster = [(case, *against(case, flashinfer)) for case in ("b64_p4k", "b256_p2k")]
    lines.append("| #12 | ≥ 2.5× the faster FlashInfer wrapper on b64_p4k and b256_p2k | "
                 + ", ".join(f"{case} {x:.2f}× ({impl})" for case, x, impl in faster)
                 + f" | {'yes' if min(x for _, x, _ in faster) >= 2.5 else 'no'} |")
    fastest = [(case, *against(case, flashinfer + ["sdpa"])) for case in ("b8_p1k", "b8_p1k_distinct")]
    lines.append("| #12 | never slower than the fastest peer on b8_p1k and b8_p1k_distinct | "
                 + ", ".join(f"{case} {x:.2f}× ({impl})" for case, x, impl in fastest)
                 + f" | {'yes' if min(x for _, x, _ in fastest) >= 1.0 else 'no'} |")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("chunktree_csv")
    parser.add_argument("baselines_csv")
    parser.add_argument("loop_csvs", nargs="*", metavar="DECODE_LOOP_CSV HOST_CSV")
    args = parser.parse_args()
    if len(args.loop_csvs) not in (0, 2):
        parser.error("give the decode loop's CSV and host-bench's CSV together, or neither")
    table = main(args.chunktree_csv, args.baselines_csv)
    if args.loop_csvs:
        table += decode_loop_lines(*args.loop_csvs)
    print("\n".join(table))
