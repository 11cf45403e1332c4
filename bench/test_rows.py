"""Tests of the peer baselines: bench/cases.py (cases, row arithmetic, CSV), bench/peers.py (data layouts on
the CPU where torch is installed), bench/baselines.py (its arguments and the whole run with torch.cuda faked)
and bench/plot.py (on a fake CSV, where matplotlib is installed).

    python3 -m pytest bench/test_rows.py
"""

import csv
import json
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import baselines  # noqa: E402
import cases  # noqa: E402
import peers  # noqa: E402
from cases import COLUMNS, Case, Level  # noqa: E402

BRIEF_EXAMPLE = {"preset": "chunkattn-t3", "cases": [
    {"name": "np1024_ns512", "batch": 32, "q_heads": 32, "kv_heads": 32, "head_dim": 128, "chunk": 64,
     "levels": [{"segments": 1, "tokens": 512}], "suffix": 512}
]}

CEILINGS = {"hbm_bytes_per_s": 1e9, "bf16_flops_per_s": 1e9, "card": "Test Card", "driver": "580.1",
            "date": "2026-11-24", "commit": "abc1234"}


def small_case(**overrides):
    fields = dict(preset="p", name="tree", batch=4, q_heads=8, kv_heads=2, head_dim=16, chunk=4,
                  levels=[Level(1, 10), Level(2, 6)], suffix=3)
    fields.update(overrides)
    return Case(**fields)


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

def test_parse_brief_example():
    (case,) = cases.parse_cases(BRIEF_EXAMPLE)
    assert case.error is None
    assert (case.preset, case.name, case.batch, case.q_heads, case.kv_heads, case.head_dim, case.chunk, case.suffix) == \
        ("chunkattn-t3", "np1024_ns512", 32, 32, 32, 128, 64, 512)
    assert case.levels == [Level(1, 512)]


def test_load_cases_file(tmp_path):
    doc = {"preset": "tree", "cases": [
        {"name": "a", "batch": 128, "q_heads": 32, "kv_heads": 32, "head_dim": 128, "chunk": 64,
         "levels": [{"segments": 1, "tokens": 2048}, {"segments": 4, "tokens": 512}, {"segments": 16, "tokens": 256}],
         "suffix": 64},
        {"name": "none_shared", "batch": 32, "q_heads": 32, "kv_heads": 8, "head_dim": 128, "chunk": 64,
         "levels": [], "suffix": 4096},
        {"name": "zero_level", "batch": 8, "q_heads": 8, "kv_heads": 8, "head_dim": 64, "chunk": 16,
         "levels": [{"segments": 1, "tokens": 0}, {"segments": 2, "tokens": 100}], "suffix": 0},
    ]}
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(doc))
    a, none_shared, zero_level = cases.load_cases(str(path))
    assert [c.error for c in (a, none_shared, zero_level)] == [None, None, None]
    assert a.levels == [Level(1, 2048), Level(4, 512), Level(16, 256)]
    assert none_shared.levels == [] and none_shared.active_levels == []
    assert zero_level.active_levels == [Level(2, 100)]


def test_malformed_cases_become_error_cases():
    doc = {"preset": "bad", "cases": [
        {"name": "gqa", "batch": 4, "q_heads": 6, "kv_heads": 4, "head_dim": 8, "chunk": 4, "levels": [], "suffix": 4},
        {"name": "split", "batch": 6, "q_heads": 4, "kv_heads": 4, "head_dim": 8, "chunk": 4,
         "levels": [{"segments": 4, "tokens": 8}], "suffix": 4},
        {"name": "nest", "batch": 12, "q_heads": 4, "kv_heads": 4, "head_dim": 8, "chunk": 4,
         "levels": [{"segments": 2, "tokens": 8}, {"segments": 3, "tokens": 8}], "suffix": 0},
        {"name": "empty", "batch": 2, "q_heads": 4, "kv_heads": 4, "head_dim": 8, "chunk": 4, "levels": [], "suffix": 0},
        {"name": "missing", "batch": 2, "q_heads": 4, "kv_heads": 4, "head_dim": 8, "levels": [], "suffix": 1},
        {"name": "float", "batch": 2.5, "q_heads": 4, "kv_heads": 4, "head_dim": 8, "chunk": 4, "levels": [], "suffix": 1},
        "not an object",
    ]}
    parsed = cases.parse_cases(doc)
    assert len(parsed) == 7
    assert all(case.error for case in parsed)
    assert "multiple of kv_heads" in parsed[0].error
    assert "batch 6" in parsed[1].error
    assert "refine" in parsed[2].error
    assert "no tokens" in parsed[3].error
    assert "chunk" in parsed[4].error
    assert "integer" in parsed[5].error
    assert parsed[6].name == "case6"
    # An error case still yields a row, with empty numbers and the error in the note.
    row = cases.make_row(parsed[0], "sdpa", CEILINGS, note="error: " + parsed[0].error)
    assert row["median_us"] == "" and row["floor_us"] == "" and "multiple" in row["note"]


@pytest.mark.parametrize("doc", [[], {"cases": []}, {"preset": "", "cases": []}, {"preset": "x", "cases": {}}])
def test_malformed_document_raises(doc):
    with pytest.raises(ValueError):
        cases.parse_cases(doc)


# ---------------------------------------------------------------------------------------------
# Row arithmetic
# ---------------------------------------------------------------------------------------------

def test_metrics_small_example():
    m = cases.case_metrics(small_case())
    assert m.shared_tokens == 16                       # 10 + 6
    assert m.sequence_tokens == 19                     # + suffix 3
    assert m.unique_kv_tokens == 10 + 2 * 6 + 4 * 3    # 34
    assert m.flops == 4 * 4 * 8 * 19 * 16              # 38912
    assert m.unique_bytes == 2 * 2 * 2 * 16 * 34 + 2 * 4 * 8 * 16 * 2  # 4352 KV + 2048 Q and O


def test_floor_takes_the_larger_bound():
    m = cases.case_metrics(small_case())
    # bytes 6400 at 1 GB/s = 6.4 µs; 38912 FLOPs at 1 GFLOP/s = 38.912 µs.
    assert cases.floor_us(m, CEILINGS) == pytest.approx(38.912)
    assert cases.floor_us(m, dict(CEILINGS, bf16_flops_per_s=1e12)) == pytest.approx(6.4)
    assert cases.floor_us(m, {}) is None


def test_floor_matches_the_anchor_numbers():
    # shared/ANCHORS.md: b32, 32/32 heads, d 128, 1024 tokens all shared: floor 5.7 µs on 3.02 TB/s, 765 TFLOP/s.
    case = small_case(batch=32, q_heads=32, kv_heads=32, head_dim=128, chunk=64, levels=[Level(1, 1024)], suffix=0)
    ceilings = {"hbm_bytes_per_s": 3.02e12, "bf16_flops_per_s": 765e12}
    assert cases.floor_us(cases.case_metrics(case), ceilings) == pytest.approx(5.73, abs=0.01)
    # b32, 32/32, 4096 tokens, none shared: 710 µs.
    case = small_case(batch=32, q_heads=32, kv_heads=32, head_dim=128, chunk=64, levels=[], suffix=4096)
    assert cases.floor_us(cases.case_metrics(case), ceilings) == pytest.approx(711.2, abs=0.5)


def test_percentiles():
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert cases.percentile(values, 0.5) == 3.0
    assert cases.percentile(values, 0.1) == pytest.approx(1.4)
    assert cases.percentile(values, 0.9) == pytest.approx(4.6)
    assert cases.percentile([7.0], 0.9) == 7.0
    assert cases.summarize(list(range(1, 21))) == (10.5, pytest.approx(2.9), pytest.approx(18.1))
    with pytest.raises(ValueError):
        cases.percentile([], 0.5)


def test_make_row_numbers():
    case = small_case()
    times = [40.0, 38.0, 42.0, 39.0, 41.0]             # median 40, p10 38.4, p90 41.6
    row = cases.make_row(case, "flashinfer-cascade", CEILINGS, times, graph=True, cold_l2=True, note="n")
    assert list(row) == COLUMNS
    assert row["median_us"] == "40.00" and row["p10_us"] == "38.40" and row["p90_us"] == "41.60"
    assert float(row["tflops"]) == pytest.approx(38912 / 40e-6 / 1e12, abs=1e-3)
    assert float(row["unique_kv_tbps"]) == pytest.approx(6400 / 40e-6 / 1e12, abs=1e-3)
    assert float(row["floor_us"]) == pytest.approx(38.912)
    assert float(row["x_floor"]) == pytest.approx(40 / 38.912, abs=1e-3)
    assert (row["shared_tokens"], row["suffix"], row["graph"], row["cold_l2"]) == ("16", "3", "yes", "yes")
    assert (row["card"], row["driver"], row["date"], row["commit"]) == ("Test Card", "580.1", "2026-11-24", "abc1234")


def test_failed_row_keeps_floor_and_empties_numbers():
    row = cases.make_row(small_case(), "sdpa", CEILINGS, cold_l2=False, note="error: boom")
    for key in ("median_us", "p10_us", "p90_us", "tflops", "unique_kv_tbps", "x_floor", "graph"):
        assert row[key] == ""
    assert float(row["floor_us"]) == pytest.approx(38.912)
    assert row["cold_l2"] == "no" and row["note"] == "error: boom"


def test_csv_header_once_and_quoting(tmp_path):
    path = str(tmp_path / "sub" / "out.csv")
    case = small_case()
    cases.append_rows(path, [cases.make_row(case, "sdpa", CEILINGS, [1.0] * 20, True, True, "a, b; \"c\"")])
    cases.append_rows(path, [cases.make_row(case, "flashinfer-decode", CEILINGS, note="error: x")])
    with open(path, newline="") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert sum(1 for line in lines if line.startswith("preset,")) == 1
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["impl"] for r in rows] == ["sdpa", "flashinfer-decode"]
    assert rows[0]["note"] == "a, b; \"c\""
    assert rows[1]["median_us"] == ""


def test_columns_match_the_cpp_tool():
    # tools/bench/bench_command.cpp writes the same header.
    assert ",".join(COLUMNS) == ("preset,case,impl,batch,q_heads,kv_heads,head_dim,chunk,shared_tokens,suffix,median_us,"
                                 "p10_us,p90_us,tflops,unique_kv_tbps,floor_us,x_floor,graph,cold_l2,card,driver,date,"
                                 "commit,note")


def test_impl_list_and_ceilings(tmp_path):
    assert baselines.parse_impls("sdpa, flashinfer-decode") == ["sdpa", "flashinfer-decode"]
    with pytest.raises(Exception):
        baselines.parse_impls("sdpa,flash")
    good = tmp_path / "c.json"
    good.write_text(json.dumps(CEILINGS))
    assert cases.load_ceilings(str(good))["card"] == "Test Card"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hbm_bytes_per_s": 0, "bf16_flops_per_s": 1}))
    with pytest.raises(ValueError):
        cases.load_ceilings(str(bad))


def test_main_argument_errors(tmp_path, capsys):
    cases_path = tmp_path / "cases.json"
    cases_path.write_text(json.dumps(BRIEF_EXAMPLE))
    out = str(tmp_path / "out.csv")
    assert baselines.main(["--cases", str(cases_path), "--ceilings", str(tmp_path / "missing.json"), "--out", out]) == 2
    with pytest.raises(SystemExit):
        baselines.main(["--cases", str(cases_path), "--ceilings", "x", "--out", out, "--repeats", "5"])
    assert not os.path.exists(out)


# ---------------------------------------------------------------------------------------------
# Data layouts on the CPU (torch needed; no GPU)
# ---------------------------------------------------------------------------------------------

@pytest.fixture
def cpu_torch(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(peers, "DEVICE", "cpu")
    return torch


LAYOUT_CASES = [
    # levels, suffix, page: page sizes that do and do not divide the segment lengths
    ([Level(1, 10), Level(2, 6)], 3, 4),
    ([Level(1, 16), Level(4, 8)], 0, 8),
    ([], 13, 4),
    ([Level(1, 0), Level(2, 5)], 7, 16),
    ([Level(1, 9), Level(2, 7), Level(4, 5)], 2, 3),
]


def paged_attention(torch, cache, q, qo_indptr, kv_indptr, kv_indices, last_len, scale, group):
    """float32 attention of q rows against the pages of their request, with natural-log LSE."""
    page = cache.shape[2]
    rows, heads, dim = q.shape
    out = torch.zeros(rows, heads, dim)
    lse = torch.full((rows, heads), -math.inf)
    for r in range(len(qo_indptr) - 1):
        pages = kv_indices[kv_indptr[r]:kv_indptr[r + 1]].long()
        if len(pages) == 0:
            continue
        length = (len(pages) - 1) * page + int(last_len[r])
        k = cache[pages, 0].reshape(-1, cache.shape[3], dim)[:length].float().repeat_interleave(group, dim=1)
        v = cache[pages, 1].reshape(-1, cache.shape[3], dim)[:length].float().repeat_interleave(group, dim=1)
        for i in range(int(qo_indptr[r]), int(qo_indptr[r + 1])):
            scores = torch.einsum("hd,lhd->hl", q[i].float(), k) * scale
            out[i] = torch.einsum("hl,lhd->hd", torch.softmax(scores, dim=-1), v)
            lse[i] = torch.logsumexp(scores, dim=-1)
    return out, lse


@pytest.mark.parametrize("levels,suffix,page", LAYOUT_CASES)
def test_layouts_match_reference(cpu_torch, levels, suffix, page):
    torch = cpu_torch
    case = small_case(levels=levels, suffix=suffix, chunk=page)
    assert cases.validate_case(case) is None
    data = peers.make_data(case, seed=3)
    seqs = list(range(case.batch))
    reference = peers.reference_outputs(data, seqs)
    group = case.q_heads // case.kv_heads

    # sdpa over per-sequence KV
    prepared = peers.prepare_sdpa(data)
    out = prepared.fn()
    assert tuple(out.shape) == (case.batch, case.q_heads, case.head_dim)
    peers.check_output(out, reference, "sdpa")

    # flashinfer-decode's pages: every sequence alone
    cache, indptr, indices, last = peers.build_decode_pages(data, page)
    out, _ = paged_attention(torch, cache, data.q, list(range(case.batch + 1)), indptr, indices, last, data.scale, group)
    peers.check_output(out, reference, "decode pages")
    assert torch.equal(indptr[1:] - indptr[:-1], torch.full((case.batch,), indptr[1].item(), dtype=torch.int32))

    # flashinfer-cascade's pages: shared segments once, one level per level with tokens (+ suffix)
    cache, qo, kv_indptr, kv_indices, last_len = peers.build_cascade_pages(data, page)
    expected_levels = len(case.active_levels) + (1 if suffix else 0)
    assert len(qo) == expected_levels
    unique_pages = sum(l.segments * -(-l.tokens // page) for l in case.active_levels) + case.batch * -(-suffix // page)
    assert cache.shape[0] == unique_pages
    outs, lses = [], []
    for level in range(expected_levels):
        assert int(qo[level][-1]) == case.batch
        o, l = paged_attention(torch, cache, data.q, qo[level], kv_indptr[level], kv_indices[level], last_len[level],
                               data.scale, group)
        outs.append(o)
        lses.append(l)
    lse = torch.stack(lses)                       # merge the levels' partial states
    weights = torch.softmax(lse, dim=0)[..., None]
    merged = (weights * torch.stack(outs)).sum(dim=0)
    peers.check_output(merged, reference, "cascade pages")

    # chunktree-paged's table: the cascade's pages listed per sequence (shared segments of whole pages)
    parts = [l.tokens for l in case.active_levels] + ([suffix] if suffix else [])
    if any(tokens % page for tokens in parts[:-1]):
        with pytest.raises(ValueError, match="whole pages"):
            peers.build_shared_pages(data, page)
        return
    cache, kv_indptr, kv_indices, last = peers.build_shared_pages(data, page)
    assert cache.shape[0] == unique_pages
    out, _ = paged_attention(torch, cache, data.q, list(range(case.batch + 1)), kv_indptr, kv_indices, last, data.scale, group)
    peers.check_output(out, reference, "shared flat pages")

    # chunktree-paged-hmd's pools: the same pages, each kv head's contiguous, seen in HND's shape
    pages, heads, dim = cache.shape[0], case.kv_heads, case.head_dim
    for i, pool in enumerate(peers.head_major_pools(cache)):
        assert torch.equal(pool, cache[:, i].transpose(1, 2))
        assert pool.stride() == (page * dim, pages * page * dim, dim, 1)


def test_check_output_catches_a_wrong_result(cpu_torch):
    case = small_case()
    data = peers.make_data(case, seed=1)
    reference = peers.reference_outputs(data, peers.check_sequences(case.batch))
    out = peers.prepare_sdpa(data).fn().clone()
    peers.check_output(out, reference, "ok")
    out[case.batch - 1, 0, 0] += 0.5
    with pytest.raises(AssertionError):
        peers.check_output(out, reference, "perturbed")
    out[case.batch - 1, 0, 0] = float("nan")
    with pytest.raises(AssertionError):
        peers.check_output(out, reference, "nan")


def test_data_is_random_not_zero(cpu_torch):
    data = peers.make_data(small_case(), seed=5)
    for _, k, v in data.levels:
        assert k.abs().sum() > 0 and v.abs().sum() > 0 and k.dtype == cpu_torch.bfloat16
    assert data.q.std() > 0.5


# ---------------------------------------------------------------------------------------------
# plot.py on a fake CSV (matplotlib needed)
# ---------------------------------------------------------------------------------------------

def test_plot_fake_csv(tmp_path):
    pytest.importorskip("matplotlib")
    import plot
    path = str(tmp_path / "fake.csv")
    rows = []
    for i, ns in enumerate([0, 512, 768, 1024]):
        case = small_case(preset="chunkattn-t3", name=f"np1024_ns{ns}", batch=32, q_heads=32, kv_heads=32, head_dim=128,
                          levels=[Level(1, ns)] if ns else [], suffix=1024 - ns)
        for j, impl in enumerate(["chunktree", "chunktree-noshare", "sdpa", "flashinfer-cascade"]):
            times = [100.0 / (j + 1) + i] * 20
            rows.append(cases.make_row(case, impl, CEILINGS, times, True, True, ""))
        rows.append(cases.make_row(case, "flashinfer-decode", CEILINGS, note="error: failed"))
    for name in ["a", "b"]:  # constant shared_tokens -> plotted against the case index
        case = small_case(preset="no share/x", name=name, levels=[], suffix=64)
        rows.append(cases.make_row(case, "sdpa", CEILINGS, [5.0] * 20, False, False, ""))
    cases.append_rows(path, rows)
    out_dir = str(tmp_path / "png")
    assert plot.main([path, "--out-dir", out_dir]) == 0
    names = sorted(os.listdir(out_dir))
    assert names == ["chunkattn-t3_latency.png", "chunkattn-t3_x_floor.png", "no_share_x_latency.png", "no_share_x_x_floor.png"]
    for name in names:
        with open(os.path.join(out_dir, name), "rb") as handle:
            assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    grouped = plot.group_rows(plot.read_rows([path]))
    case_names, grouped_cases, impls = grouped["chunkattn-t3"]
    assert impls == ["chunktree", "chunktree-noshare", "flashinfer-cascade", "flashinfer-decode", "sdpa"]
    xs, label, ticks, _ = plot.x_axis(case_names, grouped_cases)
    assert label == "shared tokens per sequence" and ticks is None and xs == [0, 512, 768, 1024]
    xs, label, ticks, _ = plot.x_axis(*grouped["no share/x"][:2])
    assert label == "case" and ticks == ["a", "b"]


def test_gzipped_csvs_read_as_the_plain_ones(tmp_path):
    """bench/plot.py's and targets.py's readers take a run's CSV gzipped (NAME.gz, as the older runs
    under docs/perf/ are kept) as they take it plain."""
    import gzip
    import plot
    import targets
    text = "preset,case,impl,median_us\nsmall,b1,chunktree,10.5\nsmall,b1,sdpa,12.0\n"
    plain, packed = tmp_path / "run.csv", tmp_path / "run.csv.gz"
    plain.write_text(text)
    with gzip.open(packed, "wt") as handle:
        handle.write(text)
    assert plot.read_rows([str(packed)]) == plot.read_rows([str(plain)])
    assert targets.read_keyed(str(packed), ["case", "impl"]) == targets.read_keyed(str(plain), ["case", "impl"])


def test_decode_loop_targets(tmp_path):
    """bench/targets.py's issue-9 lines from a decode loop's and host-bench's CSVs: chunktree's graph
    mode against the fastest FlashInfer wrapper (a failed peer row, with no number, is left out), its
    host share, and make_plan's time."""
    import targets
    loop, host = tmp_path / "decode_loop.csv", tmp_path / "host.csv"
    steps = {  # case: {impl: (us per step, host us per step)}
        "b64_p4k": {"chunktree-graph": (1000.0, 120.0), "flashinfer-cascade-graph": (3000.0, 900.0), "flashinfer-decode": (9000.0, 0.0)},
        "b256_p2k": {"chunktree-graph": (2000.0, 100.0), "flashinfer-cascade": (4000.0, 0.0), "flashinfer-cascade-graph": ("", "")},
        "b8_p1k": {"chunktree-graph": (700.0, 50.0), "flashinfer-decode-graph": (1400.0, 0.0), "sdpa": (600.0, 0.0)},
        "b8_p1k_distinct": {"chunktree-graph": (800.0, 50.0), "flashinfer-decode-graph": (1600.0, 0.0)},
    }
    with open(loop, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "impl", "us_per_step", "host_us_per_step"])
        for case, impls in steps.items():
            for impl, (us, host_us) in impls.items():
                writer.writerow([case, impl, us, host_us])
    with open(host, "w", newline="") as handle:
        csv.writer(handle).writerows([["case", "what", "median_us"], ["b1024_p2k", "make_plan", 48.0], ["b1024_p2k", "append_batch", 99.0]])
    lines = targets.decode_loop_lines(str(loop), str(host))
    assert len(lines) == 4
    assert "120.0 of 1000.0 µs (12.0 %" in lines[0] and lines[0].endswith("| no |")
    assert "48.0 µs" in lines[1] and lines[1].endswith("| yes |")
    assert "b64_p4k 3.00× (flashinfer-cascade-graph), b256_p2k 2.00× (flashinfer-cascade)" in lines[2] and lines[2].endswith("| no |")
    assert "b8_p1k 0.86× (sdpa), b8_p1k_distinct 2.00× (flashinfer-decode-graph)" in lines[3] and lines[3].endswith("| no |")
    # A cut decode loop (no b64_p4k rows) and no host-bench file: each target says what is missing.
    with open(loop, "w", newline="") as handle:
        csv.writer(handle).writerows([["case", "impl", "us_per_step", "host_us_per_step"], ["b256_p2k", "chunktree-graph", 2000.0, 100.0]])
    lines = targets.decode_loop_lines(str(loop), str(tmp_path / "absent.csv"))
    assert lines[0].endswith("| not measured: no chunktree-graph time for b64_p4k | no |")
    assert "not measured: no b1024_p2k make_plan in" in lines[1]
    assert "b64_p4k not measured: no chunktree-graph time for b64_p4k, b256_p2k not measured: no peer time" in lines[2]


def test_p1_names_the_rows_one_launch_bounds():
    """bench/targets.py's P1 line: with the run's launch time it names the chunkattn-t3 rows where
    one launch plus the floor is already above 1.15 × floor (floor < launch / 0.15), smallest floor
    first; without it, only the range."""
    import targets

    def row(floor, x):
        return {"floor_us": str(floor), "x_floor": str(x)}

    ours = {("chunkattn-t3", "big"): row(200.0, 1.10), ("chunkattn-t3", "near"): row(25.0, 1.30),
            ("chunkattn-t3", "tiny"): row(5.0, 3.00), ("small", "other"): row(1.0, 9.0)}
    line = targets.p1_line(ours, launch_us=3.6)
    assert "1.10–3.00 × floor" in line and line.endswith("| no |")
    assert "exceeds 1.15 × floor on 1 of 3: tiny ≥ 1.72 ×" in line  # near: 3.6 + 25 < 1.15 × 25
    assert "one launch" not in targets.p1_line(ours)
    met = {("chunkattn-t3", "big"): row(200.0, 1.10)}
    assert targets.p1_line(met, launch_us=3.6).endswith("exceeds 1.15 × floor on 0 of 1 | yes |")
    # A plain read of the bytes (hbm-read) slower than 1.15 × floor bounds the row too.
    reads = {("chunkattn-t3", "big"): 205.0, ("chunkattn-t3", "near"): 30.0, ("chunkattn-t3", "tiny"): 9.0}
    line = targets.p1_line(ours, reads=reads)
    assert "a plain read of the row's bytes (hbm-read, this run) exceeds 1.15 × floor on 2 of 3: tiny ≥ 1.80 ×, near ≥ 1.20 ×" in line


def test_targets_read_reference(tmp_path):
    """bench/targets.py --reads: a read reference CSV (bench --read-reference's hbm-read rows) gives P1
    its read bound and P5 the reads' times; an unreadable one is said in P1's line."""
    import targets
    columns = ["preset", "case", "impl", "median_us", "floor_us", "x_floor", "shared_tokens", "suffix"]

    def write(path, rows):
        with open(path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(dict(zip(columns, r)) for r in rows)

    ours, peers, reads = tmp_path / "chunktree.csv", tmp_path / "baselines.csv", tmp_path / "reads.csv"
    write(ours, [("chunkattn-t3", "np1", "chunktree", "20", "5", "4", "1024", "0"),
                 ("chunkattn-t3", "np0", "chunktree", "165", "150", "1.1", "0", "1024"),
                 ("hydragen-micro", "b4096_p8k_s0", "chunktree", "10", "9", "1.1", "8192", "0"),
                 ("spec-decode", "s", "chunktree", "10", "9", "1.1", "4096", "8"), ("no-share", "n", "chunktree", "10", "9", "1.1", "0", "1024"),
                 ("small", "b1", "chunktree", "11", "0.5", "22", "0", "512")])
    write(peers, [("spec-decode", "s", "flashinfer-cascade", "20", "9", "2.2", "4096", "8"), ("no-share", "n", "sdpa", "10", "9", "1.1", "0", "1024")])
    write(reads, [("chunkattn-t3", "np1", "hbm-read", "9", "5", "1.8", "1024", "0"), ("chunkattn-t3", "np0", "hbm-read", "160", "150", "1.07", "0", "1024"),
                  ("small", "b1", "hbm-read", "5.5", "0.5", "11", "0", "512")])
    lines = targets.main(str(ours), str(peers), 3.5, str(reads))
    p1 = next(line for line in lines if line.startswith("| P1 "))
    assert "one launch (3.50 µs, this run) + floor exceeds 1.15 × floor on 1 of 2: np1 ≥ 1.70 ×" in p1
    assert "a plain read of the row's bytes (hbm-read, this run) exceeds 1.15 × floor on 1 of 2: np1 ≥ 1.80 ×" in p1
    assert "a plain read of each row's bytes (hbm-read, this run) 5.5–5.5 µs" in next(line for line in lines if line.startswith("| P5 "))
    absent = targets.main(str(ours), str(peers), None, str(tmp_path / "absent.csv"))
    assert f"no read reference ({tmp_path / 'absent.csv'}: unreadable, or no hbm-read rows)" in next(line for line in absent if line.startswith("| P1 "))
    write(tmp_path / "other.csv", [("chunkattn-t3", "np1", "chunktree", "20", "5", "4", "1024", "0")])
    other = targets.main(str(ours), str(peers), None, str(tmp_path / "other.csv"))
    assert "no hbm-read rows" in next(line for line in other if line.startswith("| P1 "))


def test_choose_aot_dir(tmp_path):
    folder = tmp_path / "aot"
    folder.mkdir()
    assert peers.choose_aot_dir(str(folder), "0.6.8.post1", "0.1.15.post2", (9, 0))[0] is None  # no manifest
    (folder / "manifest.json").write_text(json.dumps({"flashinfer": "0.6.8.post1", "tvm_ffi": "0.1.15.post2",
                                                      "arch": "9.0a", "nvcc": "release 13.0", "built": "2026-11-24"}))
    chosen, why = peers.choose_aot_dir(str(folder), "0.6.8.post1", "0.1.15.post2", (9, 0))
    assert chosen == str(folder) and "13.0" in why
    assert peers.choose_aot_dir(str(folder), "0.6.9", "0.1.15.post2", (9, 0))[0] is None
    assert peers.choose_aot_dir(str(folder), "0.6.8.post1", "0.1.14", (9, 0))[0] is None
    assert peers.choose_aot_dir(str(folder), "0.6.8.post1", "0.1.15.post2", (10, 0))[0] is None
    assert peers.choose_aot_dir("none", "0.6.8.post1", "0.1.15.post2", (9, 0))[0] is None


class _FakeEvent:
    def __init__(self, enable_timing=False):
        self.t = None

    def record(self, stream=None):
        import time
        self.t = time.perf_counter()

    def elapsed_time(self, end):
        return (end.t - self.t) * 1e3


def test_run_all_control_flow_with_fake_cuda(cpu_torch, monkeypatch, tmp_path, capsys):
    """The whole run on the CPU with torch.cuda faked: rows for every (case, impl), sdpa timed eagerly
    after a failed graph capture, FlashInfer (absent, or unable to run on CPU tensors) reported in notes."""
    import types
    torch = cpu_torch
    fake_props = types.SimpleNamespace(name="Fake GPU", multi_processor_count=1, L2_cache_size=1 << 16)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda *a: fake_props)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: (9, 0))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "Event", _FakeEvent)

    def no_stream(*a, **k):
        raise RuntimeError("no CUDA streams in this test")
    monkeypatch.setattr(torch.cuda, "Stream", no_stream)
    monkeypatch.setattr(peers, "_FLASHINFER", None)
    monkeypatch.setattr(peers, "_FLASHINFER_ERROR", None)
    monkeypatch.setattr(peers, "_WORKSPACE", None)
    doc = {"preset": "fake", "cases": [
        {"name": "tree", "batch": 4, "q_heads": 4, "kv_heads": 2, "head_dim": 16, "chunk": 4,
         "levels": [{"segments": 1, "tokens": 9}, {"segments": 2, "tokens": 5}], "suffix": 3},
        {"name": "bad", "batch": 3, "q_heads": 4, "kv_heads": 2, "head_dim": 16, "chunk": 4,
         "levels": [{"segments": 2, "tokens": 5}], "suffix": 3},
    ]}
    cases_path = tmp_path / "cases.json"
    cases_path.write_text(json.dumps(doc))
    ceilings_path = tmp_path / "ceilings.json"
    ceilings_path.write_text(json.dumps(CEILINGS))
    out = tmp_path / "out.csv"
    argv = ["--cases", str(cases_path), "--ceilings", str(ceilings_path), "--out", str(out), "--repeats", "20",
            "--warmups", "5", "--flashinfer-aot", "none"]
    monkeypatch.setattr(peers, "prepare_environment", lambda: None)
    assert baselines.main(argv) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    impls = baselines.parse_impls(baselines.DEFAULT_IMPLS)
    assert [(r["case"], r["impl"]) for r in rows] == [(c, i) for c in ("tree", "bad") for i in impls]
    sdpa = rows[0]
    assert float(sdpa["median_us"]) > 0 and sdpa["graph"] == "no" and sdpa["cold_l2"] == "yes"
    assert "graph capture failed" in sdpa["note"] and "GQA via enable_gqa=True" in sdpa["note"]
    for row in rows[1:len(impls)]:  # FlashInfer and chunktree-paged cannot run here: a row with the error, no numbers
        assert row["median_us"] == "" and row["note"].startswith("error:") and row["floor_us"]
    for row in rows[len(impls):]:
        assert row["median_us"] == "" and "batch 3" in row["note"]
