#!/usr/bin/env python3
"""Plots of benchmark CSVs (from `chunktree bench --csv` and bench/baselines.py).

    python3 bench/plot.py CSV [CSV ...] --out-dir DIR

For each preset, two PNGs in DIR:
  PRESET_latency.png  median latency (µs, p10–p90 as error bars) per implementation, against
                      shared_tokens when every case of the preset has its own shared_tokens,
                      else against the case (index, labelled with its name);
  PRESET_x_floor.png  median / floor per case and implementation (grouped bars; 1 = at the floor).
Implementations are whatever the CSVs name (chunktree, chunktree-noshare, sdpa, flashinfer-*, ...).
Rows without a median (failed or skipped runs) are left out of the lines and bars. When one
(preset, case, impl) appears more than once, the last row read wins.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional

IMPL_ORDER = ["chunktree", "chunktree-noshare", "flashinfer-cascade", "flashinfer-decode", "sdpa"]


def number(text) -> Optional[float]:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value == value else None  # NaN -> None


def open_csv(path: str):
    """A CSV for reading, gzipped (NAME.gz, as the older runs under docs/perf/ are kept) or not."""
    return gzip.open(path, "rt", newline="") if path.endswith(".gz") else open(path, newline="")


def read_rows(paths: List[str]) -> List[Dict[str, str]]:
    rows = []
    for path in paths:
        with open_csv(path) as handle:
            rows.extend(csv.DictReader(handle))
    return rows


def group_rows(rows):
    """preset -> (case names in first-seen order, {case: {impl: row}}, impls in display order)."""
    presets: "OrderedDict[str, OrderedDict[str, Dict[str, dict]]]" = OrderedDict()
    for row in rows:
        preset, case, impl = row.get("preset", ""), row.get("case", ""), row.get("impl", "")
        if not preset or not case or not impl:
            continue
        presets.setdefault(preset, OrderedDict()).setdefault(case, {})[impl] = row
    grouped = OrderedDict()
    for preset, cases in presets.items():
        seen = {impl for by_impl in cases.values() for impl in by_impl}
        impls = [impl for impl in IMPL_ORDER if impl in seen] + sorted(seen - set(IMPL_ORDER))
        grouped[preset] = (list(cases), cases, impls)
    return grouped


def x_axis(case_names, cases):
    """(x per case, axis label, tick labels or None, case order along x): shared_tokens when every
    case has its own, else the case index."""
    shared = []
    for name in case_names:
        values = {number(row.get("shared_tokens")) for row in cases[name].values()}
        values.discard(None)
        shared.append(values.pop() if len(values) == 1 else None)
    if None not in shared and len(set(shared)) == len(shared) and len(shared) > 1:
        order = sorted(range(len(shared)), key=lambda i: shared[i])
        return [shared[i] for i in range(len(shared))], "shared tokens per sequence", None, order
    return list(range(len(case_names))), "case", case_names, list(range(len(case_names)))


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text) or "preset"


def describe(cases) -> str:
    for by_impl in cases.values():
        for row in by_impl.values():
            card = row.get("card", "")
            cold = row.get("cold_l2", "")
            bits = [card] if card else []
            if cold:
                bits.append("cold L2" if cold == "yes" else "warm L2")
            return ", ".join(bits)
    return ""


def plot_preset(plt, preset, case_names, cases, impls, out_dir) -> List[str]:
    xs, xlabel, ticks, order = x_axis(case_names, cases)
    subtitle = describe(cases)
    written = []

    fig, ax = plt.subplots(figsize=(max(7.0, 0.5 * len(case_names) + 4), 4.8))
    all_medians = []
    for impl in impls:
        points = []
        for i in order:
            row = cases[case_names[i]].get(impl)
            median = number(row.get("median_us")) if row else None
            if median is None:
                continue
            p10 = number(row.get("p10_us"))
            p90 = number(row.get("p90_us"))
            points.append((xs[i], median, median - p10 if p10 is not None else 0.0, p90 - median if p90 is not None else 0.0))
        if not points:
            continue
        all_medians.extend(p[1] for p in points)
        ax.errorbar([p[0] for p in points], [p[1] for p in points],
                    yerr=[[max(p[2], 0.0) for p in points], [max(p[3], 0.0) for p in points]],
                    marker="o", capsize=3, label=impl)
    if all_medians and max(all_medians) / max(min(all_medians), 1e-9) > 20:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("median latency (µs)")
    if ticks is not None:
        ax.set_xticks(xs)
        ax.set_xticklabels(ticks, rotation=45, ha="right", fontsize=8)
    ax.set_title(f"{preset}: decode attention latency" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.grid(True, alpha=0.3)
    if all_medians:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no timed rows", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    path = os.path.join(out_dir, f"{safe_name(preset)}_latency.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * len(case_names) * max(1, len(impls)) / 2 + 4), 4.8))
    width = 0.8 / max(1, len(impls))
    values_seen = []
    for k, impl in enumerate(impls):
        positions, heights = [], []
        for i, name in enumerate(case_names):
            row = cases[name].get(impl)
            value = number(row.get("x_floor")) if row else None
            if value is None:
                continue
            positions.append(i - 0.4 + width * (k + 0.5))
            heights.append(value)
        if heights:
            values_seen.extend(heights)
            ax.bar(positions, heights, width=width, label=impl)
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    if values_seen and max(values_seen) / max(min(values_seen), 1e-9) > 20:
        ax.set_yscale("log")
    ax.set_xticks(range(len(case_names)))
    ax.set_xticklabels(case_names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("median / floor (×)")
    ax.set_title(f"{preset}: multiple of the floor (1 = floor)" + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    if values_seen:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no rows with a floor", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    path = os.path.join(out_dir, f"{safe_name(preset)}_x_floor.png")
    fig.savefig(path, dpi=120)
    plt.close(fig)
    written.append(path)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("csv", nargs="+", help="benchmark CSV files")
    parser.add_argument("--out-dir", required=True, help="folder for the PNGs (created)")
    args = parser.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_rows(args.csv)
    grouped = group_rows(rows)
    if not grouped:
        print("error: no rows in " + ", ".join(args.csv), file=sys.stderr)
        return 1
    os.makedirs(args.out_dir, exist_ok=True)
    for preset, (case_names, cases, impls) in grouped.items():
        for path in plot_preset(plt, preset, case_names, cases, impls, args.out_dir):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
