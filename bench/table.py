"""The printed table: the original kernel's columns in its order, then the columns we add.

The original (ops-transformer blitz_sparse_attention/benchmark) printed, under a '=' rule and a
header line naming DTYPE, INPUT_LAYOUT and ATTENTION_MATRIX:

    H   B    s_q   s_kv    D  sparsity  Outputs_equal Ref_Latency_[usec] Our_Latency_[usec]

We keep those nine columns and append ours after them, so a reader of the original finds the
same figures in the same places.
"""

from __future__ import annotations

import math
from typing import Callable, List, Sequence, Tuple

RULE_CHAR, SUBRULE_CHAR = "=", "-"
MISSING = "N/A"


def _num(fmt: str) -> Callable[[object], str]:
    def render(value) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        return format(value, fmt)

    return render


def _yes_no(value) -> str:
    return MISSING if value is None else ("yes" if value else "NO")


# (column header, key of the row dict, formatter): the original's nine first, in its order.
ORIGINAL_COLUMNS: Sequence[Tuple[str, str, Callable]] = (
    ("H", "H", str),
    ("B", "B", str),
    ("s_q", "s_q", str),
    ("s_kv", "s_kv", str),
    ("D", "D", str),
    ("sparsity", "sparsity", _num(".2f")),
    ("Outputs_equal", "outputs_equal", _yes_no),
    ("Ref_Latency_[usec]", "ref_latency_us", _num(".2f")),
    ("Our_Latency_[usec]", "our_latency_us", _num(".2f")),
)
EXTRA_COLUMNS: Sequence[Tuple[str, str, Callable]] = (
    ("Measured_sparsity", "measured_sparsity", _num(".3f")),
    ("Speedup_vs_Ref", "speedup_vs_ref", _num(".2f")),
    ("Ideal_1/(1-s)", "ideal_speedup", _num(".2f")),
    ("Flex_Latency_[usec]", "flex_latency_us", _num(".2f")),
    ("Speedup_vs_Flex", "speedup_vs_flex", _num(".2f")),
    ("Our_TFLOP/s", "our_tflops", _num(".3f")),
    ("Max_abs_err", "max_abs_err", _num(".2e")),
)
COLUMNS = tuple(ORIGINAL_COLUMNS) + tuple(EXTRA_COLUMNS)
COLUMN_HEADERS = tuple(header for header, _, _ in COLUMNS)
COLUMN_GAP = 2


def _widths(rows: Sequence[dict]) -> List[int]:
    widths = []
    for header, key, render in COLUMNS:
        cells = [render(row.get(key)) for row in rows]
        widths.append(max([len(header)] + [len(c) for c in cells]))
    return widths


def format_header_row(widths: Sequence[int]) -> str:
    gap = " " * COLUMN_GAP
    return gap + gap.join(h.rjust(w) for (h, _, _), w in zip(COLUMNS, widths))


def format_row(row: dict, widths: Sequence[int]) -> str:
    gap = " " * COLUMN_GAP
    return gap + gap.join(render(row.get(key)).rjust(w) for (_, key, render), w in zip(COLUMNS, widths))


def format_table(title_lines: Sequence[str], rows: Sequence[dict], notes: Sequence[str]) -> str:
    widths = _widths(rows)
    header = format_header_row(widths)
    rule = RULE_CHAR * len(header)
    lines = [rule]
    lines += ["  " + line for line in title_lines]
    lines += [rule, header, SUBRULE_CHAR * len(header)]
    lines += [format_row(row, widths) for row in rows]
    lines.append(rule)
    lines += ["  " + note for note in notes]
    return "\n".join(lines)
