"""The bench (python -m bench): its smoke mode end to end, and the parts that compute figures.

The FLOP/sparsity counts are compared with an independent count over an explicit token mask
(blitz_acl.sabi.to_token_mask), and the correctness check must reject a wrong output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parents[1]
# bench/ is a directory of scripts run from the checkout (python -m bench), not an installed
# package: make it importable however pytest was started.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import check as checking  # noqa: E402
from bench.flops import attention_flops, count_selection  # noqa: E402
from bench.patterns import PATTERNS, build_case  # noqa: E402
from bench.table import COLUMN_HEADERS  # noqa: E402
from bench.timing import measure_interleaved  # noqa: E402
from blitz_acl import sabi as sabi_tools  # noqa: E402

ORIGINAL_COLUMNS = (
    "H", "B", "s_q", "s_kv", "D", "sparsity", "Outputs_equal", "Ref_Latency_[usec]", "Our_Latency_[usec]",
)
ADDED_COLUMNS = (
    "Measured_sparsity", "Speedup_vs_Ref", "Ideal_1/(1-s)", "Flex_Latency_[usec]", "Speedup_vs_Flex",
    "Our_TFLOP/s",
)
JSON_KEYS = ("config", "machine", "competitors", "tolerance", "flop_formula", "rows", "runtime_seconds", "table")
MACHINE_KEYS = ("cpu_model", "isa_flags", "threads", "omp_wait_policy", "versions", "git_commit")
ROW_KEYS = (
    "H", "B", "s_q", "s_kv", "D", "sparsity", "outputs_equal", "ref_latency_us", "our_latency_us",
    "measured_sparsity", "speedup_vs_ref", "ideal_speedup", "flex_latency_us", "speedup_vs_flex",
    "our_tflops", "max_abs_err", "selected_tiles", "flops", "timings", "check",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (s_q, s_kv): aligned, partial tiles on both sides, fewer keys than one block.
SHAPES = ((256, 1024), (300, 1100), (130, 200))


def _run_bench(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--check", "--out", str(tmp_path), *extra],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )


def _column_header_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.split()[:2] == ["H", "B"])


def _check_outputs(tmp_path: Path, proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "DTYPE=torch.bfloat16" in proc.stdout
    assert "INPUT_LAYOUT='BNSD'" in proc.stdout
    assert "ATTENTION_MATRIX=" in proc.stdout
    columns = tuple(_column_header_line(proc.stdout).split())
    assert columns[: len(ORIGINAL_COLUMNS)] == ORIGINAL_COLUMNS
    assert set(ADDED_COLUMNS) <= set(columns[len(ORIGINAL_COLUMNS):])
    (json_path,) = tmp_path.glob("*.json")
    (png_path,) = tmp_path.glob("*.png")
    assert png_path.read_bytes()[: len(PNG_MAGIC)] == PNG_MAGIC
    result = json.loads(json_path.read_text())
    assert set(JSON_KEYS) <= set(result)
    assert set(MACHINE_KEYS) <= set(result["machine"])
    # Every requested sparsity is either a row that reached it or a listed skip.
    assert result["rows"], result["skipped_rows"]
    assert len(result["rows"]) + len(result["skipped_rows"]) == len(result["config"]["sparsities"])
    tolerance = result["config"]["reach_tolerance"]
    assert all(abs(row["measured_sparsity"] - row["sparsity"]) <= tolerance for row in result["rows"])
    for row in result["rows"]:
        assert set(ROW_KEYS) <= set(row)
        assert row["outputs_equal"] is True, row["check"]
        assert row["ref_latency_us"] > 0 and row["our_latency_us"] > 0
    # The table prints one line per sparsity, each saying Outputs_equal "yes".
    status_column = columns.index("Outputs_equal")
    body = [line.split() for line in proc.stdout.splitlines() if line.split()[:1] == [str(result["config"]["heads"])]]
    assert [cells[status_column] for cells in body] == ["yes"] * len(result["rows"])
    return result


def test_check_mode_prints_table_and_writes_json_and_png(tmp_path):
    # The reference device keeps this independent of the CPU device build; small shapes
    # keep the float64 reference fast.
    proc = _run_bench(tmp_path, "--device", "reference", "--seq", "300", "--seq-kv", "1100", "--heads", "1",
                      "--sparsities", "0,0.4,0.7")
    result = _check_outputs(tmp_path, proc)
    assert result["competitors"]["flex"]["available"] is False  # skipped in --check
    assert len(result["rows"]) == 3


def test_check_mode_sampled_check_and_causal_pattern(tmp_path):
    proc = _run_bench(
        tmp_path, "--device", "reference", "--pattern", "causal", "--check-method", "sample",
        "--seq", "400", "--seq-kv", "700", "--heads", "1", "--batch", "1", "--sparsities", "0,0.55",
    )
    result = _check_outputs(tmp_path, proc)
    assert all(row["check"]["method"] == "sample" for row in result["rows"])
    # The causal mask alone already skips 0.285 of the pairs at this shape: sparsity 0 is not
    # reachable and must be reported as skipped, not printed as a row labelled 0.00.
    assert [row["sparsity"] for row in result["rows"]] == [0.55]
    (skip,) = result["skipped_rows"]
    assert skip["sparsity"] == 0.0 and skip["measured_sparsity"] > result["config"]["reach_tolerance"]
    assert "Sparsity 0.00 not run" in proc.stdout


@pytest.mark.slow
def test_check_mode_with_flex_attention(tmp_path):
    proc = _run_bench(tmp_path, "--device", "reference", "--seq", "300", "--seq-kv", "1100",
                      "--heads", "1", "--batch", "1", "--flex", "on")
    result = _check_outputs(tmp_path, proc)
    flex = result["competitors"]["flex"]
    if not flex["available"]:
        pytest.skip(f"FlexAttention did not run here: {flex['reason']}")
    assert all(row["flex_latency_us"] > 0 for row in result["rows"])


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("seq_q, seq_kv", SHAPES)
def test_selection_counts_match_an_explicit_token_mask(pattern, seq_q, seq_kv):
    batch, heads, block_shape, head_dim = 2, 3, (128, 512), 64
    case = build_case(pattern, batch, heads, seq_q, seq_kv, 0.5, block_shape)
    tokens = sabi_tools.to_token_mask(case.sabi, seq_q, seq_kv, block_shape, batch=batch, heads=heads)
    if case.causal_offset is not None:
        i = np.arange(seq_q)[:, None]
        j = np.arange(seq_kv)[None, :]
        tokens = tokens & (j <= i + case.causal_offset)
    selection = count_selection(case.sabi, batch, heads, seq_q, seq_kv, block_shape, case.causal_offset)
    assert selection.selected_pairs == int(tokens.sum())
    assert selection.total_pairs == batch * heads * seq_q * seq_kv
    assert selection.selected_tiles == sabi_tools.selected_tiles(case.sabi, batch, heads)
    assert attention_flops(selection.selected_pairs, head_dim) == 4 * head_dim * int(tokens.sum())


def test_selection_counts_broadcast_dims():
    sabi = np.array([[[[0, 0xFFFF], [1, 0]]]], dtype=np.uint16)  # [1, 1, 2, 2]
    one = count_selection(sabi, 1, 1, 256, 1024, (128, 512))
    many = count_selection(sabi, 2, 3, 256, 1024, (128, 512))
    assert one.selected_pairs == 3 * 128 * 512
    assert many.selected_pairs == 6 * one.selected_pairs
    assert many.selected_tiles == 6 * 3


@pytest.mark.parametrize("pattern", PATTERNS)
def test_measured_sparsity_grows_with_nominal_sparsity(pattern):
    measured = [
        count_selection(c.sabi, 1, 1, 4096, 8192, (128, 512), c.causal_offset).measured_sparsity
        for c in (build_case(pattern, 1, 1, 4096, 8192, s, (128, 512)) for s in (0.0, 0.5, 0.9))
    ]
    assert measured == sorted(measured)
    if pattern != "causal":
        assert measured[0] == 0.0


def _problem(case_pattern="random", seq_q=300, seq_kv=1100, sparsity=0.5):
    gen = torch.Generator().manual_seed(7)
    q = torch.randn(1, 2, seq_q, 64, generator=gen).to(torch.bfloat16)
    k = torch.randn(1, 2, seq_kv, 64, generator=gen).to(torch.bfloat16)
    v = torch.randn(1, 2, seq_kv, 64, generator=gen).to(torch.bfloat16)
    case = build_case(case_pattern, 1, 2, seq_q, seq_kv, sparsity, (128, 512))
    return q, k, v, case


@pytest.mark.parametrize("method", ("full", "sample"))
@pytest.mark.parametrize("pattern", ("random", "causal"))
def test_check_accepts_the_reference_and_rejects_a_wrong_output(method, pattern):
    from blitz_acl import blitz_sparse_attention

    q, k, v, case = _problem(pattern)
    scale = 64 ** -0.5
    right = blitz_sparse_attention(q.float(), k.float(), v.float(), case.sabi, scale_value=scale,
                                   sparse_mode=case.sparse_mode, device="reference").to(torch.bfloat16)
    ok = checking.check(method, right, q, k, v, case, (128, 512), scale, "bfloat16")
    assert ok.outputs_equal, ok
    # Attending to every tile is what a kernel that ignores sabi would return.
    dense = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), scale=scale)
    bad = checking.check(method, dense.to(torch.bfloat16), q, k, v, case, (128, 512), scale, "bfloat16")
    assert not bad.outputs_equal
    assert bad.max_abs_err > checking.TOLERANCE["bfloat16"]


def test_check_sample_covers_first_and_last_query_block():
    blocks = checking.sample_query_blocks(10)
    assert blocks[0] == 0 and blocks[-1] == 9
    assert len(blocks) == 2 + checking.SAMPLE_RANDOM_BLOCKS
    assert checking.sample_query_blocks(1) == [0]


def test_table_keeps_the_original_columns_first():
    assert COLUMN_HEADERS[: len(ORIGINAL_COLUMNS)] == ORIGINAL_COLUMNS


def test_timing_interleaves_and_counts_runs():
    calls = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    timings = measure_interleaved(fns, {"a": 2, "b": 0}, repeats=3)
    assert calls == ["a", "a"] + ["a", "b"] * 3
    assert len(timings["a"].samples_us) == 3 and timings["b"].min_us <= timings["b"].median_us


def test_check_mode_on_the_cpu_device(tmp_path):
    from blitz_acl.devices import library

    try:
        library.load()
    except library.LibraryNotFoundError as error:
        pytest.skip(f"CPU device library not built (./build_kernel.sh): {error}")
    proc = _run_bench(tmp_path)  # --check's own defaults: device cpu, two batches, partial tiles
    result = _check_outputs(tmp_path, proc)
    assert result["config"]["device"] == "cpu"
    # The JSON records what the CPU device says about itself (its ISA path and threads).
    assert not result["machine"]["blitz_acl_cpu_device"].startswith("unavailable")


@pytest.mark.parametrize("given", [None, "ACTIVE"])
def test_the_bench_sets_a_passive_openmp_wait_before_torch_loads_and_keeps_a_given_one(given):
    # libgomp reads OMP_WAIT_POLICY once, when torch loads it: the bench package must set it
    # before any of its modules imports torch, and leave a user's choice alone.
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    probe = ("import sys, os, bench; loaded = 'torch' in sys.modules; import bench.run; "
             "print(loaded, os.environ['OMP_WAIT_POLICY'], bench.omp_wait_policy())")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded, policy, described = proc.stdout.split(" ", 2)
    assert loaded == "False"
    assert policy == (given or "PASSIVE")
    assert ("set by the bench" in described) == (given is None), described


def test_default_sweep_reaches_every_sparsity_it_prints():
    # The main job's defaults (python -m bench): each requested sparsity is measured within
    # the tolerance at the default shape.
    from bench import run as bench_run

    cfg = bench_run.DEFAULTS
    seq = cfg["seq"]
    for sparsity in cfg["sparsities"]:
        case = build_case(cfg["pattern"], cfg["batch"], cfg["heads"], seq, seq, sparsity, bench_run.BLOCK_SHAPE)
        measured = count_selection(case.sabi, cfg["batch"], cfg["heads"], seq, seq, bench_run.BLOCK_SHAPE,
                                   case.causal_offset).measured_sparsity
        assert bench_run.reachable(sparsity, measured), (seq, sparsity, measured)


def test_time_budget_shortens_only_the_default_shape():
    from bench import run as bench_run

    args = bench_run.parse_args([])
    bench_run.fit_time_budget(args, args.shape_given, ours_dense_s=0.3, ref_dense_s=0.5)
    assert args.seq == bench_run.DEFAULTS["seq"]  # a fast CPU keeps the default
    bench_run.fit_time_budget(args, args.shape_given, ours_dense_s=8.0, ref_dense_s=0.5)
    assert args.heads == 1 and args.seq_kv == args.seq
    assert bench_run.MIN_BUDGET_SEQ <= args.seq < bench_run.DEFAULTS["seq"]
    given = bench_run.parse_args(["--seq", "8192"])
    bench_run.fit_time_budget(given, given.shape_given, ours_dense_s=8.0, ref_dense_s=0.5)
    assert given.seq == 8192
