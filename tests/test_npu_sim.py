"""The NPU op run through the Ascend C execution model (device="npu_sim", libblitz_npu_sim.so).

The real op_host tiling plans each call and the real Ascend C kernel runs for every cube and
vector core of the launch on host threads, with the model checking copies, queues, events, the
UB budget and alignment. Here: the whole oracle matrix (tests/cases.py) in float16 and bfloat16
against the float64 oracle with the CPU device's bounds (tests/bounds.py); identical outputs for
several vector core counts (BLITZ_ACL_NPU_SIM_CORES, read by the binding and passed down); the
tiling's rejections reaching the caller with its message; the per-core counters.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import blitz_acl
import bounds
from blitz_acl import arrays
from blitz_acl.devices import cpu, library, npu_sim
from blitz_acl.devices.status import AclError, AclInvalidArgumentError
from cases import CASE_IDS, CASES
from device_lines import raw_info, raw_info_on_another_thread

DTYPES = ("float16", "bfloat16")
CORES_ENV = "BLITZ_ACL_NPU_SIM_CORES"
CASES_BY_NAME = {c.name: c for c in CASES}
# Cases whose launches differ most with the core count: several tasks per core, GQA, masks,
# lengths, empty rows (the split weighs tasks by selected tiles, scanned by every core).
CORE_COUNT_CASES = ("sabi_random", "gqa", "lengths_mode3", "mask_4d_b_sabi")
CORE_COUNTS = (2, 8, 48)
ACLNN_ERR_PARAM_INVALID = 161002


@pytest.fixture(scope="module", autouse=True)
def sim_library():
    return library.load(library.NPU_SIM)


def _run(inputs, **extra):
    return blitz_acl.blitz_sparse_attention(inputs.query, inputs.key, inputs.value, device="npu_sim",
                                            **{**inputs.kwargs, **extra})


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_IDS)
def test_case_matches_the_oracle(name, dtype):
    case = CASES_BY_NAME[name]
    inputs, truth = bounds.case_truth(name, dtype)
    result = _run(inputs)
    out, lse = result if case.lse else (result, None)
    assert arrays.dtype_name(out) == dtype
    out_layout = "BSND" if case.layout == "BNSD_BSND" else case.layout
    bounds.assert_within(out, truth, out_layout, lse, what=f"npu_sim {name}")


@pytest.mark.parametrize("name", CORE_COUNT_CASES)
def test_core_counts_give_identical_outputs(name, monkeypatch):
    """Each query row is computed by one vector core whatever the split, so outputs and lse are
    bitwise equal for every core count; a core reading another core's workspace would not be."""
    inputs, _ = bounds.case_truth(name, "float16")
    results = []
    for cores in CORE_COUNTS:
        monkeypatch.setenv(CORES_ENV, str(cores))
        out, lse = _run(inputs, return_lse=True)
        report = npu_sim.last_report()
        assert report["ok"] and len(report["vector"]) == 2 * report["block_dim"] <= cores
        results.append((cores, out, lse))
    _, out0, lse0 = results[0]
    for cores, out, lse in results[1:]:
        assert np.array_equal(out.view(np.uint16), out0.view(np.uint16)), f"{name}: {cores} cores differ from 2"
        assert np.array_equal(lse, lse0), f"{name}: lse with {cores} cores differs from 2"


def test_one_vector_core_is_refused_by_the_tiling(monkeypatch):
    """MIX_AIC_1_2 pairs two vector cores with each cube core: one vector core is no launch."""
    inputs, _ = bounds.case_truth("dense", "float16")
    monkeypatch.setenv(CORES_ENV, "1")
    with pytest.raises(AclError, match="no cube/vector core pair") as e:
        _run(inputs)
    assert e.value.status == ACLNN_ERR_PARAM_INVALID


def test_a_bad_core_count_names_the_variable(monkeypatch):
    inputs, _ = bounds.case_truth("dense", "float16")
    monkeypatch.setenv(CORES_ENV, "many")
    with pytest.raises(AclError, match=CORES_ENV):
        _run(inputs)


@pytest.mark.parametrize("text", ["many", "0", "65", "-2", "8 cores", "1e1"])
def test_a_bad_core_count_is_refused_with_the_range(monkeypatch, text):
    """The library holds the range (1..kMaxWorkers); the binding's exception names the variable,
    the range and the value, before any descriptor is made."""
    inputs, _ = bounds.case_truth("dense", "float16")
    monkeypatch.setenv(CORES_ENV, text)
    with pytest.raises(AclInvalidArgumentError) as e:
        _run(inputs)
    assert e.value.message == (f"{CORES_ENV}='{text}' refused by blitzNpuSimSetVectorCores: expected the number "
                               f"of vector cores, 1..64, got '{text}'")
    assert e.value.function == "blitzNpuSimSetVectorCores"
    assert library.load(library.NPU_SIM).live_objects()["tensors"] == 0


def test_the_core_count_passed_down_is_the_one_used(monkeypatch, sim_library):
    """Read by the binding at each call and passed down for the calling thread: the device line
    and the launch both show it; unset, the library's default (48)."""
    for cores in ("2", "8", "64"):
        monkeypatch.setenv(CORES_ENV, cores)
        assert _vector_cores(sim_library.device_info()) == cores
    monkeypatch.delenv(CORES_ENV)
    assert _vector_cores(sim_library.device_info()) == "48"
    sim_library.call("blitzNpuSimSetVectorCores", b"6")  # a C caller's own count, for this thread
    # On another thread, ensure_device passes the environment's count (unset: 48) for that thread.
    other = raw_info_on_another_thread(sim_library, lambda: cpu.ensure_device(sim_library))
    assert _vector_cores(other) == "48"
    assert _vector_cores(raw_info(sim_library)) == "6"
    cpu.ensure_device(sim_library)  # back to the environment's for the next test


def _vector_cores(info: str) -> str:
    """The device line's "vector cores N" field (a sanitizer build appends a note after it)."""
    fields = [f.strip() for f in info.split(";")]
    counts = [f[len("vector cores "):] for f in fields if f.startswith("vector cores ")]
    assert len(counts) == 1, info
    return counts[0]


_PURE_C_CALLER = """
from blitz_acl.devices import library
lib = library.load(library.NPU_SIM)
info = lib.ffi.new("const char **")
assert lib.lib.blitzCpuDeviceInfo(info) == 0
print(lib.ffi.string(info[0]).decode())
"""


def test_a_caller_that_never_sets_it_gets_the_default_not_the_environment():
    env = dict(os.environ, **{CORES_ENV: "8"})
    run = subprocess.run([sys.executable, "-c", _PURE_C_CALLER], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert _vector_cores(run.stdout.strip()) == "48", run.stdout


def test_float32_is_refused_with_the_tilings_message():
    inputs, _ = bounds.case_truth("dense", "float32")
    with pytest.raises(AclError, match="must all be float16 or bfloat16 on the NPU") as e:
        _run(inputs)
    assert e.value.status == ACLNN_ERR_PARAM_INVALID
    assert "aclnnBlitzSparseAttentionGetWorkspaceSize" in str(e.value)


def test_unsupported_head_dim_is_refused_with_the_tilings_message():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((1, 2, 64, 24)).astype(np.float16) for _ in range(3))
    with pytest.raises(AclError, match="head_dim 24 is not supported by the NPU kernel") as e:
        blitz_acl.blitz_sparse_attention(q, k, v, device="npu_sim")
    assert e.value.status == ACLNN_ERR_PARAM_INVALID


def _selected_tile_flops(case_name: str, inputs) -> int:
    """4 x rows x keys x D over the selected tiles (Q*K^T and P*V, 2 flops per multiply-add),
    with the partial last query / key block: what the cube cores must compute, no more."""
    case = CASES_BY_NAME[case_name]
    bq, bkv = case.block_shape
    sabi = inputs.kwargs["sabi"].astype(np.int64) & 0xFFFF
    total = 0
    for b, h, i in np.ndindex(*sabi.shape[:3]):
        rows = min(bq, case.seq_q - bq * i)
        for j in sabi[b, h, i]:
            if j != 0xFFFF:
                total += 4 * rows * min(bkv, case.seq_kv - bkv * int(j)) * case.head_dim
    return total


def test_counters_account_for_the_launch(monkeypatch):
    """One counter set per core of the launch; the cube FLOPs are exactly the selected tiles'
    (partial tiles at their real size), and the work totals do not depend on the core count."""
    inputs, _ = bounds.case_truth("sabi_random", "float16")
    totals = []
    for cores in (2, 8):
        monkeypatch.setenv(CORES_ENV, str(cores))
        _run(inputs)
        report = npu_sim.last_report()
        assert report["ok"] and len(report["cube"]) == report["block_dim"] and len(report["vector"]) == cores
        totals.append({key: sum(c[key] for c in report["cube"] + report["vector"])
                       for key in ("cube_flops", "gm_to_l1_bytes", "l0c_to_gm_bytes", "vector_elem_ops")})
    assert totals[0] == totals[1]
    assert totals[0]["cube_flops"] == _selected_tile_flops("sabi_random", inputs)
    assert totals[0]["gm_to_l1_bytes"] > 0 and totals[0]["vector_elem_ops"] > 0


# ---- counting-only mode (npu_sim.count_only): the seed-shape counters rest on these ----

# Unmasked cases (a masked launch reads the running max on the scalar unit, which counting-only
# mode refuses): partial tiles, sabi with empty rows, GQA, lengths, another layout, big tiles.
COUNTING_CASES = ("dense_129x513", "sabi_random", "sabi_empty_rows", "gqa", "lengths_kv", "layout_bsh",
                  "sabi_tile_256x1024")


def _count(inputs, **extra):
    return npu_sim.count_only(inputs.query, inputs.key, inputs.value, **{**inputs.kwargs, **extra})


@pytest.mark.parametrize("name", COUNTING_CASES)
def test_counting_only_counts_exactly_what_the_numeric_run_counts(name, monkeypatch):
    """Every counter of every core, counting-only vs numeric, equal exactly (two core counts);
    the counting run says so and hands back no output."""
    inputs, _ = bounds.case_truth(name, "bfloat16")
    for cores in (2, 8):
        monkeypatch.setenv(CORES_ENV, str(cores))
        _run(inputs)
        numeric = npu_sim.last_report()
        counted = _count(inputs)
        assert numeric["ok"] and not numeric["counting_only"]
        assert counted["ok"] and counted["counting_only"]
        assert set(counted) >= {"cube", "vector", "plan", "counters"}
        assert counted["cube"] == numeric["cube"], f"{name}, {cores} cores: cube counters differ"
        assert counted["vector"] == numeric["vector"], f"{name}, {cores} cores: vector counters differ"
        assert counted["plan"] == numeric["plan"]
        assert sum(c["matmul_calls"] for c in counted["cube"]) > 0


def test_counting_only_refuses_a_launch_steered_by_computed_data():
    """A causal launch reads each row's running max on the scalar unit (ClearMaskedRows): a
    count without that arithmetic could differ from the real one, so it stops and says why."""
    inputs, _ = bounds.case_truth("mode3_q_lt_kv", "float16")
    with pytest.raises(AclError, match="cannot be counted without computing it"):
        _count(inputs)
    _run(inputs)  # the next ordinary call computes as usual
    assert not npu_sim.last_report()["counting_only"]


def test_a_counting_only_launch_never_hands_back_outputs():
    """Armed at the C level and then called through the public API, the library fails the call
    (counting-only status) rather than return its untouched outputs; disarmed, it computes."""
    inputs, truth = bounds.case_truth("sabi_random", "float16")
    lib = library.load(library.NPU_SIM)
    lib.call("blitzNpuSimCountNextCall", 1)
    try:
        with pytest.raises(AclError, match="nothing was computed"):
            _run(inputs)
    finally:
        lib.call("blitzNpuSimCountNextCall", 0)
    assert npu_sim.last_report()["counting_only"]
    out, lse = _run(inputs)
    bounds.assert_within(out, truth, "BNSD", lse, what="npu_sim after a counting-only launch")


def test_counted_tile_traffic_equals_the_tilings_plan():
    """bench/npu_sim_counts.py's check at a small shape: GM -> L1, L0C -> GM, UB -> GM and the
    matmul calls of a counting-only launch are exactly what the plan's blocking implies for the
    selected tiles (partial last blocks included)."""
    from bench import npu_sim_counts

    row = npu_sim_counts.counters(1, 3, 1500, 128, 0.5, counting=True)
    assert row["counting_only"] and row["plan_exact"], row["planned"]
    assert 0 <= row["scan_gm_to_ub_bytes"] <= 2 * row["vector_cores"] * 2 * 3 * 12 * 3  # two sabi passes per core


def test_device_info_names_the_model():
    assert "NPU execution model" in library.load(library.NPU_SIM).device_info()


# ---- the standalone C program (tests/c/c_abi_test.c) against libblitz_npu_sim.so ----

C_ATOL_FP16 = 4e-3  # float16 output rounding (|out| < 1) plus P rounded to fp16 before P*V


@pytest.fixture(scope="module")
def c_test_binary_sim(tmp_path_factory, sim_library):
    import subprocess

    import test_c_abi

    cmake = test_c_abi._cmake()
    build = tmp_path_factory.mktemp("c_abi_sim_build")
    subprocess.run([cmake, "-S", str(test_c_abi.C_TEST_DIR), "-B", str(build),
                    f"-DBLITZ_CPU_LIBRARY={sim_library.path}"], check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build), "--target", "blitz_c_abi_test", "blitz_upstream_example"],
                   check=True, capture_output=True)
    return build / "blitz_c_abi_test"


def test_upstream_example_runs_on_the_sim_library(c_test_binary_sim):
    """tests/c/upstream_example.c (the original's documented usage: 27-parameter call, NULL
    blockShape, fp16, padded bool mask, actual lengths, lse, its cleanup) linked against
    libblitz_npu_sim.so instead of the CPU device: the NPU kernel through the execution model
    must match the double reference the program computes itself."""
    import subprocess

    run = subprocess.run([str(c_test_binary_sim.parent / "blitz_upstream_example")], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "max |out - ref|" in run.stdout


def _write_fp16_case(path, perturb: float = 0.0):
    import test_c_abi as c
    import oracle
    from blitz_acl import sabi as S

    rng = np.random.default_rng(0)
    q = rng.standard_normal((c.B, c.N, c.SQ, c.D)).astype(np.float16)
    k = rng.standard_normal((c.B, c.NKV, c.SKV, c.D)).astype(np.float16)
    v = rng.standard_normal((c.B, c.NKV, c.SKV, c.D)).astype(np.float16)
    sabi = S.random_pattern(c.B, c.N, c.SQ, c.SKV, 0.5, seed=0, block_shape=c.BLOCK, shuffle=True)
    out, lse = oracle.attention(q.astype(np.float32), k.astype(np.float32), v.astype(np.float32), sabi,
                                   num_key_value_heads=c.NKV, block_shape=c.BLOCK, sparse_mode=c.SPARSE_MODE,
                                   return_lse=True)
    out = np.array(out, dtype=np.float32)
    out.flat[0] += perturb
    header = np.array([c.B, c.N, c.NKV, c.SQ, c.SKV, c.D, *sabi.shape[2:], *c.BLOCK, c.SPARSE_MODE], dtype="<i8")
    with open(path, "wb") as f:
        for arr, dtype in ((header, "<i8"), (q, "<f2"), (k, "<f2"), (v, "<f2"), (sabi, "<u2"),
                           (out, "<f4"), (lse, "<f4"), (np.array([C_ATOL_FP16]), "<f8")):
            f.write(np.ascontiguousarray(arr, dtype=dtype).tobytes())


@pytest.mark.parametrize("perturb", [0.0, 1.0], ids=["matches", "perturbed_fails"])
def test_c_program_runs_on_the_sim_library(c_test_binary_sim, tmp_path, perturb):
    """The C ABI test program, unchanged but for its float16 mode, through libblitz_npu_sim.so;
    a perturbed expectation makes it fail, so it can."""
    import subprocess

    case = tmp_path / "case.bin"
    _write_fp16_case(case, perturb)
    run = subprocess.run([str(c_test_binary_sim), str(case), "float16"], capture_output=True, text=True,
                         timeout=300)
    if perturb:
        assert run.returncode == 1 and "max |out - ref| = 1" in run.stdout, run.stdout + run.stderr
    else:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "live objects 0" in run.stdout
