// The model's stand-in for CANN's lib/matmul_intf.h (the Matmul high-level API).
#pragma once

#include "kernel_operator.h"
#include "blitz_sim/matmul.h"
