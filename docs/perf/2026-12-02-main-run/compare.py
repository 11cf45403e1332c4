"""Row-by-row comparison of two bench/run_all.sh runs (median µs and floor), as markdown.

    python3 compare.py NEW_DIR OLD_DIR [FILE]   (FILE: chunktree.csv, the default, or baselines.csv)
"""
import csv
import sys


def rows(path):
    return {(r["preset"], r["case"], r["impl"]): r for r in csv.DictReader(open(path)) if r["median_us"]}


def main(new_dir, old_dir, name="chunktree.csv"):
    new, old = rows(f"{new_dir}/{name}"), rows(f"{old_dir}/{name}")
    print("| preset | case | impl | floor µs old → new | old µs | new µs | new / old | × floor old → new |")
    print("|---|---|---|---|---|---|---|---|")
    for key in sorted(new.keys() & old.keys(), key=lambda k: float(new[k]["median_us"]) / float(old[k]["median_us"])):
        n, o = new[key], old[key]
        ratio = float(n["median_us"]) / float(o["median_us"])
        print(f"| {' | '.join(key)} | {float(o['floor_us']):.1f} → {float(n['floor_us']):.1f} | {float(o['median_us']):.1f} "
              f"| {float(n['median_us']):.1f} | {ratio:.3f} | {float(o['x_floor']):.2f} → {float(n['x_floor']):.2f} |")
    missing = sorted(new.keys() ^ old.keys())
    if missing:
        print(f"\nin one run only: {missing}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])
