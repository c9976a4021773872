"""The NPU op's host tiling arithmetic, compiled with plain g++ (no CANN) and run here.

The checks themselves live in tests/npu_host/test_tiling_plan.cpp (sizes, tails, every layout,
GQA, block-shape rejections, unified-buffer and workspace sizes, the core split, token masks,
the kernel's column-range fills); this module builds that program against
kernel_src/npu/op_host/tiling_plan.cpp and kernel_src/common, with the sanitizers on, and fails
with the program's own report.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OP_HOST = ROOT / "kernel_src" / "npu" / "op_host"
SOURCES = [ROOT / "tests" / "npu_host" / "test_tiling_plan.cpp", OP_HOST / "tiling_plan.cpp"]
CXX = shutil.which("g++") or shutil.which("c++")
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined"]


def _build(out: Path, extra_flags: list[str]) -> subprocess.CompletedProcess:
    cmd = [CXX, "-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *extra_flags,
           f"-I{OP_HOST}", f"-I{ROOT / 'kernel_src' / 'common'}", *map(str, SOURCES), "-o", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++) on PATH")
def test_tiling_plan_checks(tmp_path):
    exe = tmp_path / "test_tiling_plan"
    build = _build(exe, SANITIZE)
    if build.returncode != 0 and "sanitize" in build.stderr:
        build = _build(exe, [])  # a toolchain without the sanitizer runtimes
    assert build.returncode == 0, f"compile failed:\n{build.stderr}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"tiling checks failed:\n{run.stderr}{run.stdout}"
    assert "all checks passed" in run.stdout


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++) on PATH")
def test_select_plan_checks(tmp_path):
    """BlitzSelectBlocks' host plan (tests/npu_host/test_select_plan.cpp against select_plan.cpp,
    which reads shapes and lengths with tiling_plan.cpp's readers), under the sanitizers."""
    exe = tmp_path / "test_select_plan"
    sources = [ROOT / "tests" / "npu_host" / "test_select_plan.cpp", OP_HOST / "select_plan.cpp",
               OP_HOST / "tiling_plan.cpp"]
    cmd = [CXX, "-std=c++17", "-O1", "-g", "-Wall", "-Wextra", "-Werror", *SANITIZE, f"-I{OP_HOST}",
           f"-I{ROOT / 'kernel_src' / 'common'}", *map(str, sources), "-o", str(exe)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    if build.returncode != 0 and "sanitize" in build.stderr:
        build = subprocess.run([c for c in cmd if c not in SANITIZE], capture_output=True, text=True)
    assert build.returncode == 0, f"compile failed:\n{build.stderr}"
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"select plan checks failed:\n{run.stderr}{run.stdout}"
    assert "all checks passed" in run.stdout


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (g++) on PATH")
def test_tiling_params_header_is_plain_cxx(tmp_path):
    """The shared tiling struct must compile without CANN (it is read by host and kernel)."""
    src = tmp_path / "params.cpp"
    src.write_text('#include "blitz_tiling_params.h"\n'
                   "static_assert(sizeof(blitz_npu::BlitzTilingParams) % 8 == 0, \"packed to 8\");\n"
                   "int main() { return 0; }\n")
    cmd = [CXX, "-std=c++17", "-Wall", "-Werror", "-fsyntax-only",
           f"-I{ROOT / 'kernel_src' / 'npu' / 'op_kernel'}", str(src)]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
