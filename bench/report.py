"""Markdown tables for docs/PERFORMANCE.md from the CSVs of `chunktree bench` and bench/baselines.py.

    python3 bench/report.py CSV [CSV...] > tables.md

One table per preset: a row per case, the floor, then each implementation's median in us with its
multiple of the floor, and chunktree's speed-up over FlashInfer's cascade where both ran.
"""

import sys

from plot import group_rows, number, read_rows


def cell(row):
    if row is None:
        return "—"
    median = number(row.get("median_us"))
    if median is None:
        return "failed"
    x_floor = number(row.get("x_floor"))
    return f"{median:.1f} ({x_floor:.2f}×)" if x_floor else f"{median:.1f}"


def tables(rows):
    out = []
    for preset, (case_names, cases, impls) in group_rows(rows).items():
        out.append(f"### {preset}\n")
        out.append("| case | floor µs | " + " | ".join(impls) + " | vs FI cascade |")
        out.append("|---" * (len(impls) + 3) + "|")
        for case in case_names:
            by_impl = cases[case]
            floor = number(next(iter(by_impl.values())).get("floor_us"))
            ours = number((by_impl.get("chunktree") or {}).get("median_us"))
            theirs = number((by_impl.get("flashinfer-cascade") or {}).get("median_us"))
            speedup = f"{theirs / ours:.2f}×" if ours and theirs else "—"
            floor_text = f"{floor:.1f}" if floor else "—"
            out.append(f"| {case} | {floor_text} | " + " | ".join(cell(by_impl.get(impl)) for impl in impls) + f" | {speedup} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    print(tables(read_rows(sys.argv[1:])))
