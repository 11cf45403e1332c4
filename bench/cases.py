"""A benchmark case and its CSV row, in pure Python: the contract between `chunktree bench` (which
writes the cases and reads back the same columns), bench/baselines.py, report.py, targets.py and
plot.py. Cases are parsed and checked here; a row's floor, rates and percentiles are computed here.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

COLUMNS = [
    "preset", "case", "impl", "batch", "q_heads", "kv_heads", "head_dim", "chunk", "shared_tokens", "suffix",
    "median_us", "p10_us", "p90_us", "tflops", "unique_kv_tbps", "floor_us", "x_floor", "graph", "cold_l2",
    "card", "driver", "date", "commit", "note",
]
BF16_BYTES = 2


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------

class CaseError(ValueError):
    """A case that cannot be run as described."""


@dataclass(frozen=True)
class Level:
    segments: int
    tokens: int


@dataclass
class Case:
    preset: str
    name: str
    batch: int
    q_heads: int
    kv_heads: int
    head_dim: int
    chunk: int
    levels: List[Level]
    suffix: int
    queries: int = 1  # query tokens per sequence: the last `queries` tokens of the suffix, causal
    error: Optional[str] = None  # set when the case is malformed: its rows carry the error

    @property
    def active_levels(self) -> List[Level]:
        """The levels that hold tokens (levels of 0 tokens are dropped)."""
        return [level for level in self.levels if level.tokens > 0]


def _int_field(obj: dict, key: str, where: str, minimum: int) -> int:
    if key not in obj:
        raise CaseError(f"{where}: missing '{key}'")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise CaseError(f"{where}: '{key}' must be an integer, got {value!r}")
    if value < minimum:
        raise CaseError(f"{where}: '{key}' must be >= {minimum}, got {value}")
    return value


def validate_case(case: Case) -> None:
    """Raises CaseError when the case breaks the rules of the cases file."""
    where = f"case '{case.name}'"
    if case.q_heads % case.kv_heads:
        raise CaseError(f"{where}: q_heads {case.q_heads} is not a multiple of kv_heads {case.kv_heads}")
    previous = 1
    for i, level in enumerate(case.active_levels):
        if case.batch % level.segments:
            raise CaseError(f"{where}: batch {case.batch} is not a multiple of level {i}'s {level.segments} segments")
        if level.segments % previous:
            raise CaseError(f"{where}: level {i}'s {level.segments} segments do not refine the previous level's {previous}")
        previous = level.segments
    if sum(level.tokens for level in case.levels) + case.suffix <= 0:
        raise CaseError(f"{where}: no tokens at all (no shared tokens and suffix 0)")
    if case.queries > 1 and case.suffix < case.queries:
        raise CaseError(f"{where}: {case.queries} query tokens need a suffix of at least {case.queries} tokens, got {case.suffix}")


def parse_case(preset: str, obj: object, index: int) -> Case:
    """One entry of "cases"; a malformed entry comes back with .error set (its rows report it)."""
    name = obj.get("name") if isinstance(obj, dict) and isinstance(obj.get("name"), str) else f"case{index}"
    try:
        if not isinstance(obj, dict):
            raise CaseError(f"case {index}: not an object")
        where = f"case '{name}'"
        levels_obj = obj.get("levels")
        if not isinstance(levels_obj, list):
            raise CaseError(f"{where}: 'levels' must be a list")
        levels = []
        for i, level in enumerate(levels_obj):
            if not isinstance(level, dict):
                raise CaseError(f"{where}: level {i} is not an object")
            levels.append(Level(_int_field(level, "segments", f"{where} level {i}", 1),
                                _int_field(level, "tokens", f"{where} level {i}", 0)))
        case = Case(
            preset=preset,
            name=name,
            batch=_int_field(obj, "batch", where, 1),
            q_heads=_int_field(obj, "q_heads", where, 1),
            kv_heads=_int_field(obj, "kv_heads", where, 1),
            head_dim=_int_field(obj, "head_dim", where, 1),
            chunk=_int_field(obj, "chunk", where, 1),
            levels=levels,
            suffix=_int_field(obj, "suffix", where, 0),
            queries=_int_field(obj, "queries", where, 1) if "queries" in obj else 1,
        )
        validate_case(case)
        return case
    except CaseError as error:
        def field_or_zero(key):
            value = obj.get(key) if isinstance(obj, dict) else None
            return value if isinstance(value, int) and not isinstance(value, bool) else 0
        return Case(preset=preset, name=name, batch=field_or_zero("batch"), q_heads=field_or_zero("q_heads"),
                    kv_heads=field_or_zero("kv_heads"), head_dim=field_or_zero("head_dim"), chunk=field_or_zero("chunk"),
                    levels=[], suffix=field_or_zero("suffix"), error=str(error))


def parse_cases(doc: object, source: str = "<cases>") -> List[Case]:
    """{"preset": str, "cases": [...]} -> cases. A malformed document raises ValueError."""
    if not isinstance(doc, dict):
        raise ValueError(f"{source}: top level must be an object")
    preset = doc.get("preset")
    if not isinstance(preset, str) or not preset:
        raise ValueError(f"{source}: 'preset' must be a non-empty string")
    cases = doc.get("cases")
    if not isinstance(cases, list):
        raise ValueError(f"{source}: 'cases' must be a list")
    return [parse_case(preset, obj, i) for i, obj in enumerate(cases)]


def load_cases(path: str) -> List[Case]:
    with open(path) as handle:
        doc = json.load(handle)
    return parse_cases(doc, path)


# ----------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Metrics:
    shared_tokens: int      # Σ level tokens: what one sequence reads from shared levels
    sequence_tokens: int    # shared_tokens + suffix
    unique_kv_tokens: int   # Σ segments·tokens + batch·suffix: KV stored once
    flops: float            # 4 · batch · q_heads · d · Σ over query tokens of the positions each sees
    unique_bytes: float     # K and V of the unique tokens plus Q and O of every query token, bf16


def case_metrics(case: Case) -> Metrics:
    shared = sum(level.tokens for level in case.levels)
    sequence = shared + case.suffix
    unique = sum(level.segments * level.tokens for level in case.levels) + case.batch * case.suffix
    n = case.queries
    seen = n * (sequence - n) + n * (n + 1) / 2  # query i sees sequence - n + i + 1 positions
    flops = 4.0 * case.batch * case.q_heads * seen * case.head_dim
    kv_bytes = 2.0 * BF16_BYTES * case.kv_heads * case.head_dim * unique
    q_and_o_bytes = BF16_BYTES * case.batch * n * case.q_heads * case.head_dim * 2.0
    return Metrics(shared, sequence, unique, flops, kv_bytes + q_and_o_bytes)


def floor_us(metrics: Metrics, ceilings: dict) -> Optional[float]:
    """max(unique bytes / HBM bandwidth, FLOPs / bf16 tensor rate) in µs; None without ceilings."""
    hbm = float(ceilings.get("hbm_bytes_per_s") or 0)
    tensor = float(ceilings.get("bf16_flops_per_s") or 0)
    if hbm <= 0 or tensor <= 0:
        return None
    return max(metrics.unique_bytes / hbm, metrics.flops / tensor) * 1e6


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), q in [0, 1]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(times_us: Sequence[float]) -> Tuple[float, float, float]:
    return percentile(times_us, 0.5), percentile(times_us, 0.1), percentile(times_us, 0.9)


def _fmt(value: Optional[float], digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def make_row(case: Case, impl: str, ceilings: dict, times_us: Optional[Sequence[float]] = None,
             graph: Optional[bool] = None, cold_l2: bool = True, note: str = "") -> Dict[str, str]:
    """One CSV row. Without times (a failed or skipped run) the timing numbers stay empty;
    floor_us, a property of the case and the card, is still filled in."""
    m = case_metrics(case)
    floor = floor_us(m, ceilings) if case.error is None else None
    median = p10 = p90 = tflops = tbps = x_floor = None
    if times_us:
        median, p10, p90 = summarize(times_us)
        seconds = median * 1e-6
        tflops = m.flops / seconds / 1e12
        tbps = m.unique_bytes / seconds / 1e12
        x_floor = median / floor if floor else None
    return {
        "preset": case.preset,
        "case": case.name,
        "impl": impl,
        "batch": str(case.batch),
        "q_heads": str(case.q_heads),
        "kv_heads": str(case.kv_heads),
        "head_dim": str(case.head_dim),
        "chunk": str(case.chunk),
        "shared_tokens": str(m.shared_tokens),
        "suffix": str(case.suffix),
        "median_us": _fmt(median, 2),
        "p10_us": _fmt(p10, 2),
        "p90_us": _fmt(p90, 2),
        "tflops": _fmt(tflops, 3),
        "unique_kv_tbps": _fmt(tbps, 3),
        "floor_us": _fmt(floor, 3),
        "x_floor": _fmt(x_floor, 3),
        "graph": "" if graph is None else ("yes" if graph else "no"),
        "cold_l2": "yes" if cold_l2 else "no",
        "card": str(ceilings.get("card", "")),
        "driver": str(ceilings.get("driver", "")),
        "date": str(ceilings.get("date", "")),
        "commit": str(ceilings.get("commit", "")),
        "note": note,
    }


def append_rows(path: str, rows: Sequence[Dict[str, str]]) -> None:
    """Appends rows to the CSV, writing the header first when the file is new or empty."""
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
        if new:
            writer.writeheader()
        for row in rows:
            writer.writerow(row)


def load_ceilings(path: str) -> dict:
    with open(path) as handle:
        ceilings = json.load(handle)
    if not isinstance(ceilings, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    for key in ("hbm_bytes_per_s", "bf16_flops_per_s"):
        value = ceilings.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{path}: '{key}' must be a positive number, got {value!r}")
    return ceilings


def short_error(error: BaseException, limit: int = 300) -> str:
    """An error as one line of a row's note."""
    text = f"{type(error).__name__}: {error}".replace("\n", " ").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."
