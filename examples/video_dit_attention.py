"""A small video-DiT attention block end to end: dense SDPA vs blitz_acl block-sparse attention.

    python examples/video_dit_attention.py            # about 40 s on 2 very busy cores

The tokens are a video latent's patches, F frames of H x W, flattened frame by frame (as video
DiTs do). Their features are a smooth random field over (frame, row, column) plus noise, so a
token resembles its neighbours in space and time, and the block's query and key projections are
tied so that alike tokens attend to each other: attention that is mostly local, as in trained
video DiTs. The block (LayerNorm, qkv projection, attention, output projection, residual) runs
four ways on the same weights:

    dense SDPA              torch.nn.functional.scaled_dot_product_attention
    blitz_acl, every tile   blitz_acl.torch.sparse_sdpa with no sabi (SDPA's result)
    frame window            sparse_sdpa over a fixed local window: each query block keeps the key
                            blocks within --window frames of its own, plus key block 0
    select_blocks           sparse_sdpa(select=...): the tiles chosen from q and k at every call by
                            blitz_acl.select_blocks (--method, --mass), the choice timed with it

and prints the time per call (median of --repeats, after a warm-up) and each output's error
against dense attention in float32. With --compile the sparse block also runs under
torch.compile(fullgraph=True), to show that a model using sparse_sdpa compiles unchanged.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time

import numpy as np
import torch

import blitz_acl
from blitz_acl import sabi as S
from blitz_acl.torch import DEFAULT_BLOCK_SHAPE, sparse_sdpa


def video_tokens(frames: int, height: int, width: int, dim: int, seed: int) -> torch.Tensor:
    """[1, F*H*W, dim]: a smooth random field over (frame, row, column) plus noise, unit scale."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.meshgrid(torch.arange(frames), torch.arange(height), torch.arange(width), indexing="ij")
    pos = torch.stack([axis.flatten().float() for axis in grid], dim=-1)  # [S, 3] in patch units
    # wavelengths of a few patches to a few frames: near tokens alike, far ones unrelated
    freqs = torch.randn(3, dim // 2, generator=g) * torch.tensor([1.2, 0.25, 0.25])[:, None]
    phase = pos @ freqs + 2 * math.pi * torch.rand(dim // 2, generator=g)
    field = torch.cat([phase.sin(), phase.cos()], dim=-1)
    return (field + 0.3 * torch.randn(field.shape, generator=g))[None]


class AttentionBlock(torch.nn.Module):
    """x + proj(attention(q, k, v)) with q, k, v = qkv(LayerNorm(x)), heads of size dim / heads."""

    def __init__(self, dim: int, heads: int, attention, seed: int, sharpness: float):
        super().__init__()
        self.heads, self.attention = heads, attention
        self.norm = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim, bias=False)
        self.proj = torch.nn.Linear(dim, dim)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            w = torch.randn(dim, dim, generator=g) * (sharpness / math.sqrt(dim))
            # tied query and key projections: q . k is large for alike tokens
            self.qkv.weight.copy_(torch.cat([w, w, torch.randn(dim, dim, generator=g) / math.sqrt(dim)]))

    def heads_qkv(self, x):
        """q, k, v as (B, N, S, dim / N) views of one projection."""
        b, s, dim = x.shape
        return self.qkv(self.norm(x)).view(b, s, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)

    def forward(self, x):
        b, s, dim = x.shape
        o = self.attention(*self.heads_qkv(x))
        return x + self.proj(o.transpose(1, 2).reshape(b, s, dim))


def frame_window_sabi(frames: int, tokens_per_frame: int, window: int, block_shape) -> np.ndarray:
    """Each query block keeps the key blocks overlapping frames within `window` of its own, and
    key block 0 (a sink, as the original's frame pattern keeps the first blocks); [1, 1, R, W]."""
    seq = frames * tokens_per_frame
    rows, cols = S.block_counts(seq, seq, block_shape)
    bq, bkv = block_shape
    keep = np.zeros((rows, cols), dtype=bool)
    for i in range(rows):
        first = (i * bq) // tokens_per_frame - window
        last = (min((i + 1) * bq, seq) - 1) // tokens_per_frame + window
        lo, hi = max(first, 0) * tokens_per_frame, min((last + 1) * tokens_per_frame, seq)
        keep[i, lo // bkv:(hi - 1) // bkv + 1] = True
    keep[:, 0] = True
    return S.from_block_mask(keep[None, None])


def timed(fn, x, warmup: int, repeats: int):
    """(output, median seconds per call)."""
    for _ in range(warmup):
        out = fn(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(x)
        times.append(time.perf_counter() - start)
    return out, statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--height", type=int, default=16)
    p.add_argument("--width", type=int, default=24)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    p.add_argument("--window", type=int, default=1, help="frames each side of the window pattern")
    p.add_argument("--method", default="antidiagonal", help="select_blocks' method")
    p.add_argument("--mass", type=float, default=0.99, help="select_blocks' mass")
    p.add_argument("--sharpness", type=float, default=2.5, help="scale of the tied q/k projection")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--compile", action="store_true",
                   help="also run the select_blocks block under torch.compile(fullgraph=True) (compiling "
                        "takes 10-40 s)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    dtype = getattr(torch, args.dtype)

    x = video_tokens(args.frames, args.height, args.width, args.dim, args.seed)
    xd, seq = x.to(dtype), x.shape[1]
    window = frame_window_sabi(args.frames, args.height * args.width, args.window, DEFAULT_BLOCK_SHAPE)
    select = dict(method=args.method, mass=args.mass)

    torch.manual_seed(args.seed)  # LayerNorm and proj take torch's default initialisation
    weights = AttentionBlock(args.dim, args.heads, None, args.seed, args.sharpness).eval()

    def block(attention, dtype=dtype):
        """The same weights (a copy) with `attention`, in `dtype`."""
        model = copy.deepcopy(weights).to(dtype)
        model.attention = attention
        return model

    sdpa = torch.nn.functional.scaled_dot_product_attention
    chosen = f"blitz_acl, select_blocks({args.method}, {args.mass})"
    runs = {
        "dense SDPA": block(sdpa),
        "blitz_acl, every tile": block(sparse_sdpa),
        f"blitz_acl, frame window +-{args.window}": block(lambda q, k, v: sparse_sdpa(q, k, v, sabi=window)),
        chosen: block(lambda q, k, v: sparse_sdpa(q, k, v, select=select)),  # chooses at every call
    }
    print(f"tokens: {args.frames} frames x {args.height} x {args.width} = {seq}; dim {args.dim}, "
          f"{args.heads} heads of {args.dim // args.heads}; {args.dtype}; {torch.get_num_threads()} threads")
    with torch.no_grad():
        want = block(sdpa, torch.float32)(x)
        results = {name: timed(model, xd, args.warmup, args.repeats) for name, model in runs.items()}
        q, k, _ = runs[chosen].heads_qkv(xd)
        sabi, select_s = timed(lambda _: blitz_acl.select_blocks(q, k, **select), None, args.warmup, args.repeats)
        if args.compile:
            compiled = torch.compile(runs[chosen], fullgraph=True)
            start = time.perf_counter()
            compiled(xd)
            compile_s = time.perf_counter() - start
            results["  the same, torch.compile(fullgraph=True)"] = timed(compiled, xd, 0, args.repeats)

    tiles = f"{DEFAULT_BLOCK_SHAPE[0]} x {DEFAULT_BLOCK_SHAPE[1]} tiles"
    print(f"tiles kept: frame window {S.density(window, seq, seq):.2f}, select_blocks "
          f"{S.density(sabi.numpy(), seq, seq):.2f} of the {tiles} (choosing them: {select_s * 1e3:.0f} ms, "
          f"included in its row)")
    dense_s = results["dense SDPA"][1]
    scale = (want - x).abs().max().item()  # the attention branch's size, residual removed
    print(f"{'':44s} {'time [ms]':>10s} {'vs SDPA':>8s} {'max |err| / max |branch|':>26s}")
    for name, (out, seconds) in results.items():
        err = (out.float() - want).abs().max().item() / scale
        print(f"{name:44s} {seconds * 1e3:10.1f} {dense_s / seconds:7.2f}x {err:26.2e}")
    if args.compile:
        print(f"(compiling took {compile_s:.1f} s)")


if __name__ == "__main__":
    main()
