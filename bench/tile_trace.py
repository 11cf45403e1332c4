"""Reads per-tile traces of the partial-state kernels (src/kernels/tile_trace.cuh) and prints where
their tiles' time goes: each phase's median and range, how long CTAs wait between their tiles, and
how unevenly the CTAs finish, every time counted from the first CTA that entered a kernel (the first
tile taken, in traces from before session 67) in any of the files (the kernels stamp one clock, so
a wgmma trace and an mma.sync trace of one call line up). Where the units were traced too (files
TRACE.csv.units, TRACE.csv.wgmma.units and the merge's TRACE.csv.merge.units, found beside the
tile traces), it prints the call on that clock: each kernel's CTAs (the merge's warps) entering and
leaving, the merge's waits for the states kernel returning, and each CTA's time before its first
tile and after its last.

    python3 bench/tile_trace.py TRACE.csv [TRACE.csv.wgmma]

Record them with a build configured with -DCHUNKTREE_TILE_TRACE=ON:
    CHUNKTREE_TILE_TRACE=TRACE.csv build-trace/tools/chunktree bench --repeats 5 --batch 512 ...
(each file holds the last traced eager call of its kernel: TRACE.csv the mma.sync kernel's,
TRACE.csv.wgmma the wgmma kernel's; CHUNKTREE_TILE_TRACE_CALL=5 traces only the 5th eager call
of the process, the last warm-up of a bench case's first implementation). A replayed graph's launches
stamp too; with CHUNKTREE_TILE_TRACE_REPLAYED set, eager launches do not, so the next eager call
writes the last replay's tables (docs/perf/2026-12-06-session45/paged_replay_trace.py).
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
    ("  of which -> combined", "stages_done", "combined"),
    ("  of which combined -> stored", "combined", "stored"),
]


def micros(nanoseconds):
    return nanoseconds / 1e3


def load(path):
    with open(path) as file:
        rows = [{key: int(value) for key, value in row.items()} for row in csv.DictReader(file)]
    rows = [row for row in rows if row["stored"] > 0]
    if not rows:
        sys.exit(f"{path}: no traced tile")
    return rows


def summarize(path, rows, start):
    first = min(row["taken"] for row in rows)
    end = max(row["stored"] for row in rows)
    print(f"{path}: {len(rows)} tiles, the first taken at {micros(first - start):.1f} us, the last stored at {micros(end - start):.1f} us")
    for name, first_event, second_event in PHASES:
        if first_event not in rows[0] or second_event not in rows[0]:
            continue  # a trace from before the event was stamped
        spans = [micros(row[second_event] - row[first_event]) for row in rows]
        print(f"  {name:32s} median {statistics.median(spans):7.2f}  min {min(spans):7.2f}  max {max(spans):7.2f} us")
    by_cta = defaultdict(list)
    for row in rows:
        by_cta[row["cta"]].append(row)
    # A transition's three parts: this tile's end phase, the wait for the next tile's Q (landed at
    # its "handed" stamp), and the wait for its first KV stage (experiments 92 and 93).
    gaps, parts = [], ([], [], [])
    for tiles in by_cta.values():
        tiles.sort(key=lambda row: row["taken"])
        for before, after in zip(tiles, tiles[1:]):
            gaps.append(micros(after["first_stage"] - before["stages_done"]))
            parts[0].append(micros(before["stored"] - before["stages_done"]))
            parts[1].append(micros(after["handed"] - before["stored"]))
            parts[2].append(micros(after["first_stage"] - after["handed"]))
    if gaps:
        print(f"  between a CTA's tiles (stages done -> next first stage): median {statistics.median(gaps):.2f} us over {len(gaps)} transitions")
        print(f"    of which end phase {statistics.median(parts[0]):.2f}, stored -> next Q landed {statistics.median(parts[1]):.2f}, "
              f"-> its first stage {statistics.median(parts[2]):.2f} us (medians)")
    starts = sorted(micros(min(row["taken"] for row in tiles) - start) for tiles in by_cta.values())
    ends = sorted(micros(max(row["stored"] for row in tiles) - start) for tiles in by_cta.values())
    tenth = len(ends) // 10
    print(f"  CTAs start: first {starts[0]:.1f}, median {statistics.median(starts):.1f}, last {starts[-1]:.1f} us")
    print(f"  CTAs finish: first {ends[0]:.1f}, p10 {ends[tenth]:.1f}, median {statistics.median(ends):.1f}, "
          f"p90 {ends[-1 - tenth]:.1f}, last {ends[-1]:.1f} us ({len(ends)} CTAs)")


def load_units(path):
    """A units table (CTAs or merge warps) beside a tile trace, its units that left; None if absent."""
    try:
        with open(path) as file:
            units = [{key: int(value) for key, value in row.items()} for row in csv.DictReader(file)]
    except FileNotFoundError:
        return None
    return [unit for unit in units if unit["left"] > 0]


def spread(values):
    values = sorted(values)
    p90 = values[-1 - len(values) // 10]
    return f"first {values[0]:.1f}, median {statistics.median(values):.1f}, p90 {p90:.1f}, last {values[-1]:.1f}"


def summarize_call(traces, units_by_kernel, start):
    """The call's kernels on one clock: their units entering, waiting and leaving, and each states
    CTA's time before its first tile and after its last."""
    print("the call on one clock (us from the first unit that entered a kernel):")
    tiles_by_kernel = dict(traces)
    for name, units in units_by_kernel:
        if not units:
            continue
        print(f"  {name}: {len(units)} units; entered {spread(micros(u['entered'] - start) for u in units)}")
        waited = [micros(u["waited"] - start) for u in units if u["waited"] > 0]
        if waited:
            print(f"    waited for the kernel before: {spread(waited)}")
        print(f"    left {spread(micros(u['left'] - start) for u in units)}")
        rows = tiles_by_kernel.get(name)
        if not rows:
            continue
        first_taken, last_stored = {}, {}
        for row in rows:
            first_taken[row["cta"]] = min(first_taken.get(row["cta"], row["taken"]), row["taken"])
            last_stored[row["cta"]] = max(last_stored.get(row["cta"], row["stored"]), row["stored"])
        working = [u for u in units if u["unit"] in first_taken]
        if working:
            before = [micros(first_taken[u["unit"]] - u["entered"]) for u in working]
            after = [micros(u["left"] - last_stored[u["unit"]]) for u in working]
            print(f"    a working CTA's entry -> first tile taken: median {statistics.median(before):.2f}, max {max(before):.2f}; "
                  f"last stored -> left: median {statistics.median(after):.2f}, max {max(after):.2f} us")
    every = [u for _, units in units_by_kernel for u in units or []]
    if every:
        print(f"  first entry -> last unit left: {micros(max(u['left'] for u in every) - start):.1f} us")


def main(paths):
    traces = [(path, load(path)) for path in paths]
    units_by_kernel = [(path, load_units(path + ".units")) for path in paths]
    units_by_kernel.append((paths[0] + ".merge", load_units(paths[0] + ".merge.units")))
    entries = [unit["entered"] for _, units in units_by_kernel for unit in units or []]
    start = min(entries) if entries else min(row["taken"] for _, rows in traces for row in rows)
    for path, rows in traces:
        summarize(path, rows, start)
    if entries:
        summarize_call(traces, units_by_kernel, start)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
