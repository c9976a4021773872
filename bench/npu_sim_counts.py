"""The NPU execution model's counters per sparsity (device npu_sim): a first performance proxy.

For each requested sparsity the NPU op runs through the execution model (libblitz_npu_sim.so) on
a "random" sabi pattern and the per-core counters of the launch are summed: bytes GM <-> UB
(vector cores) and GM -> L1 / L0C -> GM (cube cores: matmul operands and results), copy
instructions, matmul calls, cube FLOPs, vector instructions / repeats / elements, flag events,
the load imbalance over vector cores (max / mean of their vector element-operations) and the GM
traffic per selected tile. The tile traffic is then checked against the tiling's plan: what the
kernel's loop must move for the selected tiles, computed here from sabi and the plan's blocking.
These count work and data movement; they predict neither time nor how well the pipes overlap.

    python -m bench.npu_sim_counts                  # the seed's B=1 H=3 S=118806 D=128, counting only
    python -m bench.npu_sim_counts --seq 8192 --sparsities 0.5,0.9
    python -m bench.npu_sim_counts --seq 2048 --numeric   # computing too (small S only)
    python -m bench --device npu_sim                # numeric, at the bench's small shape

Counting-only mode (npu_sim.count_only): every rule of the model is checked and every counter
counted, but no arithmetic runs and no output exists, which is what makes S = 118806 feasible
(the numeric model interprets every vector instruction and multiplies every matmul on the host).
tests/test_npu_sim.py shows counting-only counters equal numeric ones exactly at small shapes.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Dict, List, Sequence

import numpy as np

SEED_SHAPE = {"batch": 1, "heads": 3, "seq": 118806, "head_dim": 128}
SPARSITIES = (0.0, 0.5, 0.7, 0.9)
BLOCK_SHAPE = (128, 512)
DTYPE = "bfloat16"
FLOAT_BYTES = 4
COLUMNS = ("sparsity", "tiles", "GM->UB MB", "UB->GM MB", "GM->L1 MB", "L0C->GM MB", "cube GFLOP", "matmuls",
           "vec Minstr", "vec Mrep", "Mflags", "imbalance", "GM KB/tile", "plan", "s")


def _sabi_tiles(sabi: np.ndarray, seq_q: int, seq_kv: int, block_shape) -> tuple:
    """(rows, keys) of every selected tile as two int64 arrays: the query block's and the key
    block's valid sizes."""
    bq, bkv = block_shape
    kv_blocks = -(-seq_kv // bkv)
    entries = sabi.astype(np.int64) & 0xFFFF
    selected = (entries != 0xFFFF) & (entries < kv_blocks)
    block_rows = np.minimum(bq, seq_q - bq * np.arange(entries.shape[2], dtype=np.int64))
    rows = np.broadcast_to(block_rows[None, None, :, None], entries.shape)[selected]
    keys = np.minimum(bkv, seq_kv - bkv * entries[selected])
    return rows, keys


def plan_traffic(tiles: tuple, plan: Dict, batch: int, heads: int, seq_q: int, return_lse: bool) -> Dict:
    """What the kernel's loop must move for these tiles with the tiling's blocking (the
    ComputeGroup loop of op_kernel/blitz_attention_kernel.h), summed over each tile's
    G = ceil(rows / group_rows) row groups of m rows (sum of m = rows):
      qk:  Q rows [m, D] and the K block [keys, D] to L1, the float scores [m, keys] out of L0C;
      vec: the scores in (rows padded to 32 keys), the probabilities out in the input dtype,
           the float P*V tile [m, D] in;
      pv:  P [m, keys] and the V block [keys, D] to L1, the float P*V tile out of L0C;
    plus every output row once (and its lse). The sabi scan of the device split is extra."""
    rows, keys = (np.asarray(t, dtype=np.int64) for t in tiles)
    d, g, es = plan["head_dim"], plan["group_rows"], plan["dtype_size"]
    groups = -(-rows // g)
    aligned = -(-keys // 32) * 32

    def total(x) -> int:
        return int(np.sum(x, dtype=np.int64))

    out = {
        "gm_to_l1_bytes": total(es * (rows * d + groups * keys * d) + es * (rows * keys + groups * keys * d)),
        "l0c_to_gm_bytes": total(FLOAT_BYTES * (rows * keys + rows * d)),
        "tile_gm_to_ub_bytes": total(FLOAT_BYTES * (rows * aligned + rows * d)),
        "ub_to_gm_bytes": total(es * rows * aligned),
        "matmul_calls": total(2 * groups),
    }
    out["ub_to_gm_bytes"] += batch * heads * seq_q * d * es + (batch * heads * seq_q * FLOAT_BYTES if return_lse else 0)
    return out


def counters(batch: int, heads: int, seq: int, head_dim: int, sparsity: float, seed: int = 0,
             counting: bool = True) -> Dict:
    """One launch through npu_sim: the summed counters, the imbalance, the tile count and the
    comparison with plan_traffic."""
    import blitz_acl
    from blitz_acl import sabi as tools
    from blitz_acl.arrays import numpy_dtype
    from blitz_acl.devices import npu_sim

    dt = numpy_dtype(DTYPE)
    shape = (batch, heads, seq, head_dim)
    if counting:  # the model never reads q / k / v without arithmetic: their values do not matter
        q, k, v = (np.zeros(shape, dtype=dt) for _ in range(3))
    else:
        rng = np.random.default_rng(seed)
        q, k, v = (rng.standard_normal(shape, dtype=np.float32).astype(dt) for _ in range(3))
    sabi = tools.random_pattern(batch, heads, seq, seq, sparsity, block_shape=BLOCK_SHAPE, seed=seed)
    tiles = _sabi_tiles(sabi, seq, seq, BLOCK_SHAPE)
    started = time.perf_counter()
    if counting:
        report = npu_sim.count_only(q, k, v, sabi, block_shape=BLOCK_SHAPE)
    else:
        blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=BLOCK_SHAPE, device="npu_sim")
        report = npu_sim.last_report()
    seconds = time.perf_counter() - started
    vec, cube = report["vector"], report["cube"]
    names = list(report["counters"])
    total = {name: sum(c[name] for c in vec + cube) for name in names}
    work = np.array([c["vector_elem_ops"] for c in vec], dtype=np.float64)
    gm_bytes = total["gm_to_ub_bytes"] + total["ub_to_gm_bytes"] + total["gm_to_l1_bytes"] + total["l0c_to_gm_bytes"]
    plan = plan_traffic(tiles, report["plan"], batch, heads, seq, return_lse=False)
    exact = all(total[key] == plan[key] for key in ("gm_to_l1_bytes", "l0c_to_gm_bytes", "ub_to_gm_bytes",
                                                    "matmul_calls"))
    return {
        **total, "sparsity": sparsity, "tiles": int(tiles[0].size), "block_dim": report["block_dim"], "vector_cores": len(vec),
        "counting_only": report["counting_only"], "plan": report["plan"], "planned": plan,
        "plan_exact": exact, "scan_gm_to_ub_bytes": total["gm_to_ub_bytes"] - plan["tile_gm_to_ub_bytes"],
        "imbalance": float(work.max() / work.mean()) if work.size and work.mean() > 0 else float("nan"),
        "gm_bytes_per_tile": gm_bytes / tiles[0].size if tiles[0].size else float("nan"), "seconds": seconds,
    }


def format_header() -> str:
    return "  ".join(f"{c:>10}" for c in COLUMNS)


def format_row(r: Dict) -> str:
    cells = (f"{r['sparsity']:.2f}", str(r["tiles"]), f"{r['gm_to_ub_bytes'] / 1e6:.1f}",
             f"{r['ub_to_gm_bytes'] / 1e6:.1f}", f"{r['gm_to_l1_bytes'] / 1e6:.1f}",
             f"{r['l0c_to_gm_bytes'] / 1e6:.1f}", f"{r['cube_flops'] / 1e9:.1f}", str(r["matmul_calls"]),
             f"{r['vector_instrs'] / 1e6:.2f}", f"{r['vector_repeats'] / 1e6:.1f}",
             f"{(r['set_flags'] + r['wait_flags']) / 1e6:.2f}", f"{r['imbalance']:.3f}",
             f"{r['gm_bytes_per_tile'] / 1e3:.1f}", "exact" if r["plan_exact"] else "DIFFERS", f"{r['seconds']:.1f}")
    return "  ".join(f"{c:>10}" for c in cells)


def format_rows(rows: Sequence[Dict]) -> str:
    return "\n".join([format_header()] + [format_row(r) for r in rows])


def describe_plan(rows: Sequence[Dict]) -> str:
    """Per-tile figures of the tiling's plan and what the sabi scan adds, from the first row."""
    r = rows[0]
    p = r["plan"]
    d, g, es, bkv = p["head_dim"], p["group_rows"], p["dtype_size"], p["block_kv"]
    full = plan_traffic(([p["block_q"]], [bkv]), p, 0, 0, 0, False)
    lines = [f"plan: group_rows {g}, slice_rows {p['slice_rows']}, {p['workers']} workers, {p['tasks']} tasks, "
             f"UB {p['ub_total_bytes']} B, workspace {p['ws_worker_bytes']} B per worker",
             f"a full {p['block_q']}x{bkv} tile moves {sum(v for k, v in full.items() if k != 'matmul_calls') / 1e3:.1f} KB: "
             f"L1 {full['gm_to_l1_bytes'] / 1e3:.1f} KB (Q, K, P, V), L0C->GM {full['l0c_to_gm_bytes'] / 1e3:.1f} KB "
             f"(S, PV), GM->UB {full['tile_gm_to_ub_bytes'] / 1e3:.1f} KB (S, PV), UB->GM "
             f"{full['ub_to_gm_bytes'] / 1e3:.1f} KB (P); workspace round trips: S {g * bkv * FLOAT_BYTES / 1e3:.1f} KB "
             f"x2, P {g * bkv * es / 1e3:.1f} KB x2, PV {g * d * FLOAT_BYTES / 1e3:.1f} KB x2 per group"]
    for row in rows:
        lines.append(f"  sparsity {row['sparsity']:.2f}: GM->L1, L0C->GM, UB->GM and matmul calls "
                     f"{'equal the plan exactly' if row['plan_exact'] else 'DIFFER from the plan'}; GM->UB beyond "
                     f"the tiles (the device split's sabi scan) {row['scan_gm_to_ub_bytes'] / 1e6:.2f} MB")
    return "\n".join(lines)


def sweep(batch: int, heads: int, seq: int, head_dim: int, sparsities: Sequence[float],
          counting: bool = True) -> List[Dict]:
    return [counters(batch, heads, seq, head_dim, s, counting=counting) for s in sparsities]


def print_sweep(batch: int, heads: int, seq: int, head_dim: int, sparsities: Sequence[float],
                counting: bool = False) -> List[Dict]:
    cores = os.environ.get("BLITZ_ACL_NPU_SIM_CORES", "48")
    mode = "counting only (no arithmetic, no outputs)" if counting else "numeric"
    print(f"npu_sim counters, {mode}: B={batch} H={heads} S={seq} D={head_dim} {DTYPE}, block {BLOCK_SHAPE}, "
          f"random sabi, {cores} vector cores (BLITZ_ACL_NPU_SIM_CORES)", flush=True)
    print(format_header(), flush=True)
    rows = []
    for sparsity in sparsities:  # each row as soon as it is counted (the seed's S takes minutes)
        rows.append(counters(batch, heads, seq, head_dim, sparsity, counting=counting))
        print(format_row(rows[-1]), flush=True)
    print(describe_plan(rows))
    print("matmuls = IterateAll calls; vec Minstr / Mrep = vector instructions / 256-byte repeats (millions); "
          "Mflags = SetFlag + WaitFlag events, queues' included (millions); imbalance = max / mean vector "
          "element-ops over the vector cores; GM KB/tile = all GM traffic (UB and L1 sides) / selected tiles; "
          "plan = GM->L1, L0C->GM, UB->GM and matmul calls vs the tiling's plan. Counts, not time: pipe "
          "overlap and bandwidth are not modelled.")
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.npu_sim_counts", description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=SEED_SHAPE["batch"])
    p.add_argument("--heads", type=int, default=SEED_SHAPE["heads"])
    p.add_argument("--seq", type=int, default=SEED_SHAPE["seq"], help=f"S (default the seed's {SEED_SHAPE['seq']})")
    p.add_argument("--head-dim", type=int, default=SEED_SHAPE["head_dim"])
    p.add_argument("--sparsities", type=lambda t: tuple(float(x) for x in t.split(",")), default=SPARSITIES)
    p.add_argument("--numeric", action="store_true",
                   help="compute too (minutes per sparsity already at S = 4096); default: counting only")
    a = p.parse_args(argv)
    print_sweep(a.batch, a.heads, a.seq, a.head_dim, a.sparsities, counting=not a.numeric)


if __name__ == "__main__":
    main()
