"""The standalone C test (tests/c): built with CMake against the library the binding loads,
run on a case whose expected values the float64 reference writes to a file."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import oracle
from blitz_acl import sabi as S
from blitz_acl.devices import library

C_TEST_DIR = Path(__file__).resolve().parent / "c"
ATOL = 1e-4
# GQA, partial tiles in both dims, shuffled sabi with -1 holes, causal bottom-right mask.
B, N, NKV, SQ, SKV, D = 2, 4, 2, 200, 700, 32
BLOCK = (64, 128)
SPARSE_MODE = 3
HEADER_FIELDS = 11  # the int64 header of the case file (tests/c/c_abi_test.c)


def _cmake() -> str:
    found = shutil.which("cmake") or str(Path(sys.executable).parent / "cmake")
    if not Path(found).exists():
        pytest.skip("cmake not found")
    return found


@pytest.fixture(scope="module")
def c_test_binary(tmp_path_factory):
    cmake = _cmake()
    build = tmp_path_factory.mktemp("c_abi_build")
    lib_path = library.load().path
    subprocess.run([cmake, "-S", str(C_TEST_DIR), "-B", str(build), f"-DBLITZ_CPU_LIBRARY={lib_path}"],
                   check=True, capture_output=True)
    subprocess.run([cmake, "--build", str(build)], check=True, capture_output=True)
    return build / "blitz_c_abi_test"


def _write_case(path: Path) -> None:
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, N, SQ, D), dtype=np.float32)
    k = rng.standard_normal((B, NKV, SKV, D), dtype=np.float32)
    v = rng.standard_normal((B, NKV, SKV, D), dtype=np.float32)
    sabi = S.random_pattern(B, N, SQ, SKV, 0.5, seed=0, block_shape=BLOCK, shuffle=True)
    out, lse = oracle.attention(q, k, v, sabi, num_key_value_heads=NKV, block_shape=BLOCK,
                                   sparse_mode=SPARSE_MODE, return_lse=True)
    header = np.array([B, N, NKV, SQ, SKV, D, *sabi.shape[2:], *BLOCK, SPARSE_MODE], dtype="<i8")
    with open(path, "wb") as f:
        for arr, dtype in ((header, "<i8"), (q, "<f4"), (k, "<f4"), (v, "<f4"), (sabi, "<u2"),
                           (out, "<f4"), (lse, "<f4"), (np.array([ATOL]), "<f8")):
            f.write(np.ascontiguousarray(arr, dtype=dtype).tobytes())


def test_c_program_matches_the_reference(c_test_binary, tmp_path):
    case = tmp_path / "case.bin"
    _write_case(case)
    run = subprocess.run([str(c_test_binary), str(case)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "live objects 0" in run.stdout


def test_c_program_fails_on_a_wrong_expectation(c_test_binary, tmp_path):
    """The C test can fail: a perturbed expected output is caught."""
    case = tmp_path / "case.bin"
    _write_case(case)
    data = bytearray(case.read_bytes())
    header_bytes = 8 * HEADER_FIELDS
    rows, width = np.frombuffer(bytes(data[:header_bytes]), dtype="<i8")[6:8]
    # The first expected output value: after the header, q, k, v and sabi.
    offset = header_bytes + 4 * (B * N * SQ * D + 2 * B * NKV * SKV * D) + 2 * B * N * int(rows) * int(width)
    value = np.frombuffer(bytes(data[offset:offset + 4]), dtype="<f4")[0]
    data[offset:offset + 4] = np.array([value + 1.0], dtype="<f4").tobytes()
    case.write_bytes(bytes(data))
    run = subprocess.run([str(c_test_binary), str(case)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and "max |out - ref| = 1" in run.stdout


def test_upstream_example_runs_and_matches_its_double_reference(c_test_binary):
    """tests/c/upstream_example.c: the original's documented example (27-parameter call, NULL
    blockShape = (128, 128), fp16, a bool mask padded to 32 keys, actual lengths, lse), cleanup
    with aclrtResetDevice and aclFinalize, checked against the double reference it computes."""
    run = subprocess.run([str(c_test_binary.parent / "blitz_upstream_example")], capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "max |out - ref|" in run.stdout


def test_include_dir_holds_the_public_headers(tmp_path):
    """python -m blitz_acl --include-dir names a directory a CANN user's includes work with."""
    import blitz_acl

    # Run outside the checkout, with the package this test imported first on the path: `python -m`
    # puts its working directory first on sys.path, and `python -m pytest` does the same for the
    # test, so either could otherwise see the source tree while the other sees site-packages.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(blitz_acl.__file__).parent.parent), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, "-m", "blitz_acl", "--include-dir"], capture_output=True, text=True,
                         check=True, cwd=tmp_path, env=env)
    include = Path(run.stdout.strip())
    assert include == blitz_acl.include_dir()
    for header in ("acl/acl.h", "aclnn/acl_meta.h", "aclnnop/aclnn_blitz_sparse_attention.h", "blitz_acl/blitz_cpu.h"):
        assert (include / header).is_file(), header
    run = subprocess.run([sys.executable, "-m", "blitz_acl", "--library"], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env=env)
    assert Path(run.stdout.strip()) == library.load().path
