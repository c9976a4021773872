#!/bin/bash
# Builds the BlitzSparseAttention custom-op package (.run) with the CANN toolkit.
#
#   kernel_src/npu/build.sh [--soc ascend910b] [--vendor blitz_acl] [--out DIR] [--configure-only]
#
# Needs ASCEND_HOME_PATH or ASCEND_TOOLKIT_HOME (source <CANN>/set_env.sh first). The project is
# staged in DIR/stage (default build/npu at the repository root): our CMakeLists, op_host/,
# op_kernel/ with kernel_src/common's headers copied in, scripts/ (install.sh, help.info), and the project helpers (cmake/) of CANN's own
# op-project template. Prints the path of the .run it built on the last line
# (--configure-only: stage and run CMake's configure step, build nothing).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
soc=ascend910b
vendor=blitz_acl
out=$(cd "$here/../.." && pwd)/build/npu  # the repository's build/ (git-ignored)
configure_only=0
usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --soc) soc=$2; shift 2 ;;
    --soc=*) soc=${1#--soc=}; shift ;;
    --vendor) vendor=$2; shift 2 ;;
    --vendor=*) vendor=${1#--vendor=}; shift ;;
    --out) out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --configure-only) configure_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

cann=${ASCEND_HOME_PATH:-${ASCEND_TOOLKIT_HOME:-}}
[ -n "$cann" ] || { echo "build.sh: set ASCEND_HOME_PATH or ASCEND_TOOLKIT_HOME (source CANN's set_env.sh)" >&2; exit 1; }

# CANN's op-project template (where msopgen copies its cmake/ helpers from); the location moved
# between CANN releases, so try the known ones, then any .../ascendc/customize under the
# toolkit; ASCEND_OP_TEMPLATE=DIR names it outright.
template=""
for candidate in ${ASCEND_OP_TEMPLATE:+"$ASCEND_OP_TEMPLATE"} \
                 "$cann/tools/op_project_templates/ascendc/customize" \
                 "$cann/python/site-packages/op_gen/template/ascendc/customize" \
                 "$cann/toolkit/tools/op_project_templates/ascendc/customize" \
                 "$cann/toolkit/python/site-packages/op_gen/template/ascendc/customize"; do
  if [ -f "$candidate/cmake/func.cmake" ]; then template=$candidate; break; fi
done
if [ -z "$template" ]; then
  found=$(find "$cann/" -maxdepth 8 -path '*/ascendc/customize/cmake/func.cmake' 2>/dev/null | head -1)
  [ -z "$found" ] || template=${found%/cmake/func.cmake}
fi
if [ -z "$template" ]; then
  echo "build.sh: CANN's op-project template (ascendc/customize/cmake/func.cmake) not found under $cann" >&2
  echo "  (looked in tools/op_project_templates, python/site-packages/op_gen/template, their toolkit/" >&2
  echo "  variants, then searched); set ASCEND_OP_TEMPLATE=<template dir>" >&2
  exit 1
fi

stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/npu"
cp -r "$template/cmake" "$stage/npu/cmake"
cp "$here/CMakeLists.txt" "$here/CMakePresets.json" "$stage/npu/"
cp -r "$here/op_host" "$here/op_kernel" "$here/scripts" "$stage/npu/"
# kernel_src/common's headers go beside the kernel sources (no name is in both), so the
# source package carries them; a clash would silently shadow one of them: refuse it.
for header in "$here/../common"/*.h; do
  [ ! -e "$stage/npu/op_kernel/$(basename "$header")" ] ||
    { echo "build.sh: $(basename "$header") is both in kernel_src/common and op_kernel" >&2; exit 1; }
  cp "$header" "$stage/npu/op_kernel/"
done

cmake -S "$stage/npu" -B "$stage/npu/build_out" --preset=default \
  -DASCEND_COMPUTE_UNIT="$soc" -Dvendor_name="$vendor" -DASCEND_CANN_PACKAGE_PATH="$cann"
[ "$configure_only" = 0 ] || { echo "configured in $stage/npu/build_out"; exit 0; }
jobs=$(nproc 2>/dev/null || echo 2)
cmake --build "$stage/npu/build_out" --target binary -j"$jobs"
cmake --build "$stage/npu/build_out" --target package -j"$jobs"
run=$(ls "$stage/npu/build_out"/custom_opp_*.run 2>/dev/null | head -1)
[ -n "$run" ] || { echo "build.sh: the build produced no custom_opp_*.run" >&2; exit 1; }
echo "$run"
