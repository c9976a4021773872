"""One long-sequence run on the CPU device: time and peak memory (not part of the test suite).

    python tests/large_input_run.py                       # Sq = Skv = 131072, H = 1, D = 128, bf16, 0.9
    python tests/large_input_run.py --seq 32768 --sparsity 0.5

The CPU device needs the tensors (query, key, value, output, lse) plus a workspace of
O(threads x tile) bytes, never an Sq x Skv matrix. The run reports:
  - tensor bytes, the workspace the library asked for, and the RSS growth during the call
    (sampled every 5 ms; the process's RSS right before the call is the baseline);
  - the process's peak RSS (ru_maxrss) and the call's wall time;
  - the max error of a few query blocks (first, last, two random) against the float64
    reference computed on those blocks only (the full reference would take hours).
It exits 1 if the error is above the bf16 bound or the call's growth exceeds the bound
(output + lse + workspace + SLACK_BYTES for allocator and thread stacks).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time

import ml_dtypes
import numpy as np

import blitz_acl
import oracle  # tests/oracle.py: the independent float64 truth
from blitz_acl import sabi as S
from blitz_acl.devices import descriptors

ATOL_BF16 = 2.5e-2  # as tests/test_cpu_device.py
SLACK_BYTES = 64 * 2 ** 20
SAMPLE_SECONDS = 0.005
CHECKED_BLOCKS = 4


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """Samples RSS in a thread while the call runs (the kernel releases the GIL)."""

    def __init__(self):
        self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, _rss())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seq", type=int, default=131072)
    parser.add_argument("--head-dim", type=int, default=128)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seq, d = args.seq, args.head_dim

    rng = np.random.default_rng(args.seed)
    bf16 = np.dtype(ml_dtypes.bfloat16)
    q, k, v = (rng.standard_normal((1, 1, seq, d), dtype=np.float32).astype(bf16) for _ in range(3))
    sabi = S.random_pattern(1, 1, seq, seq, args.sparsity, seed=args.seed, shuffle=True)

    workspace = {}
    real_device_buffer = descriptors.CallScope.device_buffer

    def recording_device_buffer(self, size):
        workspace["bytes"] = size
        return real_device_buffer(self, size)

    descriptors.CallScope.device_buffer = recording_device_buffer
    blitz_acl.blitz_sparse_attention(q[:, :, :256], k[:, :, :1024], v[:, :, :1024], device="cpu")  # load, warm up
    baseline = _rss()
    with PeakSampler() as sampler:
        start = time.perf_counter()
        out, lse = blitz_acl.blitz_sparse_attention(q, k, v, sabi, return_lse=True, device="cpu")
        seconds = time.perf_counter() - start
    descriptors.CallScope.device_buffer = real_device_buffer

    bq = 128
    rows = sabi.shape[2]
    blocks = sorted({0, rows - 1, *rng.integers(1, rows - 1, size=CHECKED_BLOCKS - 2).tolist()})
    max_error = 0.0
    for i in blocks:
        lo, hi = i * bq, min((i + 1) * bq, seq)
        expected = oracle.attention(q[:, :, lo:hi], k, v, np.ascontiguousarray(sabi[:, :, i:i + 1]))
        max_error = max(max_error, float(np.abs(out[:, :, lo:hi].astype(np.float64) - expected).max()))

    tensor_bytes = {"q+k+v": 3 * q.nbytes, "out": out.nbytes, "lse": lse.nbytes, "sabi": sabi.nbytes}
    growth = sampler.peak - baseline
    bound = out.nbytes + lse.nbytes + workspace["bytes"] + SLACK_BYTES
    kept = S.selected_tiles(sabi) / (rows * sabi.shape[3] if sabi.shape[3] else 1)
    report = {
        "seq_q": seq, "seq_kv": seq, "heads": 1, "head_dim": d, "dtype": "bfloat16",
        "sparsity": args.sparsity, "sabi_shape": list(sabi.shape), "selected_tiles": S.selected_tiles(sabi),
        "device": blitz_acl.devices.library.load().device_info(),
        "seconds": round(seconds, 3),
        "tensor_MiB": {name: round(b / 2 ** 20, 2) for name, b in tensor_bytes.items()},
        "workspace_MiB": round(workspace["bytes"] / 2 ** 20, 2),
        "rss_before_call_MiB": round(baseline / 2 ** 20, 1),
        "rss_growth_during_call_MiB": round(growth / 2 ** 20, 1),
        "peak_rss_during_call_MiB": round(sampler.peak / 2 ** 20, 1),
        "growth_bound_MiB": round(bound / 2 ** 20, 1),
        # Includes the float64 copies the reference check makes after the call.
        "peak_rss_process_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "checked_query_blocks": blocks, "max_abs_error": max_error, "kept_fraction_of_sabi_slots": round(kept, 3),
    }
    print(json.dumps(report, indent=2))
    ok = max_error <= ATOL_BF16 and growth <= bound
    if not ok:
        print("FAILED: error or memory above its bound", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
