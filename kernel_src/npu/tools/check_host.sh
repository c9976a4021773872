#!/usr/bin/env bash
# Type-checks the op_host sources that need CANN (tiling glue, InferShape) on a machine without
# CANN, against the public headers of hicann/metadef (graph, exe_graph, register) and
# mirror-cann/asc-devkit (Matmul / SoftmaxFlashV2 tiling, platform). Two headers those trees
# do not hold are replaced for the check only, in a temporary directory: securec.h (Huawei's
# bounds-checked libc, a few prototypes) and platform/soc_spec.h (empty). A pass proves names,
# signatures and types against those headers; it does not link, load or run anything.
#
#   METADEF=<metadef tree> ASC_DEVKIT=<asc-devkit tree> kernel_src/npu/tools/check_host.sh
set -eu
M=${METADEF:?set METADEF to a hicann/metadef tree}
A=${ASC_DEVKIT:?set ASC_DEVKIT to a mirror-cann/asc-devkit tree}
here=$(cd "$(dirname "$0")/.." && pwd)
gen=$(mktemp -d)
trap 'rm -rf "$gen"' EXIT
mkdir -p "$gen/platform" "$gen/tiling" "$gen/kernel_tiling"
cat > "$gen/securec.h" <<'H'
#pragma once
#include <cstddef>
#include <cstdio>
#include <cstring>
typedef int errno_t;
#define EOK 0
inline errno_t memcpy_s(void *d, size_t, const void *s, size_t n) { std::memcpy(d, s, n); return 0; }
inline errno_t memset_s(void *d, size_t, int c, size_t n) { std::memset(d, c, n); return 0; }
inline errno_t memmove_s(void *d, size_t, const void *s, size_t n) { std::memmove(d, s, n); return 0; }
inline errno_t strcpy_s(char *d, size_t, const char *s) { std::strcpy(d, s); return 0; }
inline errno_t strncpy_s(char *d, size_t, const char *s, size_t n) { std::strncpy(d, s, n); return 0; }
template <typename... T> inline int sprintf_s(char *d, size_t n, const char *f, T... a) { return std::snprintf(d, n, f, a...); }
template <typename... T> inline int snprintf_s(char *d, size_t n, size_t, const char *f, T... a) { return std::snprintf(d, n, f, a...); }
H
echo '#pragma once' > "$gen/platform/soc_spec.h"
printf '#pragma once\n#include "adv_api/tiling_api.h"\n' > "$gen/tiling/tiling_api.h"
python3 "$A/impl/adv_api/cmake/scripts/gen_kernel_tiling_data_def.py" "$A/include/adv_api" \
  "$gen/kernel_tiling/kernel_tiling.h" >/dev/null
INC="-I $gen -I $M/inc/external -I $M/inc/external/asc -I $M/inc -I $M/pkg_inc -I $M/inc/graph -I $M/base -I $A/include/utils"
INC="$INC -I $A/include/adv_api -I $A/include -I $A/include/adv_api/matmul -I $A/include/adv_api/activation"
rc=0
# The generated OpDef (blitz_sparse_attention_def.cpp) needs graph/operator_reg.h, which these
# trees do not hold; it is checked by aclnn_gen's own tests, not here.
for src in "$here"/op_host/*.cpp; do
  case "$src" in *_def.cpp) continue ;; esac
  if g++ -std=c++17 -fsyntax-only -w $INC "$src"; then echo "ok   $(basename "$src")"; else echo "FAIL $(basename "$src")"; rc=1; fi
done
exit $rc
