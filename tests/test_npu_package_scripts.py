"""The NPU package's shell scripts, run here on fake trees (no CANN needed): the package's
install.sh (both install modes) and build.sh's refusal without CANN. The NPU runtime's
discovery (tests/test_npu_runtime.py) must find what install.sh installs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from blitz_acl.devices import npu_library

ROOT = Path(__file__).resolve().parents[1]
NPU = ROOT / "kernel_src" / "npu"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash is not available")


def extracted_package(tmp_path: Path, vendor: str = "blitz_acl") -> Path:
    """What the .run extracts: scripts' install.sh beside packages/vendors/<vendor>/..."""
    pkg = tmp_path / "pkg"
    lib = pkg / "packages" / "vendors" / vendor / "op_api" / "lib"
    lib.mkdir(parents=True)
    (lib / "libcust_opapi.so").write_bytes(b"\x7fELF fake")
    shutil.copy(NPU / "scripts" / "install.sh", pkg / "install.sh")
    return pkg


def run(cmd, cwd, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ASCEND")}
    full_env.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=60)


def test_install_path_mode_writes_set_env_that_discovery_follows(tmp_path):
    pkg = extracted_package(tmp_path)
    target = tmp_path / "opp install"  # a space in the path must survive
    result = run([BASH, "install.sh", f"--install-path={target}/"], pkg)
    assert result.returncode == 0, result.stderr
    vendor_dir = target / "vendors" / "blitz_acl"
    assert (vendor_dir / "op_api" / "lib" / "libcust_opapi.so").is_file()
    set_env = vendor_dir / "bin" / "set_env.bash"
    assert result.stdout.splitlines()[-1] == f'source "{set_env}"'
    # Source it in a shell with a prior entry and read the variable back.
    shown = run([BASH, "-c", f'export ASCEND_CUSTOM_OPP_PATH=/prior; source "{set_env}"; '
                              'echo "$ASCEND_CUSTOM_OPP_PATH"'], tmp_path)
    value = shown.stdout.strip()
    assert value == f"{vendor_dir}:/prior"
    assert npu_library.custom_op_candidates({"ASCEND_CUSTOM_OPP_PATH": value})[0] == \
        vendor_dir / "op_api" / "lib" / "libcust_opapi.so"


def test_opp_mode_puts_the_vendor_first_in_config_ini(tmp_path):
    pkg = extracted_package(tmp_path)
    opp = tmp_path / "opp"
    (opp / "vendors").mkdir(parents=True)
    (opp / "vendors" / "config.ini").write_text("load_priority=customize,blitz_acl,other\n")
    result = run([BASH, "install.sh", "--quiet"], pkg, {"ASCEND_OPP_PATH": str(opp)})
    assert result.returncode == 0, result.stderr
    assert (opp / "vendors" / "config.ini").read_text().strip() == "load_priority=blitz_acl,customize,other"
    assert npu_library.custom_op_candidates({"ASCEND_OPP_PATH": str(opp)})[0] == \
        opp / "vendors" / "blitz_acl" / "op_api" / "lib" / "libcust_opapi.so"


def test_opp_mode_without_ascend_opp_path_fails_clearly(tmp_path):
    pkg = extracted_package(tmp_path)
    result = run([BASH, "install.sh"], pkg)
    assert result.returncode != 0
    assert "ASCEND_OPP_PATH" in result.stderr and "--install-path" in result.stderr


def test_build_sh_without_cann_says_what_to_set(tmp_path):
    result = run([BASH, str(NPU / "build.sh")], tmp_path)
    assert result.returncode != 0
    assert "ASCEND_HOME_PATH" in result.stderr and "ASCEND_TOOLKIT_HOME" in result.stderr


def test_build_sh_names_the_template_locations_it_tried(tmp_path):
    result = run([BASH, str(NPU / "build.sh"), "--out", str(tmp_path / "out")], tmp_path,
                 {"ASCEND_HOME_PATH": str(tmp_path / "cann")})
    assert result.returncode != 0
    assert "op-project template" in result.stderr and str(tmp_path / "cann") in result.stderr


# Stand-ins for the helpers CANN's op-project template provides (cmake/*.cmake), just enough to
# run our CMakeLists' configure step: they record what our files hand them.
FAKE_FUNC_CMAKE = r'''
function(opbuild)
  cmake_parse_arguments(OPBUILD "" "OUT_DIR" "OPS_SRC" ${ARGN})
  foreach(s ${OPBUILD_OPS_SRC})
    if(NOT EXISTS ${s})
      message(FATAL_ERROR "opbuild: missing source ${s}")
    endif()
  endforeach()
  foreach(f op_proto.cc op_proto.h aclnn_blitz_sparse_attention.cpp aclnn_blitz_sparse_attention.h)
    file(WRITE ${OPBUILD_OUT_DIR}/${f} "")
  endforeach()
  message(STATUS "fake-opbuild: ${OPBUILD_OPS_SRC}")
endfunction()
function(add_ops_compile_options OP_TYPE)
  cmake_parse_arguments(OPC "" "" "COMPUTE_UNIT;OPTIONS" ${ARGN})
  message(STATUS "fake-kernel-options: ${OP_TYPE} ${OPC_OPTIONS}")
endfunction()
function(add_kernels_compile)
  message(STATUS "fake-kernels: ${ASCEND_COMPUTE_UNIT} vendor ${vendor_name}")
endfunction()
function(get_system_info out)
  set(${out} linux_x86_64 PARENT_SCOPE)
endfunction()
'''


def fake_template(root: Path) -> Path:
    """A fake CANN op-project template (ascendc/customize/cmake/...) under `root`."""
    cmake_dir = root / "ascendc" / "customize" / "cmake"
    (cmake_dir / "util").mkdir(parents=True)
    (cmake_dir / "config.cmake").write_text(
        "set(ASCEND_AUTOGEN_PATH ${CMAKE_BINARY_DIR}/autogen)\nfile(MAKE_DIRECTORY ${ASCEND_AUTOGEN_PATH})\n")
    (cmake_dir / "func.cmake").write_text(FAKE_FUNC_CMAKE)
    (cmake_dir / "intf.cmake").write_text("add_library(intf_pub INTERFACE)\n")
    (cmake_dir / "makeself.cmake").write_text("")
    (cmake_dir / "util" / "gen_version_info.sh").write_text("true\n")
    return cmake_dir.parent


def configure_only(tmp_path: Path):
    out = tmp_path / "out"
    result = run([BASH, str(NPU / "build.sh"), "--out", str(out), "--soc", "ascend910_93",
                  "--configure-only"], tmp_path, {"ASCEND_HOME_PATH": str(tmp_path / "cann")})
    return result, out / "stage"


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not on PATH")
def test_build_sh_stages_and_configures_against_the_template(tmp_path):
    """build.sh stages our project with kernel_src/common's headers inside op_kernel/ (so the
    source package carries them), the template's cmake/ and help.info; our CMakeLists hand
    opbuild every op_host source and the kernel build its include path and the original's
    compile options (auto-sync off)."""
    fake_template(tmp_path / "cann" / "tools" / "op_project_templates")
    result, stage = configure_only(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("blitz_sparse_attention_def.cpp", "blitz_sparse_attention_tiling.cpp",
                 "blitz_sparse_attention_infershape.cpp", "tiling_plan.cpp"):
        assert str(stage / "npu" / "op_host" / name) in result.stdout
    kernel_dir = stage / "npu" / "op_kernel"
    assert (f"fake-kernel-options: ALL -I{kernel_dir};--cce-auto-sync=off;-Wno-deprecated-declarations;"
            "-mllvm;-cce-aicore-hoist-movemask=false") in result.stdout
    assert "fake-kernels: ascend910_93 vendor blitz_acl" in result.stdout
    common = sorted(p.name for p in (ROOT / "kernel_src" / "common").glob("*.h"))
    assert common and all((kernel_dir / name).is_file() for name in common)
    assert (kernel_dir / "blitz_sparse_attention.cpp").is_file()
    # makeself runs with --help-header ./help.info in the package root, where scripts/ lands.
    assert (stage / "npu" / "scripts" / "help.info").read_text().strip()


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not on PATH")
def test_build_sh_finds_a_template_at_an_unlisted_path(tmp_path):
    fake_template(tmp_path / "cann" / "some" / "other" / "templates")
    result, stage = configure_only(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (stage / "npu" / "cmake" / "func.cmake").is_file()
