"""The PNG: speedup over Ref against sparsity, and time per selected tile.

Left panel: blitz_acl's and FlexAttention's speedup over the dense Ref, with the ideal
1/(1-s) and our own dense speedup scaled by 1/(1-s), all against the measured sparsity (what
the sabi actually skips). Right panel: time
per selected tile (latency / selected tiles), which stays flat when skipping costs nothing,
as a ratio to Ref's time per tile in the same row (the absolute medians are in the legend).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIGURE_SIZE = (12, 4.8)
DPI = 110
IDEAL_POINTS = 200
MAX_IDEAL_SPARSITY = 0.95  # 1/(1-s) runs away near 1: stop the curve a little past the data


def _series(rows, key):
    xs = np.array([r["measured_sparsity"] for r in rows], dtype=float)
    ys = np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
    return xs, ys


def write_png(path: Path, result: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    cfg = result["config"]
    fig, (ax_speed, ax_tile) = plt.subplots(1, 2, figsize=FIGURE_SIZE)

    xs, ours = _series(rows, "speedup_vs_ref")
    _, flex = _series(rows, "speedup_vs_ref_flex")
    top = min(max(float(np.nanmax(xs)) + 0.05, 0.5), MAX_IDEAL_SPARSITY)
    curve = np.linspace(0.0, top, IDEAL_POINTS)
    ax_speed.plot(curve, 1.0 / (1.0 - curve), "k--", label="ideal 1/(1-s)")
    if rows[0]["measured_sparsity"] == 0.0 and np.isfinite(ours[0]):
        # Our own dense speed scaled by 1/(1-s): where perfect skipping would put us.
        ax_speed.plot(curve, ours[0] / (1.0 - curve), ":", color="tab:red",
                      label=f"blitz_acl at s=0 ({ours[0]:.2f}x) x 1/(1-s)")
    ax_speed.plot(xs, ours, "o-", color="tab:red", label="blitz_acl")
    if np.isfinite(flex).any():
        ax_speed.plot(xs, flex, "s-", color="tab:blue", label="FlexAttention")
    ax_speed.axhline(1.0, color="grey", lw=0.8)
    ax_speed.set_xlabel("measured sparsity (share of token pairs skipped)")
    ax_speed.set_ylabel(f"speedup over {result['competitors']['ref']['label']}")
    ax_speed.set_title("speedup vs sparsity")
    ax_speed.grid(True, alpha=0.3)
    ax_speed.legend()

    # Per-tile times relative to Ref's time per (dense) tile in the same row: a ratio of two
    # times measured side by side, so a busy neighbour does not move the curve.
    _, ours_tile = _series(rows, "our_us_per_tile")
    _, flex_tile = _series(rows, "flex_us_per_tile")
    _, ref_tile = _series(rows, "ref_us_per_dense_tile")
    ax_tile.plot(xs, ours_tile / ref_tile, "o-", color="tab:red",
                 label=f"blitz_acl (median {np.nanmedian(ours_tile):.0f} usec/tile)")
    if np.isfinite(flex_tile).any():
        ax_tile.plot(xs, flex_tile / ref_tile, "s-", color="tab:blue",
                     label=f"FlexAttention (median {np.nanmedian(flex_tile):.0f} usec/tile)")
    ax_tile.axhline(1.0, color="k", ls=":", label=f"Ref, dense ({np.nanmedian(ref_tile):.0f} usec/tile)")
    ax_tile.set_xlabel("measured sparsity")
    bq, bkv = cfg["block_shape"]
    ax_tile.set_ylabel(f"time per selected {bq}x{bkv} tile / Ref's time per tile")
    ax_tile.set_ylim(bottom=0)
    ax_tile.set_title("time per selected tile (flat = skipping is free)")
    ax_tile.grid(True, alpha=0.3)
    ax_tile.legend()

    machine = result["machine"]
    fig.suptitle(
        f"blitz_acl {cfg['device']}  {cfg['dtype']}  pattern={cfg['pattern']}  "
        f"B={cfg['batch']} H={cfg['heads']} s_q={cfg['seq_q']} s_kv={cfg['seq_kv']} D={cfg['head_dim']}  "
        f"threads={machine['threads']}\n{machine['cpu_model']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
