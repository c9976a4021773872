// Ascend C's Matmul API header: CANN installs it as lib/matmul_intf.h; the asc-devkit source
// tree (what ascendc-check reads) has it under include/adv_api/matmul/ without the lib/ prefix.
#pragma once

#if __has_include("lib/matmul_intf.h")
#include "lib/matmul_intf.h"
#else
#include "matmul_intf.h"
#endif
