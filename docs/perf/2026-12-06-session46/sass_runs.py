"""Session 46: an Nsight Compute SASS table (`ncu -i R --page source --print-source sass --csv`,
SourceCounters) read as the kernel's code in address order: the totals of each warp-stall reason,
then the runs of instructions that executed and that did not, with the instruction-fetch samples
(stall_no_inst) each run holds. A jump over code that never runs lands on an instruction line not
fetched yet; the first warps to reach it wait for it (from the L2, or from HBM after a flush).
Usage: python3 sass_runs.py SASS.csv[.gz] [FIRST_INDEX]"""
import csv
import gzip
import sys


def main():
    path = sys.argv[1]
    first = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    with (gzip.open(path, "rt") if path.endswith(".gz") else open(path)) as f:
        rows = list(csv.reader(f))
    header, data = rows[1], rows[2:]
    col = {h: i for i, h in enumerate(header)}
    stalls = [h for h in header if h.startswith("stall_") and "Not Issued" not in h]
    totals = {h[6:]: sum(int(r[col[h]] or 0) for r in data) for h in stalls}
    print(f"{len(data)} instructions, {sum(totals.values())} samples:",
          ", ".join(f"{k} {v}" for k, v in sorted(totals.items(), key=lambda kv: -kv[1]) if v))
    executed = [int(r[col["Instructions Executed"]] or 0) > 0 for r in data]
    fetch = [int(r[col["stall_no_inst"]] or 0) for r in data]
    i = first
    while i < len(data):
        j = i
        while j < len(data) and executed[j] == executed[i]:
            j += 1
        print(f"  {'ran ' if executed[i] else 'skip'} {i:5d}-{j - 1:5d} {16 * (j - i):6d} B  no_inst {sum(fetch[i:j])}")
        i = j


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:  # a reader such as `head` that stops early
        pass
