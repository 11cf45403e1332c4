import csv, glob, json, re, statistics, collections
ROOT=__import__('os').path.join(__import__('os').path.dirname(__import__('os').path.abspath(__file__)), '..', '..') + '/'
files = glob.glob(ROOT+'2026-12-04-session28/call5/*.csv') + glob.glob(ROOT+'2026-12-04-session28/call3/sweep/*.csv') \
      + glob.glob(ROOT+'2026-12-04-session27/call6/*.csv') + [ROOT+'2026-12-04-session28-run2/chunktree.csv']
dump = {}
for line in open(__import__('os').path.join(__import__('os').path.dirname(__file__), 'fit_dump.jsonl')):
    d = json.loads(line); dump[(d['preset'], d['case'], d['impl'])] = d
meas = collections.defaultdict(lambda: collections.defaultdict(list))
for f in files:
    for r in csv.DictReader(open(f)):
        if r['impl'] not in ('chunktree', 'chunktree-noshare'): continue
        m = re.search(r'split (\d+)', r['note'] or '')
        if not m or not r['median_us']: continue
        key = (r['preset'], r['case'], r['impl'])
        if key not in dump: continue
        split = int(m.group(1))
        cands = [s['split'] for s in dump[key]['splits']]
        if split not in cands:
            longest_cand = max(cands)
            if split > longest_cand: split = 0   # at least the longest span: whole
            else: continue
        meas[key][split].append(float(r['median_us']))
def measured():
    out = {}
    for k, v in meas.items():
        out[k] = {s: statistics.median(x) for s, x in v.items()}
    return out
# call 3's private sweep: only some CSVs came back, the table has all
for line in open(ROOT+'2026-12-04-session28/call3/sweep.md'):
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    if len(cells) != 9 or not cells[0].startswith('b'): continue
    key = ('private', cells[0], 'chunktree')
    cands = [s['split'] for s in dump[key]['splits']]
    for split, cell in zip([None, 0, 512, 1024, 2048, 4096, 8192, None], cells[1:]):
        m = re.match(r'([\d.]+)(?: \(split (\d+)\))?', cell)
        s = int(m.group(2)) if split is None else split
        if s not in cands:
            if s > max(cands): s = 0
            else: continue
        meas[key][s].append(float(m.group(1)))
