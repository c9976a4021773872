"""The NPU execution model's counters per sparsity (device npu_sim): a first performance proxy.

For each requested sparsity the NPU op runs through the execution model (libblitz_npu_sim.so)
on a "random" sabi pattern, and the per-core counters of the launch are summed: GM <-> UB bytes
(vector cores), GM -> L1 and L0C -> GM bytes (cube cores: matmul operands and results), cube
FLOPs, vector element-operations, the load imbalance over vector cores (max / mean of their
element-operations) and the GM traffic per selected tile. These count work and data movement;
they predict neither time nor how well the pipes overlap.

    python -m bench.npu_sim_counts                 # the seed's B=1, H=3, D=128 at a feasible S
    python -m bench.npu_sim_counts --seq 16384 --sparsities 0.5,0.9
    python -m bench --device npu_sim               # the same at the bench's small shape

The model runs every vector instruction as a loop on the host, so the seed's S = 118806 (about
10^4 times the work of S = 1024 per head) is out of reach here; --seq picks the length.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Dict, List, Sequence

import numpy as np

SEED_SHAPE = {"batch": 1, "heads": 3, "seq": 118806, "head_dim": 128}
FEASIBLE_SEQ = 4096  # default --seq: a few seconds per sparsity on one 2-core machine
SPARSITIES = (0.0, 0.5, 0.7, 0.9)
BLOCK_SHAPE = (128, 512)
DTYPE = "bfloat16"
COLUMNS = ("sparsity", "tiles", "GM->UB MB", "UB->GM MB", "GM->L1 MB", "L0C->GM MB", "cube GFLOP",
           "vec Mop", "imbalance", "GM KB/tile", "s")


def counters(batch: int, heads: int, seq: int, head_dim: int, sparsity: float, seed: int = 0) -> Dict:
    """One launch through npu_sim; the summed counters, the imbalance and the tile count."""
    import blitz_acl
    from blitz_acl import sabi as tools
    from blitz_acl.arrays import numpy_dtype
    from blitz_acl.runtime import npu_sim

    rng = np.random.default_rng(seed)
    dt = numpy_dtype(DTYPE)
    q, k, v = (rng.standard_normal((batch, heads, seq, head_dim), dtype=np.float32).astype(dt) for _ in range(3))
    sabi = tools.random_pattern(batch, heads, seq, seq, sparsity, block_shape=BLOCK_SHAPE, seed=seed)
    tiles = int(((sabi.astype(np.int64) & 0xFFFF) != 0xFFFF).sum())  # -1 (int16) and 0xFFFF alike: no block
    started = time.perf_counter()
    blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=BLOCK_SHAPE, device="npu_sim")
    seconds = time.perf_counter() - started
    report = npu_sim.last_report()
    vec, cube = report["vector"], report["cube"]

    def total(cores, key):
        return sum(c[key] for c in cores)

    work = np.array([c["vector_elem_ops"] for c in vec], dtype=np.float64)
    gm_bytes = (total(vec, "gm_to_ub_bytes") + total(vec, "ub_to_gm_bytes") + total(cube, "gm_to_l1_bytes") +
                total(cube, "l0c_to_gm_bytes"))
    return {
        "sparsity": sparsity, "tiles": tiles, "block_dim": report["block_dim"], "vector_cores": len(vec),
        "gm_to_ub_bytes": total(vec, "gm_to_ub_bytes"), "ub_to_gm_bytes": total(vec, "ub_to_gm_bytes"),
        "gm_to_l1_bytes": total(cube, "gm_to_l1_bytes"), "l0c_to_gm_bytes": total(cube, "l0c_to_gm_bytes"),
        "cube_flops": total(cube, "cube_flops"), "vector_elem_ops": int(work.sum()),
        "imbalance": float(work.max() / work.mean()) if work.size and work.mean() > 0 else float("nan"),
        "gm_bytes_per_tile": gm_bytes / tiles if tiles else float("nan"), "seconds": seconds,
    }


def format_rows(rows: Sequence[Dict]) -> str:
    lines = ["  ".join(f"{c:>11}" for c in COLUMNS)]
    for r in rows:
        cells = (f"{r['sparsity']:.2f}", str(r["tiles"]), f"{r['gm_to_ub_bytes'] / 1e6:.2f}",
                 f"{r['ub_to_gm_bytes'] / 1e6:.2f}", f"{r['gm_to_l1_bytes'] / 1e6:.2f}",
                 f"{r['l0c_to_gm_bytes'] / 1e6:.2f}", f"{r['cube_flops'] / 1e9:.3f}",
                 f"{r['vector_elem_ops'] / 1e6:.1f}", f"{r['imbalance']:.3f}",
                 f"{r['gm_bytes_per_tile'] / 1e3:.1f}", f"{r['seconds']:.1f}")
        lines.append("  ".join(f"{c:>11}" for c in cells))
    return "\n".join(lines)


def sweep(batch: int, heads: int, seq: int, head_dim: int, sparsities: Sequence[float]) -> List[Dict]:
    return [counters(batch, heads, seq, head_dim, s) for s in sparsities]


def print_sweep(batch: int, heads: int, seq: int, head_dim: int, sparsities: Sequence[float]) -> List[Dict]:
    cores = os.environ.get("BLITZ_ACL_NPU_SIM_CORES", "48")
    print(f"npu_sim counters: B={batch} H={heads} S={seq} D={head_dim} {DTYPE}, block {BLOCK_SHAPE}, "
          f"random sabi, {cores} vector cores (BLITZ_ACL_NPU_SIM_CORES)")
    rows = sweep(batch, heads, seq, head_dim, sparsities)
    print(format_rows(rows))
    print("imbalance = max / mean vector element-ops over the vector cores launched; GM KB/tile = "
          "all GM traffic (UB and L1 sides) / selected tiles. Counts, not time: pipe overlap and "
          "bandwidth are not modelled.")
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.npu_sim_counts", description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=SEED_SHAPE["batch"])
    p.add_argument("--heads", type=int, default=SEED_SHAPE["heads"])
    p.add_argument("--seq", type=int, default=FEASIBLE_SEQ,
                   help=f"S (default {FEASIBLE_SEQ}; the seed's {SEED_SHAPE['seq']} is too slow for the model)")
    p.add_argument("--head-dim", type=int, default=SEED_SHAPE["head_dim"])
    p.add_argument("--sparsities", type=lambda t: tuple(float(x) for x in t.split(",")), default=SPARSITIES)
    a = p.parse_args(argv)
    print_sweep(a.batch, a.heads, a.seq, a.head_dim, a.sparsities)


if __name__ == "__main__":
    main()
