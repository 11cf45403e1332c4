"""Session 60: from bench/trace_rows.sh's per-tile traces, each row's SMs per kernel, when each kernel
starts and ends, and how many tiles of each kind stream at once in ten windows (python3 streams.py)."""
import csv
import pathlib

here = pathlib.Path(__file__).parent / "tr"
for row in ["gqa_b64_p2k", "fi_p8k_b128_s256", "fi_p32k_b256_s256"]:
    for build in ["main", "e103"]:
        narrow = list(csv.DictReader(open(here / f"{build}_{row}.csv")))
        wide = list(csv.DictReader(open(here / f"{build}_{row}.csv.wgmma")))
        t0 = min(int(r["taken"]) for r in narrow + wide)
        at = lambda r, k: (int(r[k]) - t0) / 1000
        end = max(at(r, "stored") for r in narrow + wide)
        window = max(10, int(end) // 10)
        def streaming(tiles, s):
            return sum(max(0, min(at(r, "stages_done"), s + window) - max(at(r, "first_stage"), s)) for r in tiles) / window
        windows = " ".join(f"{streaming(narrow, s):.0f}/{streaming(wide, s):.0f}" for s in range(0, int(end) + 1, window))
        narrow_sms, wide_sms = {r["sm"] for r in narrow}, {r["sm"] for r in wide}
        print(f"{build:5s} {row:18s} mma.sync SMs {len(narrow_sms)}, wgmma SMs {len(wide_sms)} ({len(narrow_sms & wide_sms)} both); "
              f"mma.sync ends {max(at(r, 'stored') for r in narrow):.0f} us; wgmma first stage {min(at(r, 'first_stage') for r in wide):.1f}, "
              f"ends {max(at(r, 'stored') for r in wide):.0f} us; tiles streaming (mma.sync/wgmma) per {window} us: {windows}")
