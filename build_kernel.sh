#!/usr/bin/env bash
# Builds the device libraries for development.
#   Host device libraries (always): CMake -> build/ (or build-sanitize/, build-tsan/), then
#   libblitz_cpu.so (device cpu) and libblitz_npu_sim.so (device npu_sim: the NPU op run through
#   the Ascend C execution model) are copied into blitz_acl/_lib/ where the binding finds them
#   (a sanitizer build is not copied: it needs the sanitizer runtime preloaded, and the line to
#   do that is printed instead).
#   NPU custom-op package: only where CANN is installed (see build_npu below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB_NAME="libblitz_cpu.so"
SIM_LIB_NAME="libblitz_npu_sim.so"

usage() {
  cat <<USAGE
Usage: ./build_kernel.sh [--sanitize | --tsan] [--jobs N] [--soc SOC] [--install-path DIR] [--help]

Builds the CPU device library ($LIB_NAME) and the NPU execution model's library
($SIM_LIB_NAME, device npu_sim) with CMake and copies them to blitz_acl/_lib/,
where \`import blitz_acl\` finds it; then builds the NPU custom-op package where CANN is
installed (ASCEND_HOME_PATH or ASCEND_TOOLKIT_HOME set), and says so and skips it otherwise.

  --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build (-DBLITZ_SANITIZE=ON) in
               build-sanitize/; not copied to blitz_acl/_lib/. Prints the environment that runs
               the tests against it (BLITZ_ACL_CPU_LIBRARY, BLITZ_ACL_NPU_SIM_LIBRARY and
               LD_PRELOAD). Both libraries are built so.
  --tsan       ThreadSanitizer build (-DBLITZ_SANITIZE_THREAD=ON) in build-tsan/: the NPU
               execution model runs each core as a thread, so races between cores are real races
               there; not copied; prints the environment for tests/test_npu_sim.py.
  --jobs N     parallel build jobs (default: the number of CPUs)
  --soc SOC    NPU package: the Ascend SoC to compile the kernel for (default ascend910b;
               ascend910_93 for A3)
  --install-path DIR
               NPU package: where to install it (default \$HOME/.local/share/blitz_acl/opp);
               the line that makes it visible (source .../set_env.bash) is printed at the end
  --help       this text

Environment: CMAKE (the cmake to use), BLITZ_ACL_CPU_LIBRARY / BLITZ_ACL_NPU_SIM_LIBRARY (read
by the binding: a library path that overrides blitz_acl/_lib/).
USAGE
}

SANITIZE=0
TSAN=0
JOBS="$(nproc 2>/dev/null || echo 2)"
NPU_SOC=ascend910b
NPU_INSTALL_PATH="${HOME:-/tmp}/.local/share/blitz_acl/opp"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) SANITIZE=1 ;;
    --tsan) TSAN=1 ;;
    --jobs) JOBS="$2"; shift ;;
    --soc) NPU_SOC="$2"; shift ;;
    --install-path) NPU_INSTALL_PATH="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build_kernel.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

find_cmake() {
  if [[ -n "${CMAKE:-}" ]]; then echo "$CMAKE"; return; fi
  if command -v cmake >/dev/null 2>&1; then command -v cmake; return; fi
  # The cmake wheel from PyPI (pip install cmake) puts it beside the interpreter.
  local py_bin
  py_bin="$(dirname "$(command -v python3 || echo /usr/bin/python3)")"
  if [[ -x "$py_bin/cmake" ]]; then echo "$py_bin/cmake"; return; fi
  echo "build_kernel.sh: cmake not found; install it (pip install cmake) or set CMAKE" >&2
  exit 1
}

# Copies a shared library to dest so that a process which has dest loaded keeps its mapping:
# writing into a mapped .so in place changes the code under it (a crash, e.g. SIGBUS), while a
# rename gives dest a new inode and the old one lives on until its last user unmaps it. The
# temporary name is in dest's directory, so mv is a same-filesystem rename(2), which is atomic.
install_atomically() {
  local src="$1" dest="$2" tmp
  mkdir -p "$(dirname "$dest")"
  tmp="$(mktemp "$dest.tmp.XXXXXX")"
  if ! cp "$src" "$tmp" || ! chmod 755 "$tmp" || ! mv -f "$tmp" "$dest"; then
    rm -f "$tmp"
    echo "build_kernel.sh: could not install $src as $dest" >&2
    exit 1
  fi
}

build_cpu() {
  local cmake build_dir generator=()
  cmake="$(find_cmake)"
  if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
  if [[ $SANITIZE -eq 1 && $TSAN -eq 1 ]]; then
    echo "build_kernel.sh: --sanitize and --tsan cannot be combined (ASan and TSan exclude each other)" >&2
    exit 2
  fi
  if [[ $SANITIZE -eq 1 ]]; then
    build_dir="$ROOT/build-sanitize"
    "$cmake" -S "$ROOT" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLITZ_SANITIZE=ON
  elif [[ $TSAN -eq 1 ]]; then
    build_dir="$ROOT/build-tsan"
    "$cmake" -S "$ROOT" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLITZ_SANITIZE_THREAD=ON
  else
    build_dir="$ROOT/build"
    "$cmake" -S "$ROOT" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
  fi
  "$cmake" --build "$build_dir" --parallel "$JOBS"
  local lib="$build_dir/kernel_src/cpu/$LIB_NAME"
  local sim_lib="$build_dir/kernel_src/npu/sim/launcher/$SIM_LIB_NAME"
  if [[ $SANITIZE -eq 1 ]]; then
    echo "CPU device and NPU execution model (sanitized): $lib, $sim_lib"
    echo "Run the tests against them with:"
    echo "  BLITZ_ACL_CPU_LIBRARY=$lib BLITZ_ACL_NPU_SIM_LIBRARY=$sim_lib LD_PRELOAD=\"\$(gcc -print-file-name=libasan.so) \$(gcc -print-file-name=libubsan.so)\" ASAN_OPTIONS=detect_leaks=0 python -m pytest tests"
  elif [[ $TSAN -eq 1 ]]; then
    echo "NPU execution model (ThreadSanitizer): $sim_lib"
    echo "Run its tests with:"
    echo "  BLITZ_ACL_NPU_SIM_LIBRARY=$sim_lib LD_PRELOAD=\"\$(gcc -print-file-name=libtsan.so)\" python -m pytest tests/test_npu_sim.py"
  else
    install_atomically "$lib" "$ROOT/blitz_acl/_lib/$LIB_NAME"
    install_atomically "$sim_lib" "$ROOT/blitz_acl/_lib/$SIM_LIB_NAME"
    echo "CPU device: $lib -> blitz_acl/_lib/$LIB_NAME"
    echo "NPU execution model (device npu_sim): $sim_lib -> blitz_acl/_lib/$SIM_LIB_NAME"
  fi
}

# ---------------------------------------------------------------------------------------------
# NPU custom-op package (helper NPU fills this in). Where CANN is installed it builds the
# kernel_src/npu custom-op project and installs it; elsewhere it says why it is skipped.
build_npu() {
  local cann="${ASCEND_HOME_PATH:-${ASCEND_TOOLKIT_HOME:-}}"
  if [[ -z "$cann" ]]; then
    echo "NPU package: skipped (CANN not found: neither ASCEND_HOME_PATH nor ASCEND_TOOLKIT_HOME is set;"
    echo "  on an Ascend machine, source <CANN>/set_env.sh and run this again)"
    return 0
  fi
  local out="$ROOT/build/npu" run vendor=blitz_acl
  echo "NPU package: building for $NPU_SOC with CANN at $cann"
  "$ROOT/kernel_src/npu/build.sh" --soc "$NPU_SOC" --vendor "$vendor" --out "$out"
  run="$(ls "$out"/stage/npu/build_out/custom_opp_*.run 2>/dev/null | head -n 1)"
  if [[ -z "$run" ]]; then
    echo "build_kernel.sh: the NPU build produced no custom_opp_*.run under $out" >&2
    exit 1
  fi
  mkdir -p "$NPU_INSTALL_PATH"
  bash "$run" --quiet --install-path="$NPU_INSTALL_PATH"
  echo "NPU package: $run installed under $NPU_INSTALL_PATH"
  echo "Make it visible to CANN and blitz_acl (add this to your shell profile):"
  echo "  source \"$NPU_INSTALL_PATH/vendors/$vendor/bin/set_env.bash\""
}
# ---------------------------------------------------------------------------------------------

build_cpu
build_npu
