"""python -m bench.select_quality: select_blocks' recall and output error per method and mass.

On (a) the synthetic video token grid (blitz_acl.synthetic.video_grid: local 3-D windows, a few
sinks, noise) and (b) random inputs (i.i.d. N(0, 1)), for each method and mass threshold it
selects the tiles and reports, against dense float64 attention:
  kept      share of the (query, key) pairs inside the kept tiles (1 - the sparsity reached)
  recall    mean over query rows of the true softmax mass the kept tiles hold
  out_err   ||O_sparse - O_dense||_F / ||O_dense||_F, O_sparse = softmax restricted to the kept tiles
Both outputs are computed here in float64 from the dense attention's per-block masses and
partial outputs (the kernel's own rounding is not part of the figure).
Prints a markdown table (the README's) to stdout; --json writes every figure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

import blitz_acl
from blitz_acl import sabi as sabi_format, synthetic

METHODS = (("mean_pool", {}), ("mean_pool, no refinement", {"refine_below": 0.0}), ("antidiagonal", {}))
MASSES = (0.8, 0.9, 0.95)


def block_truth(q, k, v, block_shape):
    """Per (b, h): the true softmax mass of each key block for each query row, [Sq, C], and each
    block's share of the output, sum over its keys of p v, [Sq, C, D] (float64, dense, once)."""
    bq, bkv = block_shape
    d, skv = q.shape[-1], k.shape[2]
    cols = -(-skv // bkv)
    truth = {}
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            kb, vb = k[b, h].astype(np.float64), v[b, h].astype(np.float64)
            mass = np.zeros((q.shape[2], cols))
            part = np.zeros((q.shape[2], cols, d))
            for r0 in range(0, q.shape[2], bq):
                s = q[b, h, r0:r0 + bq].astype(np.float64) @ kb.T / np.sqrt(d)
                p = np.exp(s - s.max(1, keepdims=True))
                p /= p.sum(1, keepdims=True)
                for j in range(cols):
                    pj = p[:, j * bkv:(j + 1) * bkv]
                    mass[r0:r0 + bq, j] = pj.sum(1)
                    part[r0:r0 + bq, j] = pj @ vb[j * bkv:(j + 1) * bkv]
            truth[b, h] = (mass, part)
    return truth


def exact_quality(truth, sabi, seq_q, seq_kv, block_shape):
    """(kept pair share, mean recall, relative output error) of sabi against the dense truth."""
    bq, bkv = block_shape
    blocks = sabi_format.to_block_mask(sabi, seq_q, seq_kv, block_shape)  # [Bs, Ns, R, C]
    widths = np.minimum(bkv, seq_kv - np.arange(blocks.shape[-1]) * bkv)
    recall, err_sq, ref_sq, kept, rows = 0.0, 0.0, 0.0, 0.0, 0
    for (b, h), (mass, part) in truth.items():
        keep = np.repeat(blocks[min(b, blocks.shape[0] - 1), min(h, blocks.shape[1] - 1)], bq, axis=0)[:seq_q]
        inside = (mass * keep).sum(1)
        dense = part.sum(1)
        sparse = (part * keep[:, :, None]).sum(1) / np.maximum(inside, 1e-300)[:, None]
        recall += inside.sum()
        kept += (keep * widths).sum() / seq_kv
        err_sq += ((sparse - dense) ** 2).sum()
        ref_sq += (dense ** 2).sum()
        rows += seq_q
    return kept / rows, recall / rows, float(np.sqrt(err_sq / ref_sq))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.select_quality", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", default="8,32,32", help="frames,height,width of the video grid (default 8,32,32)")
    parser.add_argument("--heads", type=int, default=2)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--block", default="128,512", help="bq,bkv (default 128,512)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args(argv)
    frames, height, width = (int(x) for x in args.grid.split(","))
    block = tuple(int(x) for x in args.block.split(","))
    seq = frames * height * width
    inputs = {
        "video grid": synthetic.video_grid(frames, height, width, heads=args.heads, head_dim=args.head_dim,
                                           seed=args.seed),
        "random": synthetic.random_inputs(1, args.heads, seq, args.head_dim, seed=args.seed),
    }
    rows = []
    for name, (q, k, v) in inputs.items():
        truth = block_truth(q, k, v, block)
        for method_name, extra in METHODS:
            method = method_name.split(",")[0]
            for mass in MASSES:
                start = time.perf_counter()
                sabi = blitz_acl.select_blocks(q, k, block_shape=block, mass=mass, method=method, **extra)
                select_s = time.perf_counter() - start
                kept, recall, err = exact_quality(truth, sabi, seq, seq, block)
                rows.append(dict(input=name, method=method_name, mass=mass, kept=kept, sparsity=1 - kept,
                                 recall=recall, out_err=err, select_s=select_s))
                print(f"{name:10s} {method_name:25s} mass {mass:.2f}: kept {kept:.3f} recall {recall:.3f} "
                      f"err {err:.3f}", file=sys.stderr)
    print(f"B=1, N={args.heads}, S={seq} ({frames} x {height} x {width} grid), D={args.head_dim}, "
          f"tiles {block[0]} x {block[1]}, float32 inputs, seed {args.seed}\n")
    print("| input | method | mass | sparsity reached | recall | output error (rel. L2) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['input']} | {r['method']} | {r['mass']:.2f} | {r['sparsity']:.3f} | {r['recall']:.3f} | "
              f"{r['out_err']:.3f} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
