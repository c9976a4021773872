// BlitzSparseAttention's argument checks: every argument of the aclnn call is checked again
// here (a C caller has no Python in front of it), then layouts are resolved into the kernel's
// [batch, head, seq, head_dim] strides and the AttentionProblem is filled. Bad input throws
// StatusError with a message naming the argument; the entry points turn it into a status.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common/op_limits.h"
#include "common/op_refusals.h"
#include "backend.h"
#include "errors.h"
#include "handles.h"
#include "layout_views.h"
#include "op_plan.h"

namespace blitz::cpu::cann_api {
namespace {

// Every limit is the spec's (common/op_limits.h) and every refusal of one is worded by it
// (common/op_refusals.h), so Python and the NPU tiling refuse the same value in the same words.
using limits::kCpuHeadDimMax;
using limits::kSabiPad;
constexpr size_t kMaxLayoutChars = 16;  // longer than any layout name: stops a scan of garbage

}  // namespace

// The tensor, layout and length readers below are shared with the other ops' checks
// (layout_views.h declares them); the rest of this file is BlitzSparseAttention's own.

std::string dims_str(const std::vector<int64_t> &dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

static std::string S(int64_t v) { return std::to_string(v); }

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static int64_t numel(const aclTensor &t) {
  int64_t n = 1;
  for (int64_t d : t.view_dims) n *= d;  // cannot overflow: aclCreateTensor checked it
  return n;
}

void *first_element(const aclTensor &t) {
  if (t.data == nullptr) return nullptr;  // an empty tensor may have no storage
  return static_cast<char *>(t.data) + t.offset * element_size(t.dtype);
}

// A live descriptor in ND format whose data is present when it has elements.
const aclTensor &checked_tensor(const aclTensor *t, const char *name) {
  require(t != nullptr, ACLNN_ERR_PARAM_NULLPTR, std::string(name) + " is NULL");
  require(tensor_registry().contains(t), ACLNN_ERR_PARAM_INVALID,
          std::string(name) + " is not a live aclTensor (never created by aclCreateTensor, or destroyed)");
  require(t->format == ACL_FORMAT_ND, ACLNN_ERR_PARAM_INVALID,
          std::string(name) + " has format " + format_name(t->format) + "; expected ACL_FORMAT_ND");
  require(numel(*t) == 0 || t->data != nullptr, ACLNN_ERR_PARAM_NULLPTR,
          std::string(name) + " has " + S(numel(*t)) + " elements but its data pointer is NULL");
  return *t;
}

const aclIntArray *checked_int_array(const aclIntArray *a, const char *name) {
  require(a == nullptr || int_array_registry().contains(a), ACLNN_ERR_PARAM_INVALID,
          std::string(name) + " is not a live aclIntArray (never created by aclCreateIntArray, or destroyed)");
  return a;
}

// Whether no two view elements share an address (so threads may write it in parallel).
bool non_overlapping(const aclTensor &t) {
  std::vector<std::pair<int64_t, int64_t>> by_stride;  // (stride, dim) of dims longer than 1
  for (size_t i = 0; i < t.view_dims.size(); ++i) {
    if (t.view_dims[i] == 0) return true;
    if (t.view_dims[i] > 1) by_stride.emplace_back(t.strides[i], t.view_dims[i]);
  }
  std::sort(by_stride.begin(), by_stride.end());
  int64_t span = 1;
  for (auto [stride, dim] : by_stride) {
    if (stride < span) return false;
    span = stride * dim;
  }
  return true;
}

bool contiguous(const aclTensor &t) {
  if (numel(t) == 0) return true;  // no element to misplace
  int64_t expected = 1;
  for (size_t i = t.view_dims.size(); i-- > 0;) {
    if (t.view_dims[i] != 1 && t.strides[i] != expected) return false;
    expected *= t.view_dims[i];
  }
  return true;
}

Layout parse_layout(const char *text) {
  require(text != nullptr, ACLNN_ERR_PARAM_NULLPTR, "inputLayout is NULL");
  const size_t n = strnlen(text, kMaxLayoutChars);
  const std::string s(text, n);
  for (size_t i = 0; n < kMaxLayoutChars && i < size_t(Layout::kCount); ++i) {
    if (s == limits::kLayouts[i]) return static_cast<Layout>(i);
  }
  fail(ACLNN_ERR_PARAM_INVALID, limits::refuse_layout(s));
}

const char *layout_dims(Layout layout) {
  switch (layout) {
    case Layout::kBSND: return "[B, S, N, D]";
    case Layout::kBSH: return "[B, S, H=N*D]";
    case Layout::kTND: return "[T, N, D]";
    default: return "[B, N, S, D]";
  }
}

// heads: the head count this tensor must have (BSH splits H by it).
HeadMajorView read_view(const aclTensor &t, Layout layout, int64_t heads, const char *name) {
  const auto &d = t.view_dims;
  const auto &s = t.strides;
  const size_t rank = layout == Layout::kBSH || layout == Layout::kTND ? 3 : 4;
  require(d.size() == rank, ACLNN_ERR_PARAM_INVALID,
          std::string(name) + " has shape " + dims_str(d) + "; layout " + layout_dims(layout) +
              " needs " + S(rank) + " dims");
  HeadMajorView v;
  v.view.data = first_element(t);
  if (layout == Layout::kTND) {  // one packed sequence of T tokens; build_plan splits it per batch
    v.batch = 1;
    v.seq = d[0];
    v.heads = d[1];
    v.head_dim = d[2];
    v.view.stride_s = s[0];
    v.view.stride_h = s[1];
    require(s[2] == 1 || d[2] <= 1, ACLNN_ERR_PARAM_INVALID,
            std::string(name) + ": the last dim (D) must have stride 1, got " + S(s[2]));
    require(v.heads == heads, ACLNN_ERR_PARAM_INVALID,
            std::string(name) + " has shape " + dims_str(d) + " in layout [T, N, D]: " + S(v.heads) +
                " heads, expected " + S(heads));
    return v;
  }
  v.batch = d[0];
  v.view.stride_b = s[0];
  if (layout == Layout::kBSH) {
    require(d[2] % heads == 0, ACLNN_ERR_PARAM_INVALID,
            limits::refuse_bsh_hidden(name, d[2], heads));
    v.seq = d[1];
    v.heads = heads;
    v.head_dim = d[2] / heads;
    require(s[2] == 1 || v.head_dim <= 1, ACLNN_ERR_PARAM_INVALID,
            std::string(name) + ": the last dim must have stride 1, got " + S(s[2]));
    v.view.stride_s = s[1];
    v.view.stride_h = v.head_dim * s[2];
    return v;
  }
  const bool seq_first = layout == Layout::kBSND;
  v.heads = seq_first ? d[2] : d[1];
  v.seq = seq_first ? d[1] : d[2];
  v.head_dim = d[3];
  v.view.stride_h = seq_first ? s[2] : s[1];
  v.view.stride_s = seq_first ? s[1] : s[2];
  require(s[3] == 1 || d[3] <= 1, ACLNN_ERR_PARAM_INVALID,
          std::string(name) + ": the last dim (D) must have stride 1, got " + S(s[3]));
  require(v.heads == heads, ACLNN_ERR_PARAM_INVALID,
          std::string(name) + " has shape " + dims_str(d) + " in layout " + layout_dims(layout) + ": " +
              S(v.heads) + " heads, expected " + S(heads));
  return v;
}

namespace {

// Whether dtype is in one of the spec's generated sets (op_refusals.h).
template <size_t N>
bool dtype_in(aclDataType dtype, const int32_t (&set)[N]) {
  return std::find(set, set + N, static_cast<int32_t>(dtype)) != set + N;
}

ElementType element_type(aclDataType dtype) {
  if (!dtype_in(dtype, limits::kCpuQkvDtypes))
    fail(ACLNN_ERR_PARAM_INVALID, limits::refuse_qkv_dtype("query", dtype_name(dtype)));
  switch (dtype) {
    case ACL_FLOAT: return ElementType::kFloat32;
    case ACL_FLOAT16: return ElementType::kFloat16;
    case ACL_BF16: return ElementType::kBFloat16;
    default: fail(ACLNN_ERR_INNER, std::string("no element type for ") + dtype_name(dtype));
  }
}

void require_dtype(const aclTensor &t, aclDataType dtype, const char *name, const std::string &why) {
  require(t.dtype == dtype, ACLNN_ERR_PARAM_INVALID,
          std::string(name) + " has dtype " + dtype_name(t.dtype) + "; expected " + dtype_name(dtype) + " " + why);
}

void reject_unsupported(const OpArgs &a) {
  const std::pair<const aclTensor *, const char *> unsupported[] = {
      {a.pse_shift, "pseShift"},       {a.deq_scale1, "deqScale1"},   {a.quant_scale1, "quantScale1"},
      {a.deq_scale2, "deqScale2"},     {a.quant_scale2, "quantScale2"}, {a.quant_offset2, "quantOffset2"},
  };
  for (auto [tensor, name] : unsupported) {
    require(tensor == nullptr, ACLNN_ERR_PARAM_INVALID,
            std::string(name) + " is not supported (pse and int8 quantisation are not implemented); pass NULL");
  }
}

void resolve_block_shape(const aclIntArray *block_shape, AttentionProblem &p) {
  p.block_q = limits::kDefaultBlockQ;  // NULL or empty: the original's (128, 128)
  p.block_kv = limits::kDefaultBlockKv;
  if (block_shape == nullptr || block_shape->values.empty()) return;
  const auto &v = block_shape->values;
  require(v.size() == 2, ACLNN_ERR_PARAM_INVALID,
          "blockShape has " + S(static_cast<int64_t>(v.size())) + " entries; expected (bq, bkv)");
  require(limits::block_shape_supported(v[0], v[1]), ACLNN_ERR_PARAM_INVALID,
          limits::refuse_block_shape(v[0], v[1], backend::title()));
  p.block_q = v[0];
  p.block_kv = v[1];
}

}  // namespace

// Copies a per-batch length array into out, as the original reads it: 1 entry applies to every
// batch, >= B entries give the first B (the rest are ignored); each used entry in [0, limit].
void resolve_lengths(const aclIntArray *lengths, int64_t batch, int64_t limit, const char *name,
                     std::vector<int64_t> &out) {
  out.clear();
  if (lengths == nullptr || lengths->values.empty()) return;
  const auto &v = lengths->values;
  const int64_t n = static_cast<int64_t>(v.size());
  require(n == 1 || n >= batch, ACLNN_ERR_PARAM_INVALID,
          limits::refuse_lengths_count(name, n, batch));
  const int64_t used = n == 1 ? 1 : batch;
  for (int64_t i = 0; i < used; ++i) {
    require(v[i] >= 0 && v[i] <= limit, ACLNN_ERR_PARAM_INVALID,
            limits::refuse_length_value(name, i, v[i], limit));
  }
  out.assign(v.begin(), v.begin() + used);
}

// TND: actualSeqLengths(Kv) are required and CUMULATIVE, as the original documents: entry b is
// the tokens of batches 0..b, so B is their count; non-decreasing, >= 0, the last = the tensor's
// T (T is the sum of the batches' lengths). Gives each batch's first token and length.
void resolve_packed(const aclIntArray *cumulative, int64_t tokens, const char *name, std::vector<int64_t> &start,
                    std::vector<int64_t> &length) {
  require(cumulative != nullptr && !cumulative->values.empty(), ACLNN_ERR_PARAM_INVALID,
          limits::refuse_packed_required(name));
  int64_t previous = 0;
  start.clear();
  length.clear();
  for (size_t b = 0; b < cumulative->values.size(); ++b) {
    const int64_t end = cumulative->values[b];
    require(end >= previous && end <= tokens, ACLNN_ERR_PARAM_INVALID,
            limits::refuse_packed_entry(name, static_cast<int64_t>(b), end, previous, tokens));
    start.push_back(previous);
    length.push_back(end - previous);
    previous = end;
  }
  require(previous == tokens, ACLNN_ERR_PARAM_INVALID,
          limits::refuse_packed_end(name, previous, tokens));
}

namespace {

void resolve_mask(const OpArgs &a, AttentionProblem &p) {
  const bool explicit_mode = p.sparse_mode <= 1;
  if (a.atten_mask == nullptr) {
    require(p.sparse_mode != 1, ACLNN_ERR_PARAM_NULLPTR, "attenMask is NULL but sparseMode 1 requires it");
    return;
  }
  const aclTensor &m = checked_tensor(a.atten_mask, "attenMask");
  require(dtype_in(m.dtype, limits::kCpuMaskDtypes), ACLNN_ERR_PARAM_INVALID,
          limits::refuse_mask_dtype("attenMask", dtype_name(m.dtype)));
  // Modes 2-4 compute their mask from indices; the original takes a compressed mask there,
  // which is accepted (any shape) and ignored.
  if (!explicit_mode) return;
  // The original's forms: [Sq', Skv'], [1|B, Sq', Skv'], [1|B, 1|N, Sq', Skv'] with Sq' >= Sq and
  // Skv' >= Skv; the top-left [Sq, Skv] window is read (its docs pad the key length to 32).
  const auto &d = m.view_dims;
  const size_t rank = d.size();
  const auto refusal = [&] {
    return limits::refuse_mask_shape("attenMask", dims_str(d), p.batch, p.heads_q, p.seq_q, p.seq_kv);
  };
  require(rank >= 2 && rank <= 4, ACLNN_ERR_PARAM_INVALID, refusal());
  const int64_t mask_batch = rank == 2 ? 1 : d[0];
  const int64_t mask_heads = rank == 4 ? d[1] : 1;
  const bool ok = d[rank - 2] >= p.seq_q && d[rank - 1] >= p.seq_kv && (mask_batch == 1 || mask_batch == p.batch) &&
                  (mask_heads == 1 || mask_heads == p.heads_q);
  require(ok, ACLNN_ERR_PARAM_INVALID, refusal());
  require(m.strides[rank - 1] == 1 || d[rank - 1] <= 1, ACLNN_ERR_PARAM_INVALID,
          "attenMask: the last dim must have stride 1, got " + S(m.strides[rank - 1]));
  p.mask = static_cast<const uint8_t *>(first_element(m));
  p.mask_stride_b = mask_batch == 1 ? 0 : m.strides[0];
  p.mask_stride_h = mask_heads == 1 ? 0 : m.strides[1];
  p.mask_stride_q = m.strides[rank - 2];
}

void check_sabi_entries(const AttentionProblem &p, int64_t kv_blocks) {
  // stamp[c] == row + 1 when block c was already listed in this row: O(W) per row, no clearing.
  std::vector<int64_t> stamp(static_cast<size_t>(kv_blocks), 0);
  const int64_t rows = p.sabi_batch * p.sabi_heads * p.sabi_rows;
  for (int64_t row = 0; row < rows; ++row) {
    const uint16_t *entries = p.sabi + row * p.sabi_width;
    for (int64_t col = 0; col < p.sabi_width; ++col) {
      const uint16_t block = entries[col];
      if (block == kSabiPad) continue;
      if (block < kv_blocks && stamp[block] != row + 1) {
        stamp[block] = row + 1;
        continue;
      }
      // The message is built only here: a long sequence has millions of entries.
      const int64_t b = row / (p.sabi_heads * p.sabi_rows), h = row / p.sabi_rows % p.sabi_heads,
                    r = row % p.sabi_rows;
      fail(ACLNN_ERR_PARAM_INVALID, block < kv_blocks
                                        ? limits::refuse_sabi_repeat(b, h, r, col, block)
                                        : limits::refuse_sabi_index(b, h, r, col, block, p.seq_kv, p.block_kv, kv_blocks));
    }
  }
}

void resolve_sabi(const aclTensor *sabi, AttentionProblem &p) {
  if (sabi == nullptr) return;  // dense
  const aclTensor &s = checked_tensor(sabi, "sabi");
  require_dtype(s, ACL_UINT16, "sabi", std::string("(") + limits::kSabiPadText + " = no block)");
  const auto &d = s.view_dims;
  const int64_t rows = ceil_div(p.seq_q, p.block_q), kv_blocks = ceil_div(p.seq_kv, p.block_kv);
  const std::string expected = "expected [1 or B=" + S(p.batch) + ", 1 or N=" + S(p.heads_q) + ", R=ceil(" +
                               S(p.seq_q) + "/" + S(p.block_q) + ")=" + S(rows) + ", W<=ceil(" + S(p.seq_kv) +
                               "/" + S(p.block_kv) + ")=" + S(kv_blocks) + "] (or 3-d without B)";
  require(d.size() == 3 || d.size() == 4, ACLNN_ERR_PARAM_INVALID, "sabi has shape " + dims_str(d) + "; " + expected);
  const size_t o = d.size() - 3;  // 3-d sabi: batch dim absent (1)
  p.sabi_batch = o ? d[0] : 1;
  p.sabi_heads = d[o];
  p.sabi_rows = d[o + 1];
  p.sabi_width = d[o + 2];
  const bool ok = (p.sabi_batch == 1 || p.sabi_batch == p.batch) && (p.sabi_heads == 1 || p.sabi_heads == p.heads_q) &&
                  p.sabi_rows == rows && p.sabi_width <= kv_blocks;
  require(ok, ACLNN_ERR_PARAM_INVALID, "sabi has shape " + dims_str(d) + "; " + expected);
  require(contiguous(s), ACLNN_ERR_PARAM_INVALID, "sabi must be contiguous");
  p.sabi = static_cast<const uint16_t *>(first_element(s));
  check_sabi_entries(p, kv_blocks);
}

// softmaxLseFlag false: the lse is not written, and softmaxLse may be NULL, empty or anything
// (the original returns it empty); a non-NULL handle must still be a live descriptor.
void resolve_lse(const OpArgs &a, AttentionProblem &p) {
  if (!a.softmax_lse_flag) {
    require(a.softmax_lse == nullptr || tensor_registry().contains(a.softmax_lse), ACLNN_ERR_PARAM_INVALID,
            "softmaxLse is not a live aclTensor (never created by aclCreateTensor, or destroyed)");
    return;
  }
  require(a.softmax_lse != nullptr, ACLNN_ERR_PARAM_NULLPTR, "softmaxLse is NULL but softmaxLseFlag is true");
  const aclTensor &lse = checked_tensor(a.softmax_lse, "softmaxLse");
  require_dtype(lse, ACL_FLOAT, "softmaxLse", "(float32 log-sum-exp)");
  const bool packed = p.q_start != nullptr;
  const std::vector<int64_t> expected =
      packed ? std::vector<int64_t>{p.heads_q, p.lse_tokens} : std::vector<int64_t>{p.batch, p.heads_q, p.seq_q};
  require(lse.view_dims == expected, ACLNN_ERR_PARAM_INVALID,
          "softmaxLse has shape " + dims_str(lse.view_dims) + "; expected " + (packed ? "[N, T] = " : "[B, N, Sq] = ") +
              dims_str(expected));
  require(contiguous(lse), ACLNN_ERR_PARAM_INVALID, "softmaxLse must be contiguous");
  p.lse = static_cast<float *>(first_element(lse));
}

}  // namespace

std::shared_ptr<OpPlan> build_plan(const OpArgs &a) {
  auto plan = std::make_shared<OpPlan>();
  AttentionProblem &p = plan->problem;

  const aclTensor &q = checked_tensor(a.query, "query");
  const aclTensor &k = checked_tensor(a.key, "key");
  const aclTensor &v = checked_tensor(a.value, "value");
  const aclTensor &out = checked_tensor(a.attention_out, "attentionOut");
  reject_unsupported(a);
  checked_int_array(a.actual_seq_lengths, "actualSeqLengths");
  checked_int_array(a.actual_seq_lengths_kv, "actualSeqLengthsKv");
  checked_int_array(a.block_shape, "blockShape");

  p.dtype = element_type(q.dtype);
  require_dtype(k, q.dtype, "key", "(the query's dtype)");
  require_dtype(v, q.dtype, "value", "(the query's dtype)");
  require_dtype(out, q.dtype, "attentionOut", "(the query's dtype)");

  const Layout layout = parse_layout(a.input_layout);
  require(a.num_heads >= 1, ACLNN_ERR_PARAM_INVALID, "numHeads = " + S(a.num_heads) + "; expected >= 1");
  require(a.num_key_value_heads >= 0, ACLNN_ERR_PARAM_INVALID,
          "numKeyValueHeads = " + S(a.num_key_value_heads) + "; expected >= 0 (0 means numHeads)");
  const int64_t heads_kv = a.num_key_value_heads == 0 ? a.num_heads : a.num_key_value_heads;
  require(a.num_heads % heads_kv == 0, ACLNN_ERR_PARAM_INVALID,
          limits::refuse_gqa("numHeads", a.num_heads, "numKeyValueHeads", heads_kv));

  const HeadMajorView qv = read_view(q, layout, a.num_heads, "query");
  const HeadMajorView kv = read_view(k, layout, heads_kv, "key");
  const HeadMajorView vv = read_view(v, layout, heads_kv, "value");
  const Layout out_layout = layout == Layout::kBNSD_BSND ? Layout::kBSND : layout;
  const HeadMajorView ov = read_view(out, out_layout, a.num_heads, "attentionOut");
  require(qv.head_dim >= 1 && qv.head_dim <= kCpuHeadDimMax, ACLNN_ERR_PARAM_INVALID,
          "query: " + limits::refuse_cpu_head_dim(qv.head_dim));
  require(k.view_dims == v.view_dims, ACLNN_ERR_PARAM_INVALID,
          "key has shape " + dims_str(k.view_dims) + " but value has shape " + dims_str(v.view_dims));
  require(kv.batch == qv.batch && kv.head_dim == qv.head_dim, ACLNN_ERR_PARAM_INVALID,
          "key has shape " + dims_str(k.view_dims) + "; expected batch " + S(qv.batch) + " and head dim " +
              S(qv.head_dim) + " as the query " + dims_str(q.view_dims));
  require(ov.batch == qv.batch && ov.seq == qv.seq && ov.head_dim == qv.head_dim, ACLNN_ERR_PARAM_INVALID,
          "attentionOut has shape " + dims_str(out.view_dims) + "; expected the query's B, Sq, N, D in layout " +
              layout_dims(out_layout));
  require(non_overlapping(out), ACLNN_ERR_PARAM_INVALID, "attentionOut has overlapping strides");

  p.batch = qv.batch;
  p.heads_q = a.num_heads;
  p.heads_kv = heads_kv;
  p.seq_q = qv.seq;
  p.seq_kv = kv.seq;
  p.head_dim = qv.head_dim;
  p.q = qv.view;
  p.k = kv.view;
  p.v = vv.view;
  p.out = ov.view;

  require(std::isfinite(a.scale_value) && std::fabs(a.scale_value) <= std::numeric_limits<float>::max(),
          ACLNN_ERR_PARAM_INVALID, "scaleValue = " + std::to_string(a.scale_value) + " is not a finite float");
  p.scale = static_cast<float>(a.scale_value);
  require(a.sparse_mode >= limits::kSparseModeMin && a.sparse_mode <= limits::kSparseModeMax,
          ACLNN_ERR_PARAM_INVALID, limits::refuse_sparse_mode(a.sparse_mode));
  p.sparse_mode = static_cast<int>(a.sparse_mode);
  p.pre_tokens = a.pre_tokens;
  p.next_tokens = a.next_tokens;
  require(a.inner_precise >= 0 && a.inner_precise <= limits::kInnerPreciseMax, ACLNN_ERR_PARAM_INVALID,
          limits::refuse_inner_precise(a.inner_precise));

  resolve_block_shape(a.block_shape, p);
  if (layout == Layout::kTND) {
    resolve_packed(a.actual_seq_lengths, qv.seq, "actualSeqLengths", plan->q_start, plan->actual_seq_q);
    resolve_packed(a.actual_seq_lengths_kv, kv.seq, "actualSeqLengthsKv", plan->kv_start, plan->actual_seq_kv);
    require(plan->actual_seq_kv.size() == plan->actual_seq_q.size(), ACLNN_ERR_PARAM_INVALID,
            limits::refuse_packed_lengths(static_cast<int64_t>(plan->actual_seq_kv.size()),
                                          static_cast<int64_t>(plan->actual_seq_q.size())));
    require(a.atten_mask == nullptr || p.sparse_mode >= 2, ACLNN_ERR_PARAM_INVALID, limits::refuse_packed_mask());
    p.batch = static_cast<int64_t>(plan->actual_seq_q.size());
    p.seq_q = *std::max_element(plan->actual_seq_q.begin(), plan->actual_seq_q.end());
    p.seq_kv = *std::max_element(plan->actual_seq_kv.begin(), plan->actual_seq_kv.end());
    p.q_start = plan->q_start.data();
    p.kv_start = plan->kv_start.data();
    p.lse_tokens = qv.seq;
  } else {
    resolve_lengths(a.actual_seq_lengths, p.batch, p.seq_q, "actualSeqLengths", plan->actual_seq_q);
    resolve_lengths(a.actual_seq_lengths_kv, p.batch, p.seq_kv, "actualSeqLengthsKv", plan->actual_seq_kv);
  }
  p.actual_seq_q = plan->actual_seq_q.empty() ? nullptr : plan->actual_seq_q.data();
  p.actual_seq_q_count = static_cast<int64_t>(plan->actual_seq_q.size());
  p.actual_seq_kv = plan->actual_seq_kv.empty() ? nullptr : plan->actual_seq_kv.data();
  p.actual_seq_kv_count = static_cast<int64_t>(plan->actual_seq_kv.size());
  resolve_mask(a, p);
  resolve_sabi(a.sabi, p);
  resolve_lse(a, p);

  plan->empty = p.batch == 0 || p.seq_q == 0;
  return plan;  // the backend (backend.h) sizes the workspace
}

}  // namespace blitz::cpu::cann_api
