"""python -m bench.select_cost: select_blocks' time against the attention time it saves.

For each S (default 8192 and 32768) on the video grid generator (frames of 32 x 32 tokens), B=1,
N=--heads (default 3), D=128, bf16, 128 x 512 tiles, the CPU device's threads: times select_blocks (per method,
mass 0.9; antidiagonal also at stride 16), the dense attention (sabi None) and the attention with the selected sabi, interleaved
in one run, and prints the ratio select / (dense - sparse): the share of the saved attention
time the selection costs. Timings on a shared machine: read the ratios.
"""

from __future__ import annotations

import argparse
import sys

import ml_dtypes
import numpy as np

import blitz_acl
from blitz_acl import sabi as sabi_format, synthetic

from .machine import cpu_model
from .timing import measure_interleaved

BLOCK = (128, 512)
METHODS = (("mean_pool", "mean_pool", {}), ("antidiagonal", "antidiagonal", {}),
           ("antidiagonal, stride 16", "antidiagonal", {"stride": 16}))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.select_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--seqs", default="8192,32768")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mass", type=float, default=0.9)
    parser.add_argument("--heads", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"CPU: {cpu_model()}; B=1, N={args.heads}, D=128, bf16, tiles {BLOCK}, mass {args.mass}; medians of "
          f"{args.repeats}, interleaved\n")
    print("| S | method | kept tiles | select ms | dense attention ms | sparse attention ms | "
          "select / saved | select / dense |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for seq in (int(s) for s in args.seqs.split(",")):
        frames = seq // 1024
        q, k, v = (x.astype(ml_dtypes.bfloat16) for x in synthetic.video_grid(frames, 32, 32, heads=args.heads, head_dim=128))
        for label, method, extra in METHODS:
            sabi = blitz_acl.select_blocks(q, k, block_shape=BLOCK, mass=args.mass, method=method, **extra)
            fns = {
                "select": lambda: blitz_acl.select_blocks(q, k, block_shape=BLOCK, mass=args.mass, method=method,
                                                          **extra),
                "dense": lambda: blitz_acl.blitz_sparse_attention(q, k, v, None, block_shape=BLOCK),
                "sparse": lambda: blitz_acl.blitz_sparse_attention(q, k, v, sabi, block_shape=BLOCK),
            }
            t = measure_interleaved(fns, {name: 1 for name in fns}, args.repeats)
            sel, dense, sparse = (t[name].median_us / 1e3 for name in ("select", "dense", "sparse"))
            kept = sabi_format.density(sabi, seq, seq, BLOCK)
            print(f"| {seq} | {label} | {kept:.3f} | {sel:.1f} | {dense:.1f} | {sparse:.1f} | "
                  f"{sel / max(dense - sparse, 1e-9):.4f} | {sel / dense:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
