#!/usr/bin/env bash
# Builds the device libraries for development.
#   CPU device (always): CMake -> build/ (or build-sanitize/), then libblitz_cpu.so is copied
#   into blitz_acl/_lib/ where the binding finds it (a --sanitize build is not copied: it needs
#   the sanitizer runtime preloaded, and the line to do that is printed instead).
#   NPU custom-op package: only where CANN is installed (see build_npu below).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB_NAME="libblitz_cpu.so"

usage() {
  cat <<USAGE
Usage: ./build_kernel.sh [--sanitize] [--jobs N] [--help]

Builds the CPU device library ($LIB_NAME) with CMake and copies it to blitz_acl/_lib/,
where \`import blitz_acl\` finds it; then builds the NPU custom-op package where CANN is
installed (ASCEND_HOME_PATH or ASCEND_TOOLKIT_HOME set), and says so and skips it otherwise.

  --sanitize   AddressSanitizer + UndefinedBehaviorSanitizer build (-DBLITZ_SANITIZE=ON) in
               build-sanitize/; not copied to blitz_acl/_lib/. Prints the environment that runs
               the tests against it (BLITZ_ACL_CPU_LIBRARY and LD_PRELOAD).
  --jobs N     parallel build jobs (default: the number of CPUs)
  --help       this text

Environment: CMAKE (the cmake to use), BLITZ_ACL_CPU_LIBRARY (read by the binding: a library
path that overrides blitz_acl/_lib/).
USAGE
}

SANITIZE=0
JOBS="$(nproc 2>/dev/null || echo 2)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --sanitize) SANITIZE=1 ;;
    --jobs) JOBS="$2"; shift ;;
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

build_cpu() {
  local cmake build_dir generator=()
  cmake="$(find_cmake)"
  if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
  if [[ $SANITIZE -eq 1 ]]; then
    build_dir="$ROOT/build-sanitize"
    "$cmake" -S "$ROOT" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBLITZ_SANITIZE=ON
  else
    build_dir="$ROOT/build"
    "$cmake" -S "$ROOT" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release
  fi
  "$cmake" --build "$build_dir" --parallel "$JOBS"
  local lib="$build_dir/kernel_src/cpu/$LIB_NAME"
  if [[ $SANITIZE -eq 1 ]]; then
    echo "CPU device (sanitized): $lib"
    echo "Run the tests against it with:"
    echo "  BLITZ_ACL_CPU_LIBRARY=$lib LD_PRELOAD=\"\$(gcc -print-file-name=libasan.so) \$(gcc -print-file-name=libubsan.so)\" ASAN_OPTIONS=detect_leaks=0 python -m pytest tests"
  else
    mkdir -p "$ROOT/blitz_acl/_lib"
    cp "$lib" "$ROOT/blitz_acl/_lib/$LIB_NAME"
    echo "CPU device: $lib -> blitz_acl/_lib/$LIB_NAME"
  fi
}

# ---------------------------------------------------------------------------------------------
# NPU custom-op package (helper NPU fills this in). Where CANN is installed it builds the
# kernel_src/npu custom-op project and installs it; elsewhere it says why it is skipped.
build_npu() {
  local cann="${ASCEND_HOME_PATH:-${ASCEND_TOOLKIT_HOME:-}}"
  if [[ -z "$cann" ]]; then
    echo "NPU package: skipped (CANN not found: neither ASCEND_HOME_PATH nor ASCEND_TOOLKIT_HOME is set)"
    return 0
  fi
  echo "NPU package: CANN found at $cann, but building the custom-op package is not implemented yet"
}
# ---------------------------------------------------------------------------------------------

build_cpu
build_npu
