#!/usr/bin/env bash
# The CPU device on aarch64, emulated on an x86-64 Debian 12 machine (issue 12):
#   1. installs Debian's g++-aarch64-linux-gnu and qemu-user with apt-get (skipped where present;
#      also cmake and ninja where missing): nothing but Debian's registry is needed;
#   2. cross-builds libblitz_cpu.so, tests/cpp and tests/c with toolchain-aarch64.cmake into
#      build-aarch64/ (--all-libraries: also libblitz_npu_sim.so, the rest of what `pip install .`
#      builds; it has no aarch64-specific code and takes most of the build time);
#   3. runs them under qemu-aarch64 -L /usr/aarch64-linux-gnu on two emulated CPUs: `max` (NEON +
#      BF16: kernel paths portable, neon, neon_bf16) and one without BF16 (portable, neon). Each
#      run must report exactly those paths; tests/cpp checks every path against its float64
#      reference (all of it on `max`, the path tests on the other), tests/c runs the C ABI test
#      and the original's example on every path;
#   4. a Python smoke test (smoke.py: blitz_sparse_attention on device="cpu" vs a float64 softmax
#      on every path) with Debian's arm64 python3 + numpy + cffi, unpacked into
#      build-aarch64/pyroot (never installed: python3:arm64 would replace the host's python3).
#
# EMULATED TIMINGS MEAN NOTHING: qemu translates every instruction; nothing here measures speed,
# and no line it prints is a performance figure. None of this has run on aarch64 hardware.
#
# Usage: tests/aarch64/run_emulated.sh [--no-python] [--all-libraries] [--jobs N] [--build-dir DIR]
# Environment: PYTHON (a host Python with numpy + pytest, writes the C ABI test's case file from
# the float64 oracle; default python3).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO="$PWD"

BUILD="build-aarch64"
JOBS=2
WITH_PYTHON=1
TARGETS=(blitz_cpu blitz_kernel_tests blitz_c_abi_test blitz_upstream_example)
while [ $# -gt 0 ]; do
  case "$1" in
    --no-python) WITH_PYTHON=0 ;;
    --all-libraries) TARGETS+=(blitz_npu_sim) ;;
    --jobs) JOBS="$2"; shift ;;
    --build-dir) BUILD="$2"; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
BUILD="$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)"
SYSROOT=/usr/aarch64-linux-gnu
PYTHON="${PYTHON:-python3}"
start=$SECONDS
step() { echo "== aarch64: $1 (at $((SECONDS - start)) s)"; }
echo "NOTE: everything below runs under qemu-user emulation; emulated timings mean nothing."

# ---- 1. tools from Debian ----
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "root (or sudo) is needed for: $*" >&2; exit 1
  fi
}
# apt-get, waiting while another process holds dpkg's or apt's lock (shared machines, CI).
apt_retry() {
  local log tries=0
  log="$(mktemp)"
  while true; do
    if as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >"$log" 2>&1; then
      rm -f "$log"; return 0
    fi
    if grep -qi "lock" "$log" && [ $((tries += 1)) -lt 20 ]; then
      echo "apt is locked by another process; retrying in 15 s"; sleep 15; continue
    fi
    cat "$log" >&2; rm -f "$log"; return 1
  done
}
APT_UPDATED=0
apt_update() { [ "$APT_UPDATED" = 1 ] || { apt_retry update -qq; APT_UPDATED=1; }; }
apt_install() { apt_update; apt_retry install -y -qq --no-install-recommends "$@"; }

missing=()
command -v aarch64-linux-gnu-g++ >/dev/null || missing+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v cmake >/dev/null || missing+=(cmake)
command -v ninja >/dev/null || command -v make >/dev/null || missing+=(ninja-build)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (apt-get)"
  apt_install "${missing[@]}"
else
  step "tools present (aarch64-linux-gnu-g++, qemu-aarch64, cmake): no install"
fi
echo "$(aarch64-linux-gnu-g++ --version | head -1); $(qemu-aarch64 --version | head -1)"

# The emulated CPUs: `max` has FEAT_BF16; the first of these named cores that this qemu knows has
# not (Neoverse N1 is the core class of Kunpeng 920 / Graviton 2: fp16 + dot product, no BF16).
NO_BF16_CPU=""
cpu_list="$(qemu-aarch64 -cpu help 2>&1 || true)"
for c in neoverse-n1 cortex-a76 cortex-a72 cortex-a57; do
  if grep -qw -- "$c" <<<"$cpu_list"; then NO_BF16_CPU="$c"; break; fi
done
[ -n "$NO_BF16_CPU" ] || { echo "qemu-aarch64 knows none of the expected CPU models:" >&2; echo "$cpu_list" >&2; exit 1; }

# ---- 2. cross build ----
step "cross-building ${TARGETS[*]} (aarch64-linux-gnu, Release)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$REPO" -B "$BUILD" "${generator[@]}" -DCMAKE_TOOLCHAIN_FILE="$REPO/tests/aarch64/toolchain-aarch64.cmake" \
    -DCMAKE_BUILD_TYPE=Release -DBLITZ_BUILD_TESTS=ON >"$BUILD/configure.log" 2>&1 || { cat "$BUILD/configure.log"; exit 1; }
fi
cmake --build "$BUILD" --parallel "$JOBS" --target "${TARGETS[@]}"
file_info="$(od -An -j18 -N2 -tx2 "$BUILD/kernel_src/cpu/libblitz_cpu.so" | tr -d ' ')"
[ "$file_info" = "00b7" ] || { echo "libblitz_cpu.so is not an aarch64 ELF (e_machine $file_info)" >&2; exit 1; }

# The C ABI test's case file: expected values from the float64 oracle (tests/oracle.py), written
# by tests/test_c_abi.py's own writer on the host (the file is little endian on both).
CASE=""
if "$PYTHON" -c "import numpy, pytest" 2>/dev/null; then
  CASE="$BUILD/c_abi_case.bin"
  (cd "$REPO/tests" && PYTHONPATH="$REPO/tests:$REPO${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -c \
    "import sys, pathlib, test_c_abi; test_c_abi._write_case(pathlib.Path(sys.argv[1]))" "$CASE")
else
  echo "NOTE: $PYTHON has no numpy + pytest: blitz_c_abi_test (its case file comes from the host's float64 oracle) is not run"
fi

# ---- 4's root: Debian's arm64 Python, unpacked, not installed ----
PYROOT="$BUILD/pyroot"
setup_python_root() {
  [ -f "$PYROOT/.complete" ] && return 0
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    as_root dpkg --add-architecture arm64
    APT_UPDATED=0
  fi
  apt_update
  local top=(python3:arm64 python3-numpy:arm64 python3-cffi-backend:arm64 libstdc++6:arm64)
  local pkgs
  # The arm64 closure of their dependencies, plus cffi's pure-Python parts (Architecture: all).
  # apt-cache lists every alternative of a dependency: of the BLAS / LAPACK providers only the
  # reference libblas3 / liblapack3 are kept, and tools that nothing here runs are left out.
  mapfile -t pkgs < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${top[@]}" | grep -E '^[a-z0-9][a-z0-9.+-]*:arm64$' |
    grep -Ev '^(libopenblas|libblis|libatlas|dpkg:|tar:|install-info:)' | sort -u)
  pkgs+=(python3-cffi python3-pycparser python3-ply)
  rm -rf "$BUILD/debs" "$PYROOT"
  mkdir -p "$BUILD/debs" "$PYROOT"
  (cd "$BUILD/debs" && apt-get download -qq "${pkgs[@]}" 2>&1 | grep -v "unsandboxed" || true)
  local n=0
  for deb in "$BUILD/debs"/*.deb; do dpkg-deb -x "$deb" "$PYROOT"; n=$((n + 1)); done
  # Unpacked, not installed: no maintainer script ran, so make the links update-alternatives
  # would (numpy loads libblas.so.3 and liblapack.so.3 from the multiarch directory).
  local lib="$PYROOT/usr/lib/aarch64-linux-gnu"
  ln -sf blas/libblas.so.3 "$lib/libblas.so.3"
  ln -sf lapack/liblapack.so.3 "$lib/liblapack.so.3"
  echo "unpacked $n Debian arm64 packages into $PYROOT"
  touch "$PYROOT/.complete"
}
PYBIN=""
if [ "$WITH_PYTHON" = 1 ]; then
  step "aarch64 Python root (Debian python3, python3-numpy, python3-cffi for arm64)"
  setup_python_root
  PYBIN="$(ls "$PYROOT"/usr/bin/python3.[0-9]* 2>/dev/null | grep -E 'python3\.[0-9]+$' | head -1)"
  [ -n "$PYBIN" ] || { echo "no python3.X in $PYROOT/usr/bin" >&2; exit 1; }
fi

# ---- 3 and 4: run under qemu ----
# BLITZ_ACL_EMULATED tells tests/cpp's fork test why it must skip (qemu-user 7.2's fork bug).
guest() {  # guest CPU ROOT PROGRAM ARGS...
  local cpu="$1" root="$2"; shift 2
  env -u LD_PRELOAD -u LD_LIBRARY_PATH -u PYTHONHOME -u VIRTUAL_ENV BLITZ_ACL_EMULATED="qemu-aarch64 -cpu $cpu" \
    qemu-aarch64 -cpu "$cpu" -L "$root" "$@"
}
ran=()
for cpu in max "$NO_BF16_CPU"; do
  if [ "$cpu" = max ]; then expected="portable,neon,neon_bf16"; else expected="portable,neon"; fi
  # -cpu max runs all of tests/cpp on its three paths. The kernel code does not depend on the
  # CPU model, only the path detection does: the second CPU runs the path tests (which paths it
  # reports, forcing neon_bf16 there is an error), then tests/c and the Python smoke on its paths.
  filter=()
  [ "$cpu" = max ] || filter=(kernel_path)
  step "qemu -cpu $cpu: tests/cpp ${filter[*]:+(tests named *${filter[*]}*) }(expected kernel paths: $expected)"
  log="$BUILD/kernel_tests_$cpu.log"
  if ! guest "$cpu" "$SYSROOT" "$BUILD/tests/cpp/blitz_kernel_tests" "${filter[@]}" 2>&1 | tee "$log"; then
    echo "tests/cpp failed under qemu -cpu $cpu" >&2; exit 1
  fi
  grep -q "^CPU kernel paths tested: $expected;" "$log" ||
    { echo "tests/cpp under -cpu $cpu did not run exactly the paths $expected" >&2; exit 1; }
  for path in ${expected//,/ }; do
    step "qemu -cpu $cpu, path $path: tests/c"
    BLITZ_ACL_CPU_PATH="$path" guest "$cpu" "$SYSROOT" "$BUILD/tests/c/blitz_upstream_example"
    if [ -n "$CASE" ]; then
      BLITZ_ACL_CPU_PATH="$path" guest "$cpu" "$SYSROOT" "$BUILD/tests/c/blitz_c_abi_test" "$CASE"
    fi
  done
  if [ -n "$PYBIN" ]; then
    step "qemu -cpu $cpu: Python smoke (tests/aarch64/smoke.py)"
    BLITZ_ACL_CPU_LIBRARY="$BUILD/kernel_src/cpu/libblitz_cpu.so" PYTHONPATH="$REPO" PYTHONNOUSERSITE=1 \
      guest "$cpu" "$PYROOT" "$PYBIN" -B "$REPO/tests/aarch64/smoke.py" "$expected"
  fi
  ran+=("-cpu $cpu: $expected")
done
step "done"
echo "aarch64 under qemu-user (emulated; timings mean nothing): kernel paths run on $(IFS=';'; echo "${ran[*]}")"
