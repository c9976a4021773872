// The argument readers every op of the library shares (defined in op_checks.cpp, where
// BlitzSparseAttention first needed them): live-descriptor checks, the input layouts read as
// [batch, head, seq, head_dim] strides, and the per-batch length arrays, with one wording of each
// error. BlitzSelectBlocks (kernel_src/cpu/select) reads its query and key through them, so both
// ops accept exactly the same layouts and lengths.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/op_refusals.h"
#include "handles.h"
#include "kernel/attention_problem.h"

namespace blitz::cpu::cann_api {

// In the order of the spec's layout list (limits::kLayouts), which parse_layout indexes.
enum class Layout { kBNSD, kBSND, kBSH, kBNSD_BSND, kTND, kCount };
static_assert(sizeof(limits::kLayouts) / sizeof(limits::kLayouts[0]) == size_t(Layout::kCount),
              "the spec's layouts and this enum differ");

// A q/k/v/out tensor read as [batch, heads, seq, head_dim] with the kernel's strides.
struct HeadMajorView {
  int64_t batch = 0, heads = 0, seq = 0, head_dim = 0;
  TensorView view;
};

std::string dims_str(const std::vector<int64_t> &dims);

// A live descriptor in ND format whose data is present when it has elements.
const aclTensor &checked_tensor(const aclTensor *t, const char *name);
// NULL, or a live aclIntArray.
const aclIntArray *checked_int_array(const aclIntArray *a, const char *name);
bool contiguous(const aclTensor &t);
bool non_overlapping(const aclTensor &t);
void *first_element(const aclTensor &t);

Layout parse_layout(const char *text);
const char *layout_dims(Layout layout);
// heads: the head count this tensor must have (BSH splits H by it). TND gives batch 1 and seq T.
HeadMajorView read_view(const aclTensor &t, Layout layout, int64_t heads, const char *name);

// Per-batch valid lengths as the original reads them: 1 entry applies to every batch, >= B give
// the first B; each in [0, limit]. NULL or empty leaves out empty (full lengths).
void resolve_lengths(const aclIntArray *lengths, int64_t batch, int64_t limit, const char *name,
                     std::vector<int64_t> &out);
// TND's cumulative lengths (required): each batch's first token and length.
void resolve_packed(const aclIntArray *cumulative, int64_t tokens, const char *name, std::vector<int64_t> &start,
                    std::vector<int64_t> &length);

}  // namespace blitz::cpu::cann_api
