// BlitzSelectBlocks' argument checks. Query, key and the lengths go through the readers the
// attention's checks use (cann_api/layout_views.h), so the op takes exactly the layouts and lengths
// BlitzSparseAttention takes; the sabi it writes has the shape that call expects.
#include "select/select_checks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/op_limits.h"
#include "common/op_refusals.h"
#include "common/platform.h"
#include "common/select_refusals.h"
#include "cann_api/errors.h"
#include "cann_api/layout_views.h"
#include "select/select_limits.h"

namespace blitz::cpu::select {
namespace {

using cann_api::fail;
using cann_api::require;

constexpr size_t kMaxMethodChars = 32;  // longer than any method name: stops a scan of garbage
using limits::kStrideMax;
using limits::kSubBlockMax;

std::string S(int64_t v) { return std::to_string(v); }

// Method numbers the methods as the spec lists them (select_limits.h kMethodNames, generated).
static_assert(int(Method::kMeanPool) == limits::kMethodIndexMeanPool &&
                  int(Method::kAntidiagonal) == limits::kMethodIndexAntidiagonal && limits::kMethodCount == 2,
              "select::Method and the spec's method list differ");

Method parse_method(const char *text) {
  require(text != nullptr, ACLNN_ERR_PARAM_NULLPTR, "method is NULL");
  const std::string s(text, strnlen(text, kMaxMethodChars));
  for (int i = 0; i < limits::kMethodCount; ++i) {
    if (s == limits::kMethodNames[i]) return static_cast<Method>(i);
  }
  fail(ACLNN_ERR_PARAM_INVALID, "method \"" + s + "\" is not one of " + limits::kMethods);
}

ElementType element_type(const aclTensor &t, const char *name) {
  switch (t.dtype) {
    case ACL_FLOAT: return ElementType::kFloat32;
    case ACL_FLOAT16: return ElementType::kFloat16;
    case ACL_BF16: return ElementType::kBFloat16;
    default:
      fail(ACLNN_ERR_PARAM_INVALID, blitz::limits::refuse_qkv_dtype(name, cann_api::dtype_name(t.dtype)));
  }
}

void resolve_block_shape(const aclIntArray *block_shape, SelectProblem &p) {
  p.block_q = blitz::limits::kDefaultBlockQ;  // NULL or empty: (128, 128), as the attention reads it
  p.block_kv = blitz::limits::kDefaultBlockKv;
  if (block_shape == nullptr || block_shape->values.empty()) return;
  const auto &v = block_shape->values;
  require(v.size() == 2, ACLNN_ERR_PARAM_INVALID,
          "blockShape has " + S(static_cast<int64_t>(v.size())) + " entries; expected (bq, bkv)");
  require(blitz::limits::block_shape_supported(v[0], v[1]), ACLNN_ERR_PARAM_INVALID,
          blitz::limits::refuse_block_shape(v[0], v[1], blitz::limits::kCpuTitle));
  p.block_q = v[0];
  p.block_kv = v[1];
}

void resolve_rule(const SelectArgs &a, SelectProblem &p) {
  require(std::isfinite(a.mass) && a.mass >= 0.0 && a.mass <= 1.0, ACLNN_ERR_PARAM_INVALID,
          blitz::limits::refuse_select_mass(std::to_string(a.mass)));
  require(a.top_k >= 0, ACLNN_ERR_PARAM_INVALID, blitz::limits::refuse_select_top_k(a.top_k));
  require(a.mass > 0.0 || a.top_k > 0, ACLNN_ERR_PARAM_INVALID,
          blitz::limits::refuse_select_rule_off());
  require(a.anchor_first >= 0, ACLNN_ERR_PARAM_INVALID, blitz::limits::refuse_select_anchor_first(a.anchor_first));
  require(a.stride >= 1 && a.stride <= kStrideMax, ACLNN_ERR_PARAM_INVALID, blitz::limits::refuse_select_stride(a.stride));
  require(a.sub_block >= 1 && a.sub_block <= kSubBlockMax, ACLNN_ERR_PARAM_INVALID,
          "subBlock = " + S(a.sub_block) + "; expected 1.." + S(kSubBlockMax));
  require(std::isfinite(a.refine_below) && a.refine_below >= 0.0 && a.refine_below <= 1.0, ACLNN_ERR_PARAM_INVALID,
          blitz::limits::refuse_select_refine_below(std::to_string(a.refine_below)));
  p.mass = a.mass;
  p.top_k = a.top_k;
  p.anchors.first = a.anchor_first;
  p.anchors.diagonal = a.anchor_diagonal;
  p.anchors.last = a.anchor_last;
  p.share_kv_groups = a.share_kv_groups;
  p.stride = a.stride;
  p.sub_block = a.sub_block;
  p.refine_below = a.refine_below;
  bool known_mode = false;
  for (int64_t mode : limits::kSparseModes) known_mode = known_mode || a.sparse_mode == mode;
  require(known_mode, ACLNN_ERR_PARAM_INVALID,
          "sparseMode = " + S(a.sparse_mode) + "; expected one of " + std::string(limits::kSparseModeNames) +
              " (1 needs an explicit attenMask, which BlitzSelectBlocks does not take)");
  p.sparse_mode = static_cast<int>(a.sparse_mode);
  // Past any sequence length a band is unbounded; clamping keeps the index arithmetic in range.
  constexpr int64_t kFar = int64_t{1} << 40;
  p.pre_tokens = std::clamp<int64_t>(a.pre_tokens, -kFar, kFar);
  p.next_tokens = std::clamp<int64_t>(a.next_tokens, -kFar, kFar);
}

// Each batch's first token and length, from the lengths as the attention reads them.
void resolve_batches(const SelectArgs &a, cann_api::Layout layout, const cann_api::HeadMajorView &qv,
                     const cann_api::HeadMajorView &kv, SelectProblem &p) {
  if (layout == cann_api::Layout::kTND) {
    cann_api::resolve_packed(a.actual_seq_lengths, qv.seq, "actualSeqLengths", p.q_start, p.len_q);
    cann_api::resolve_packed(a.actual_seq_lengths_kv, kv.seq, "actualSeqLengthsKv", p.kv_start, p.len_kv);
    require(p.len_q.size() == p.len_kv.size(), ACLNN_ERR_PARAM_INVALID,
            blitz::limits::refuse_packed_lengths(static_cast<int64_t>(p.len_kv.size()),
                                                 static_cast<int64_t>(p.len_q.size())));
    p.batch = static_cast<int64_t>(p.len_q.size());
    return;
  }
  p.batch = qv.batch;
  std::vector<int64_t> lq, lkv;
  cann_api::resolve_lengths(a.actual_seq_lengths, p.batch, qv.seq, "actualSeqLengths", lq);
  cann_api::resolve_lengths(a.actual_seq_lengths_kv, p.batch, kv.seq, "actualSeqLengthsKv", lkv);
  p.q_start.assign(static_cast<size_t>(p.batch), 0);
  p.kv_start.assign(static_cast<size_t>(p.batch), 0);
  for (int64_t b = 0; b < p.batch; ++b) {
    p.len_q.push_back(lq.empty() ? qv.seq : lq[lq.size() == 1 ? 0 : b]);
    p.len_kv.push_back(lkv.empty() ? kv.seq : lkv[lkv.size() == 1 ? 0 : b]);
  }
}

// [B, N, R, C] uint16, contiguous: R and C over the tensors' lengths (TND: the longest batch's).
void resolve_sabi(const aclTensor *sabi, int64_t seq_q, int64_t seq_kv, SelectProblem &p) {
  const aclTensor &s = cann_api::checked_tensor(sabi, "sabi");
  p.rows = blitz::ceil_div(seq_q, p.block_q);
  p.cols = blitz::ceil_div(seq_kv, p.block_kv);
  require(p.cols <= blitz::limits::kSabiPad, ACLNN_ERR_PARAM_INVALID,
          limits::refuse_select_kv_blocks(seq_kv, p.block_kv, p.cols));
  require(s.dtype == ACL_UINT16, ACLNN_ERR_PARAM_INVALID,
          std::string("sabi has dtype ") + cann_api::dtype_name(s.dtype) + "; expected ACL_UINT16");
  const std::vector<int64_t> expected = {p.batch, p.heads_q, p.rows, p.cols};
  require(s.view_dims == expected, ACLNN_ERR_PARAM_INVALID,
          "sabi has shape " + cann_api::dims_str(s.view_dims) + "; expected [B, N, ceil(Sq/bq), ceil(Skv/bkv)] = " +
              cann_api::dims_str(expected));
  require(cann_api::contiguous(s), ACLNN_ERR_PARAM_INVALID, "sabi must be contiguous");
  p.sabi = static_cast<uint16_t *>(cann_api::first_element(s));
}

}  // namespace

SelectProblem build_select_problem(const SelectArgs &a) {
  SelectProblem p;
  const aclTensor &q = cann_api::checked_tensor(a.query, "query");
  const aclTensor &k = cann_api::checked_tensor(a.key, "key");
  cann_api::checked_int_array(a.actual_seq_lengths, "actualSeqLengths");
  cann_api::checked_int_array(a.actual_seq_lengths_kv, "actualSeqLengthsKv");
  cann_api::checked_int_array(a.block_shape, "blockShape");
  p.dtype = element_type(q, "query");
  require(k.dtype == q.dtype, ACLNN_ERR_PARAM_INVALID,
          std::string("key has dtype ") + cann_api::dtype_name(k.dtype) + "; expected the query's " +
              cann_api::dtype_name(q.dtype));

  cann_api::Layout layout = cann_api::parse_layout(a.input_layout);
  if (layout == cann_api::Layout::kBNSD_BSND) layout = cann_api::Layout::kBNSD;  // its inputs are BNSD
  require(a.num_heads >= 1, ACLNN_ERR_PARAM_INVALID, "numHeads = " + S(a.num_heads) + "; expected >= 1");
  require(a.num_key_value_heads >= 0, ACLNN_ERR_PARAM_INVALID,
          "numKeyValueHeads = " + S(a.num_key_value_heads) + "; expected >= 0 (0 means numHeads)");
  p.heads_q = a.num_heads;
  p.heads_kv = a.num_key_value_heads == 0 ? a.num_heads : a.num_key_value_heads;
  require(p.heads_q % p.heads_kv == 0, ACLNN_ERR_PARAM_INVALID,
          blitz::limits::refuse_gqa("numHeads", p.heads_q, "numKeyValueHeads", p.heads_kv));
  const cann_api::HeadMajorView qv = cann_api::read_view(q, layout, p.heads_q, "query");
  const cann_api::HeadMajorView kv = cann_api::read_view(k, layout, p.heads_kv, "key");
  require(qv.head_dim >= 1 && qv.head_dim <= blitz::limits::kCpuHeadDimMax, ACLNN_ERR_PARAM_INVALID,
          blitz::limits::refuse_cpu_head_dim(qv.head_dim));
  require(kv.batch == qv.batch && kv.head_dim == qv.head_dim, ACLNN_ERR_PARAM_INVALID,
          "key has shape " + cann_api::dims_str(k.view_dims) + "; expected batch " + S(qv.batch) + " and head dim " +
              S(qv.head_dim) + " as the query " + cann_api::dims_str(q.view_dims));
  p.head_dim = qv.head_dim;
  p.q = qv.view;
  p.k = kv.view;

  require(std::isfinite(a.scale_value) && std::fabs(a.scale_value) <= std::numeric_limits<float>::max(),
          ACLNN_ERR_PARAM_INVALID, "scaleValue = " + std::to_string(a.scale_value) + " is not a finite float");
  p.scale = a.scale_value != 0.0 ? a.scale_value : 1.0 / std::sqrt(static_cast<double>(p.head_dim));
  p.method = parse_method(a.method);
  resolve_block_shape(a.block_shape, p);
  resolve_rule(a, p);
  resolve_batches(a, layout, qv, kv, p);
  int64_t seq_q = qv.seq, seq_kv = kv.seq;
  if (layout == cann_api::Layout::kTND) {  // the attention's TND sabi: rows over the longest batch
    seq_q = seq_kv = 0;
    for (int64_t b = 0; b < p.batch; ++b) {
      seq_q = std::max(seq_q, p.len_q[b]);
      seq_kv = std::max(seq_kv, p.len_kv[b]);
    }
  }
  resolve_sabi(a.sabi, seq_q, seq_kv, p);
  return p;
}

}  // namespace blitz::cpu::select
