# Session 68: the share of the mma.sync kernel's warp samples from its second BAR.SYNC 0x9 (the states parked)
# to its EXIT (the end phase of a one-tile CTA), and their stall reasons, from ncu's source page (--csv --print-source sass).
import csv, sys, collections
for path in sys.argv[1:]:
    rows = list(csv.reader(open(path)))
    head = rows[1]; data = rows[2:]
    ia, isrc, iall = head.index("Address"), head.index("Source"), head.index("Warp Stall Sampling (All Samples)")
    stalls = [i for i, h in enumerate(head) if h.startswith("stall_") and "Not Issued" not in h]
    def num(x):
        try: return float(x)
        except: return 0.0
    bars = [k for k, r in enumerate(data) if "BAR.SYNC" in r[isrc] and "0x9" in r[isrc]]
    total = sum(num(r[iall]) for r in data)
    print(path.split('/')[-1], "samples", int(total), "instructions", len(data), "BAR.SYNC 0x9 at", [data[k][ia] for k in bars])
    if len(bars) >= 2:
        start = bars[1]
        # the end phase: from the second BAR.SYNC 0x9 to the next backward branch (the tile loop) or EXIT
        end = len(data)
        for k in range(start, len(data)):
            s = data[k][isrc]
            if "EXIT" in s: end = k + 1; break
        region = data[start:end]
        rs = sum(num(r[iall]) for r in region)
        by = collections.Counter()
        for r in region:
            for i in stalls: by[head[i]] += num(r[i])
        allby = collections.Counter()
        for r in data:
            for i in stalls: allby[head[i]] += num(r[i])
        print(f"  region {data[start][ia]}..{data[end-1][ia]} ({end-start} instructions): {rs:.0f} samples = {100*rs/total:.1f} %")
        print("  region's stalls:", ", ".join(f"{k[6:]} {100*v/rs:.0f}%" for k, v in by.most_common(6)))
        print("  kernel's stalls:", ", ".join(f"{k[6:]} {100*v/total:.0f}%" for k, v in allby.most_common(6)))
