"""The JSON file: every figure of the run, the configuration and the machine."""

from __future__ import annotations

import json
import math
from pathlib import Path

SCHEMA_VERSION = 1


def _clean(value):
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: Path, result: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = dict(result, schema_version=SCHEMA_VERSION)
    path.write_text(json.dumps(_clean(document), indent=2, allow_nan=False) + "\n")
    return path


def result_stem(cfg: dict) -> str:
    """A file name that says what ran: bench_cpu_frame_bfloat16_B1_H3_S8192x8192_D128."""
    return (
        f"bench_{cfg['device']}_{cfg['pattern']}_{cfg['dtype']}_B{cfg['batch']}_H{cfg['heads']}"
        f"_S{cfg['seq_q']}x{cfg['seq_kv']}_D{cfg['head_dim']}"
    )
