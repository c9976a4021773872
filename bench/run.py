"""python -m bench: sweep sparsity, print the original kernel's table, write JSON and PNG.

For each sparsity: build the sabi of the pattern, run blitz_acl once and check its output
(Outputs_equal, bench/check.py), then time Ref, blitz_acl and FlexAttention side by side
(bench/timing.py), and count what the sabi selects (bench/flops.py). Ratios are of medians
measured in the same run: on a shared machine a lone absolute time means little.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

# ---- The sweep -------------------------------------------------------------------------------
# The original kernel's bench swept these sparsities (B=1, H=3, S=118806, D=128, bf16, BNSD).
SPARSITIES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
BLOCK_SHAPE = (128, 512)  # (bq, bkv): the sabi tile
INPUT_LAYOUT = "BNSD"
# Defaults sized so the whole sweep, FlexAttention's compile included, finishes within 3
# minutes on a 2-core AVX-512 machine (AMD EPYC, no AMX). Measured there alone, one row of
# H=3 S=8192 costs ~13-17 s (dense SDPA 0.59 s/call, FlexAttention 1.4 s/call, ~55% of the
# row), i.e. 165-210 s for the 11 rows plus a cold compile (~20 s): too close. H=2 takes 2/3
# of that; --heads 3 gives the original's H. On a slower CPU fit_time_budget shortens S.
# The pattern is "random": its measured sparsity follows the requested one at any length.
# The original's "frame" rule keeps query-block rows 0-28, the last row, key blocks 0-7 and
# the last key block, so at S=8192 it cannot skip more than 23% of the pairs; its own shape
# is one flag away: --pattern frame --seq 118806 --heads 3.
DEFAULTS = {
    "heads": 2, "batch": 1, "seq": 8192, "seq_kv": None, "head_dim": 128, "dtype": "bfloat16",
    "pattern": "random", "sparsities": SPARSITIES, "warmup": 2, "repeats": 5, "flex": "auto",
}
# A row is run only if the pattern's measured sparsity is within this of the requested one;
# otherwise it is listed as skipped, with what was measured (bench/run.py reachable()).
REACH_TOLERANCE = 0.05
# Wall-clock budget of the default sweep and the shortest S fit_time_budget goes down to.
TIME_BUDGET_S = 180.0
MIN_BUDGET_SEQ = 2048
# --check: a smoke run for the test suite (seconds): unaligned lengths (partial tiles),
# s_q != s_kv, two batches, a pattern that is sparse at this size; FlexAttention's compile
# (~20 s on this machine) is skipped unless asked for with --flex on.
CHECK_MODE = {
    "heads": 2, "batch": 2, "seq": 1000, "seq_kv": 2600, "head_dim": 64, "dtype": "bfloat16",
    "pattern": "random", "sparsities": (0.0, 0.5, 0.8), "warmup": 1, "repeats": 2, "flex": "off",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
# ----------------------------------------------------------------------------------------------

from bench import check as checking, omp_wait_policy  # noqa: E402
from bench.flops import attention_flops, count_selection, tflops_per_s  # noqa: E402
from bench.inputs import DTYPES, make_qkv  # noqa: E402
from bench.patterns import PATTERNS, build_case  # noqa: E402
from bench.table import format_table  # noqa: E402
from bench.timing import measure_interleaved, time_once  # noqa: E402


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _sparsity_list(text: str):
    values = tuple(float(v) for v in text.split(",") if v.strip())
    if not values or any(not 0.0 <= v < 1.0 for v in values):
        raise argparse.ArgumentTypeError(f"sparsities must be in [0, 1), got {text!r}")
    return values


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Sweep sparsity; print the original BlitzSparseAttention bench table with "
        "Ref (dense SDPA / npu_fusion_attention), FlexAttention and blitz_acl side by side.",
    )
    p.add_argument("--heads", type=_positive, help=f"N (default {DEFAULTS['heads']})")
    p.add_argument("--batch", type=_positive, help=f"B (default {DEFAULTS['batch']})")
    p.add_argument("--seq", type=_positive, help=f"s_q (default {DEFAULTS['seq']}); 118806 is the original's")
    p.add_argument("--seq-kv", type=_positive, help="s_kv (default: --seq)")
    p.add_argument("--head-dim", type=_positive, help=f"D (default {DEFAULTS['head_dim']})")
    p.add_argument("--dtype", choices=DTYPES, help=f"default {DEFAULTS['dtype']}")
    p.add_argument("--pattern", choices=PATTERNS, help=f"sabi pattern (default {DEFAULTS['pattern']})")
    p.add_argument("--sparsities", type=_sparsity_list, help="comma list (default 0,0.05,0.1,0.2,...,0.9)")
    p.add_argument("--device", choices=("cpu", "npu", "reference", "npu_sim"), default="cpu",
                   help="blitz_acl device (default cpu; 'reference' is the float64 model, slow; "
                   "'npu_sim' prints the NPU execution model's counters per sparsity instead of "
                   "timings, at a small shape: bench/npu_sim_counts.py)")
    p.add_argument("--warmup", type=_non_negative, help=f"warm-up runs (default {DEFAULTS['warmup']})")
    p.add_argument("--repeats", type=_positive, help=f"timed runs (default {DEFAULTS['repeats']})")
    p.add_argument("--threads", type=_positive, help="threads for torch and blitz_acl's CPU device")
    p.add_argument("--flex", choices=("auto", "on", "off"),
                   help="time FlexAttention (auto: yes, except with --check)")
    p.add_argument("--check-method", choices=("auto", "full", "sample"), default="auto",
                   help="Outputs_equal against masked fp32 SDPA on every row (full) or the "
                   "float64 reference on sampled query blocks (sample); auto picks by cost")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for JSON and PNG")
    p.add_argument("--no-png", action="store_true", help="skip the PNG (no matplotlib needed)")
    p.add_argument("--check", action="store_true", help="smoke mode: tiny shapes, seconds")
    p.add_argument("--parallel", type=_positive, metavar="N",
                   help="sequence-parallel attention on 1, 2, 4 ... N gloo ranks (bench/parallel.py)")
    args = p.parse_args(argv)
    args.shape_given = any(getattr(args, name) is not None for name in ("heads", "batch", "seq", "seq_kv"))
    base = CHECK_MODE if args.check else DEFAULTS
    for name, value in base.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.seq_kv is None:
        args.seq_kv = args.seq
    return args


def apply_threads(threads):
    """Use `threads` in torch and in blitz_acl's CPU device; return the count in effect."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
        os.environ["BLITZ_ACL_NUM_THREADS"] = str(threads)
    return torch.get_num_threads()


def warmup_runs(warmup: int, first_row: bool) -> dict:
    """Untimed runs per competitor before a row's timed rounds.

    Each competitor gets `warmup` untimed runs before its first timed run: for blitz_acl the
    checked run is one of them, for FlexAttention the compiling call. Later rows need none:
    Ref makes the same call at every sparsity; blitz_acl's checked run with the row's sabi
    precedes the timing; FlexAttention's compiled kernel takes the row's BlockMask (same
    shapes, same mask_mod object) without recompiling.
    """
    if first_row:
        return {"ref": warmup, "ours": max(warmup - 1, 0), "flex": max(warmup - 1, 0)}
    return {"ref": 0, "ours": 0, "flex": 0}


def gemm_peak(device: str, dtype: str, threads: int, check: bool):
    """(TFLOP/s, GEMM dtype, None) or (None, None, why not): this CPU's GEMM peak, for scale.

    Measured by bench/cpu_kernel.py's gemm_peak_tflops (one single-thread GEMM per thread at
    once) in the faster of bf16 and fp32 torch GEMMs, named in the output; only for the CPU
    device in bf16, never in --check, and optional: the bench runs without it.
    """
    if check:
        return None, None, "not measured in --check (a smoke run)"
    if device != "cpu" or dtype != "bfloat16":
        return None, None, "only measured for the CPU device in bfloat16"
    try:
        from bench.cpu_kernel import fastest_gemm_dtype, gemm_peak_tflops

        fastest = fastest_gemm_dtype()
        return gemm_peak_tflops(threads, fastest), fastest, None
    except Exception as error:  # optional figure: report why it is missing
        return None, None, f"{type(error).__name__}: {error}"


def reachable(requested: float, measured: float) -> bool:
    return abs(measured - requested) <= REACH_TOLERANCE + 1e-9  # 1e-9: 0.75 - 0.7 is not 0.05 in floats


def fit_time_budget(args, shape_given: bool, ours_dense_s: float, ref_dense_s: float) -> None:
    """Drop to one head, then halve S (down to MIN_BUDGET_SEQ), until the sweep fits TIME_BUDGET_S.

    Only for the default shape (no --seq/--seq-kv/--heads/--batch given). The projection is
    per row (warm-up + repeats) x (ours at the row's density + dense Ref + FlexAttention at
    about 2.5x Ref per unit of density, as measured on the AVX-512 machine); calls scale with
    S^2. Prints what it changed.
    """
    if shape_given or args.check:
        return
    runs = args.warmup + args.repeats
    mean_density = sum(1.0 - s for s in args.sparsities) / len(args.sparsities)
    flex_factor = 2.5 if args.flex != "off" else 0.0
    per_row = runs * (ours_dense_s * mean_density + ref_dense_s * (1.0 + flex_factor * mean_density))
    projected, heads, seq = per_row * len(args.sparsities), args.heads, args.seq
    if projected > TIME_BUDGET_S and heads > 1:
        projected, heads = projected / heads, 1
    while projected > TIME_BUDGET_S and seq // 2 >= MIN_BUDGET_SEQ:
        seq //= 2
        projected /= 4.0
    if (heads, seq) != (args.heads, args.seq):
        progress(f"this CPU is slow for the default sweep (one dense call: ours {ours_dense_s:.1f} s, "
                 f"Ref {ref_dense_s:.1f} s): H={args.heads} S={args.seq} shortened to H={heads} S={seq} to stay "
                 f"near {TIME_BUDGET_S:.0f} s (pass --heads {args.heads} --seq {args.seq} to keep them)")
        args.heads, args.seq, args.seq_kv = heads, seq, seq


def _ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def require_device(device: str) -> None:
    """Stop with a clear message when the device cannot run here (library not built, no NPU)."""
    if device == "cpu":
        from blitz_acl.devices import library

        try:
            library.load()
        except library.LibraryNotFoundError as error:
            raise SystemExit(f"--device cpu: {error}") from None
        return
    if device != "npu":
        return
    try:
        import torch_npu  # noqa: F401  (registers the "npu" device with torch)
    except ImportError as error:
        raise SystemExit(f"--device npu needs torch_npu with CANN on an Ascend machine: {error}") from None
    import torch

    if not torch.npu.is_available():
        raise SystemExit("--device npu: torch_npu is installed but reports no NPU")


def run(args: argparse.Namespace) -> dict:
    from bench import competitors as comp
    from bench.machine import describe

    require_device(args.device)
    started, started_cpu = time.perf_counter(), time.process_time()
    threads = apply_threads(args.threads)
    requested_shape = (args.heads, args.seq)
    for attempt in range(2):  # the second pass only after fit_time_budget shortened S
        B, N, Sq, Skv, D = args.batch, args.heads, args.seq, args.seq_kv, args.head_dim
        scale = 1.0 / math.sqrt(D)
        progress(f"inputs: B={B} N={N} s_q={Sq} s_kv={Skv} D={D} {args.dtype} on {args.device}, "
                 f"{threads} threads, pattern {args.pattern}; OMP_WAIT_POLICY {omp_wait_policy()}")
        q, k, v = make_qkv(B, N, Sq, Skv, D, args.dtype, args.device)
        ref = comp.make_reference(args.device, q, k, v, scale, BLOCK_SHAPE)
        ours = comp.Ours(q, k, v, scale, BLOCK_SHAPE, args.device)
        if attempt or args.shape_given or args.check:
            break
        dense = build_case(args.pattern, B, N, Sq, Skv, 0.0, BLOCK_SHAPE)
        ref.prepare(dense)
        ours.prepare(dense)
        sync = comp.synchronizer(args.device)
        fit_time_budget(args, args.shape_given, time_once(ours, sync) / 1e6, time_once(ref, sync) / 1e6)
        if (args.heads, args.seq) == (N, Sq):
            break
    want_flex = args.flex == "on" or (args.flex == "auto" and args.device == "cpu")
    if want_flex:
        flex = comp.Flex(q, k, v, scale, BLOCK_SHAPE)
    else:
        flex = comp.Competitor()
        flex.name, flex.label = "flex", comp.Flex.label
        flex.disable("--flex off" + (" (the --check default)" if args.check else "")
                     if args.flex == "off" else f"FlexAttention is timed on the CPU only (--device {args.device})")
    sync = comp.synchronizer(args.device)
    method = checking.choose_method(args.check_method, B, N, Sq, Skv, D)
    dense_flops = attention_flops(B * N * Sq * Skv, D)
    flex_compile_s = None
    peak_tflops, peak_dtype, peak_missing = gemm_peak(args.device, args.dtype, threads, args.check)
    if peak_tflops is not None:
        progress(f"{peak_dtype} GEMM peak, {threads} single-thread GEMMs at once: {peak_tflops:.3f} TFLOP/s")

    rows, skipped = [], []
    for index, sparsity in enumerate(args.sparsities):
        tag = f"[{index + 1}/{len(args.sparsities)}] sparsity {sparsity:.2f}"
        case = build_case(args.pattern, B, N, Sq, Skv, sparsity, BLOCK_SHAPE)
        selection = count_selection(case.sabi, B, N, Sq, Skv, BLOCK_SHAPE, case.causal_offset)
        if not reachable(sparsity, selection.measured_sparsity):
            reason = (f"pattern {args.pattern} at s_q={Sq} s_kv={Skv} skips {selection.measured_sparsity:.3f} "
                      f"of the pairs, not {sparsity:.2f} (+-{REACH_TOLERANCE})")
            skipped.append({"sparsity": sparsity, "measured_sparsity": selection.measured_sparsity,
                            "reason": reason})
            progress(f"{tag}: skipped: {reason}")
            continue
        for competitor in (ref, ours, flex):
            competitor.prepare(case)
        if flex.reason and index == 0:
            progress(f"{tag}: FlexAttention not run: {flex.reason[:2000]}")

        # The checked run is also ours' first warm-up run.
        output = ours()
        sync()
        result = checking.check(method, output, q, k, v, case, BLOCK_SHAPE, scale, args.dtype)
        del output
        progress(f"{tag}: measured {selection.measured_sparsity:.3f}, Outputs_equal "
                 f"{'yes' if result.outputs_equal else 'NO'} (max err {result.max_abs_err:.2e}, {method})")

        if flex.available and flex_compile_s is None:
            progress(f"{tag}: compiling FlexAttention (one-time; tens of seconds on a small CPU)")
            try:
                flex_compile_s = time_once(flex, sync) / 1e6
            except Exception as error:  # a failed compile is reported, not fatal
                flex.disable(f"torch.compile(flex_attention) failed: {type(error).__name__}: {error}")
                progress(f"{tag}: FlexAttention disabled: {flex.reason[:2000]}")
            else:
                progress(f"{tag}: FlexAttention compiled and ran in {flex_compile_s:.1f} s")

        fns = {"ref": ref, "ours": ours}
        if flex.available:
            fns["flex"] = flex
        warmup = warmup_runs(args.warmup, first_row=index == 0)
        timings = measure_interleaved(fns, warmup, args.repeats, sync)

        ref_us = timings["ref"].median_us
        our_us = timings["ours"].median_us
        flex_us = timings["flex"].median_us if "flex" in timings else None
        flops = attention_flops(selection.selected_pairs, D)
        measured = selection.measured_sparsity
        row = {
            "H": N, "B": B, "s_q": Sq, "s_kv": Skv, "D": D, "sparsity": sparsity,
            "outputs_equal": result.outputs_equal,
            "ref_latency_us": ref_us,
            "our_latency_us": our_us,
            "measured_sparsity": measured,
            "tile_sparsity": selection.tile_sparsity,
            "speedup_vs_ref": _ratio(ref_us, our_us),
            "ideal_speedup": 1.0 / (1.0 - measured) if measured < 1.0 else None,
            "flex_latency_us": flex_us,
            "speedup_vs_flex": _ratio(flex_us, our_us),
            "speedup_vs_ref_flex": _ratio(ref_us, flex_us),
            "our_tflops": tflops_per_s(flops, our_us),
            "our_share_of_gemm_peak": _ratio(tflops_per_s(flops, our_us), peak_tflops),
            "ref_tflops": tflops_per_s(dense_flops, ref_us),
            "flex_tflops": tflops_per_s(flops, flex_us) if flex_us else None,
            "max_abs_err": result.max_abs_err,
            "selected_tiles": selection.selected_tiles,
            "total_tiles": selection.total_tiles,
            "selected_pairs": selection.selected_pairs,
            "total_pairs": selection.total_pairs,
            "flops": flops,
            "dense_flops": dense_flops,
            "our_us_per_tile": _ratio(our_us, selection.selected_tiles),
            "flex_us_per_tile": _ratio(flex_us, selection.selected_tiles),
            "ref_us_per_dense_tile": _ratio(ref_us, selection.total_tiles),
            "check": result.as_dict(),
            "timings": {name: t.as_dict() for name, t in timings.items()},
        }
        rows.append(row)
        flex_text = f", flex {flex_us / 1e3:.1f} ms" if flex_us else ""
        progress(f"{tag}: ref {ref_us / 1e3:.1f} ms, ours {our_us / 1e3:.1f} ms "
                 f"({row['speedup_vs_ref']:.2f}x, ideal {row['ideal_speedup']:.2f}x){flex_text}; "
                 f"{time.perf_counter() - started:.0f} s elapsed")

    return {
        "config": {
            "device": args.device, "dtype": args.dtype, "pattern": args.pattern,
            "batch": B, "heads": N, "seq_q": Sq, "seq_kv": Skv, "head_dim": D,
            "input_layout": INPUT_LAYOUT, "block_shape": list(BLOCK_SHAPE), "scale": scale,
            "sparsities": list(args.sparsities), "warmup": args.warmup, "repeats": args.repeats,
            "check_mode": args.check, "check_method": method,
            "requested_heads_seq": list(requested_shape), "reach_tolerance": REACH_TOLERANCE,
        },
        "machine": describe(threads),
        "competitors": {
            c.name: {"label": c.label, "available": c.available, "reason": c.reason}
            for c in (ref, ours, flex)
        },
        "flex_compile_seconds": flex_compile_s,
        "gemm_peak_tflops": peak_tflops,
        "gemm_peak_dtype": peak_dtype,
        "gemm_peak_missing": peak_missing,
        "tolerance": {"dtype": args.dtype, "max_abs_err": checking.TOLERANCE[args.dtype]},
        "flop_formula": "4 * D * (selected, in-bounds token pairs), summed over batch and heads",
        "rows": rows,
        "skipped_rows": skipped,
        "runtime_seconds": time.perf_counter() - started,
        # CPU time of this process (all its threads): on a shared machine, wall time / threads
        # is what the run takes on its own when other jobs slow it down.
        "cpu_seconds": time.process_time() - started_cpu,
    }


def title_lines(result: dict) -> list:
    cfg, comps = result["config"], result["competitors"]
    torch_dtype = f"torch.{cfg['dtype']}"
    bq, bkv = cfg["block_shape"]
    flex = comps["flex"]
    flex_text = flex["label"] if flex["available"] else f"FlexAttention not run: {flex['reason']}"
    check_ref = {"full": "torch SDPA float32 masked by the sabi, every row",
                 "sample": "blitz_acl float64 reference, sampled query blocks"}[cfg["check_method"]]
    return [
        f"DTYPE={torch_dtype}  INPUT_LAYOUT='{cfg['input_layout']}'  ATTENTION_MATRIX='{cfg['pattern']}'"
        f"  BLOCK_SHAPE={bq}x{bkv}  DEVICE='{cfg['device']}'  THREADS={result['machine']['threads']}",
        f"Ref: {comps['ref']['label']}   Flex: {flex_text}",
        f"Outputs_equal: max|ours - ref| <= {result['tolerance']['max_abs_err']:.1e} vs {check_ref}",
        f"CPU: {result['machine']['cpu_model']}" + (
            f"   {result['gemm_peak_dtype']} GEMM peak ({result['machine']['threads']} single-thread GEMMs at once): "
            f"{result['gemm_peak_tflops']:.3f} TFLOP/s" if result["gemm_peak_tflops"] else ""),
    ]


def notes(result: dict) -> list:
    cfg = result["config"]
    asked = tuple(cfg["requested_heads_seq"])
    shortened = ([f"H, S shortened from {asked} to {(cfg['heads'], cfg['seq_q'])} to fit the time budget "
                  "on this CPU (see the progress log)."] if asked != (cfg["heads"], cfg["seq_q"]) else [])
    skipped = [f"Sparsity {row['sparsity']:.2f} not run: {row['reason']}." for row in result["skipped_rows"]]
    return shortened + skipped + [
        f"Latencies: median of {cfg['repeats']} run(s), wall clock, competitors interleaved, after "
        f"{cfg['warmup']} warm-up run(s) each on the first row. "
        "Speedups are ratios of medians.",
        "Ideal_1/(1-s) uses the measured sparsity (token pairs the sabi skips); "
        "Our_TFLOP/s = 4*D*(selected in-bounds pairs) / Our_Latency.",
    ]


# --device npu_sim: the execution model's counters at this small shape (it is far too slow to
# time, and its time would mean nothing for an NPU).
NPU_SIM_SHAPE = {"batch": 1, "heads": 2, "seq": 2048, "head_dim": 128}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.parallel:
        from bench import parallel

        return parallel.main(args.parallel)
    if args.device == "npu_sim":
        from bench import npu_sim_counts

        shape = NPU_SIM_SHAPE if not args.shape_given else {
            "batch": args.batch, "heads": args.heads, "seq": args.seq, "head_dim": args.head_dim}
        npu_sim_counts.print_sweep(shape["batch"], shape["heads"], shape["seq"], shape["head_dim"],
                                   args.sparsities if args.sparsities != SPARSITIES else npu_sim_counts.SPARSITIES)
        return 0
    result = run(args)
    from bench.report import result_stem, write_json

    table = format_table(title_lines(result), result["rows"], notes(result))
    result["table"] = table
    print(table, flush=True)
    stem = result_stem(result["config"]) + ("_check" if args.check else "")
    json_path = write_json(args.out / f"{stem}.json", result)
    print(f"JSON: {json_path}")
    if not args.no_png:
        try:
            from bench.plot import write_png

            print(f"PNG:  {write_png(args.out / f'{stem}.png', result)}")
        except ImportError as error:  # matplotlib is the bench's only optional extra
            progress(f"PNG skipped: {error} (pip install matplotlib, or pass --no-png)")
    progress(f"done in {result['runtime_seconds']:.0f} s wall, {result['cpu_seconds']:.0f} s CPU "
             f"over {result['machine']['threads']} threads")
    if not result["rows"]:
        progress("no requested sparsity was reachable with this pattern and shape: nothing was measured")
        return 1
    return 0 if all(row["outputs_equal"] for row in result["rows"]) else 1
