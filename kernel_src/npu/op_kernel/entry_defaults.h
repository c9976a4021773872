// What opbuild defines for each kernel binary of the custom-op package, given defaults here so
// both ops' entry points (kernel_entry.h, select_entry.h) also type-check without CANN.
#pragma once

#ifndef GET_TILING_DATA_WITH_STRUCT
// opbuild generates this macro for the op's kernel build; the fallback exists only so the
// sources type-check on machines without CANN (ascendc-check): a plain copy of the struct.
#define GET_TILING_DATA_WITH_STRUCT(tiling_struct, tiling_data, tiling_arg) \
  tiling_struct tiling_data = *reinterpret_cast<__gm__ tiling_struct *>(tiling_arg)
#endif

// The input dtype of this binary: opbuild defines DTYPE_<INPUT> per dtype combination.
#ifndef DTYPE_QUERY
#define DTYPE_QUERY half
#endif
