"""The C/C++ suites from pytest: tests/cpp (kernel_src/common and the CPU kernel, every kernel
path this CPU has) through ctest, and tests/c's upstream_example (the original op's documented C
example against its own double reference). tests/c's c_abi_test runs in tests/test_c_abi.py.

Built with CMake + Ninja into build-pytest-cpp/ at the repository root, which is reused: a
second run only re-checks what changed. Skipped, with the reason, when cmake, ninja or a C/C++
compiler is missing.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build-pytest-cpp"
TARGETS = ("blitz_kernel_tests", "blitz_upstream_example")
BUILD_TIMEOUT = 900  # a first build on a busy 2-core machine; an up-to-date one takes seconds


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(found).exists():
        pytest.skip(f"{name} not found (pip install '.[test]' provides cmake and ninja)")
    return found


@pytest.fixture(scope="module")
def build_dir():
    cmake, ninja = _tool("cmake"), _tool("ninja")
    compilers = [os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++"),
                 os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")]
    if not all(compilers):
        pytest.skip("no C/C++ compiler found (CC/CXX, cc/c++, gcc/g++)")
    if not (BUILD / "build.ninja").exists():
        subprocess.run([cmake, "-S", str(ROOT), "-B", str(BUILD), "-G", "Ninja",
                        f"-DCMAKE_MAKE_PROGRAM={ninja}", "-DCMAKE_BUILD_TYPE=Release",
                        "-DBLITZ_BUILD_TESTS=ON"], check=True, capture_output=True, text=True)
    run = subprocess.run([cmake, "--build", str(BUILD), "-j", "2", "--target", *TARGETS],
                         capture_output=True, text=True, timeout=BUILD_TIMEOUT)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    return BUILD


def test_cpp_kernel_suite_passes_under_ctest(build_dir):
    ctest = _tool("ctest")
    run = subprocess.run([ctest, "--test-dir", str(build_dir), "-R", "^blitz_kernel_tests$",
                          "--output-on-failure"], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "100% tests passed" in run.stdout and "out of 1" in run.stdout, run.stdout[-2000:]


def test_upstream_c_example_runs(build_dir):
    run = subprocess.run([str(build_dir / "tests" / "c" / "blitz_upstream_example")],
                         capture_output=True, text=True, timeout=300, cwd=build_dir)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
