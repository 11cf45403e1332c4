"""Markdown tables for docs/PERFORMANCE.md from the CSVs of `chunktree bench` and bench/baselines.py.

    python3 bench/report.py CSV [CSV...] > tables.md

One table per preset: a row per case, the floor, then each implementation's median in us with its
multiple of the floor, and chunktree's speed-up over FlashInfer's cascade where both ran.
"""

import csv
import sys
from collections import OrderedDict

IMPL_ORDER = ["chunktree", "chunktree-noshare", "flashinfer-cascade", "flashinfer-decode", "sdpa"]


def read_rows(paths):
    rows = []
    for path in paths:
        with open(path, newline="") as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def cell(row):
    if row is None:
        return "—"
    median = number(row.get("median_us"))
    if median is None:
        return "failed"
    x_floor = number(row.get("x_floor"))
    return f"{median:.1f} ({x_floor:.2f}×)" if x_floor else f"{median:.1f}"


def tables(rows):
    presets = OrderedDict()
    for row in rows:
        presets.setdefault(row["preset"], OrderedDict()).setdefault(row["case"], {})[row["impl"]] = row
    out = []
    for preset, cases in presets.items():
        impls = [impl for impl in IMPL_ORDER if any(impl in by_impl for by_impl in cases.values())]
        impls += sorted({impl for by_impl in cases.values() for impl in by_impl} - set(impls))
        out.append(f"### {preset}\n")
        out.append("| case | floor µs | " + " | ".join(impls) + " | vs FI cascade |")
        out.append("|---" * (len(impls) + 3) + "|")
        for case, by_impl in cases.items():
            any_row = next(iter(by_impl.values()))
            floor = number(any_row.get("floor_us"))
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
