// BlitzSparseAttention tiling arithmetic (see tiling_plan.h). Pure C++17, no CANN.
#include "tiling_plan.h"

#include <vector>

#include "../../common/sabi_walk.h"
#include "../../common/op_limits.h"
#include "../../common/op_refusals.h"
#include "../../common/tile_geometry.h"
#include "../../common/token_mask.h"
#include "../../common/work_split.h"

namespace blitz_npu {
namespace {

// Every buffer the vector core queues (scores, probabilities, P*V tiles, output slices) is
// double-buffered so the copy of the next slice overlaps the compute of this one.
constexpr uint64_t kQueueDepth = 2;
// Row statistics: max, sum, two expmax (ping-pong across tiles), lse staging.
constexpr uint64_t kStatBuffers = 5;
constexpr uint64_t kFloatBytes = 4;

constexpr uint64_t kHalfBytes = 2;
constexpr uint64_t kBitsPerByte = 8;

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string dims_text(const int64_t *dims, int rank) {
  if (rank > kMaxRank) rank = kMaxRank;
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

}  // namespace

// LayoutCode (blitz_tiling_params.h, plain for the kernel) numbers the layouts as the spec lists
// them (op_refusals.h kLayouts, generated): a name's index in kLayouts is its code.
static_assert(kLayoutBNSD == blitz::limits::kLayoutIndexBNSD && kLayoutBSND == blitz::limits::kLayoutIndexBSND &&
                  kLayoutBSH == blitz::limits::kLayoutIndexBSH &&
                  kLayoutBNSD_BSND == blitz::limits::kLayoutIndexBNSD_BSND &&
                  kLayoutTND == blitz::limits::kLayoutIndexTND && blitz::limits::kLayoutCount == kLayoutTND + 1,
              "LayoutCode and the spec's layout list differ");

// The code of a layout name; false for a name the spec does not list.
bool layout_code(const std::string &name, uint32_t *code) {
  for (uint32_t i = 0; i < blitz::limits::kLayoutCount; ++i) {
    if (name == blitz::limits::kLayouts[i]) {
      *code = i;
      return true;
    }
  }
  return false;
}

uint32_t layout_of(const std::string &name) {
  uint32_t code = kUnknownLayout;
  return layout_code(name, &code) ? code : kUnknownLayout;
}

uint32_t cube_cores_for(const CoreInfo &cores, int64_t items) {
  uint32_t cube = cores.cube_cores;
  if (cores.vector_cores / 2 < cube) cube = cores.vector_cores / 2;
  if (cube > kMaxWorkers / 2) cube = kMaxWorkers / 2;
  const int64_t needed = (items + 1) / 2;
  if (int64_t(cube) > needed) cube = uint32_t(needed > 0 ? needed : 1);
  return cube;
}

bool head_major(uint32_t layout) { return layout == kLayoutBNSD || layout == kLayoutBNSD_BSND; }

const char *dtype_name(DataKind kind) {
  switch (kind) {
    case DataKind::kFloat16: return "float16";
    case DataKind::kBFloat16: return "bfloat16";
    case DataKind::kBool: return "bool";
    case DataKind::kInt8: return "int8";
    case DataKind::kUint8: return "uint8";
    default: return nullptr;
  }
}

namespace {

template <size_t N>
bool named_in(DataKind kind, const char *const (&names)[N]) {
  const char *name = dtype_name(kind);
  for (const char *n : names) {
    if (name != nullptr && std::string(name) == n) return true;
  }
  return false;
}

}  // namespace

bool npu_qkv_dtype(DataKind kind) { return named_in(kind, blitz::limits::kNpuQkvDtypes); }
bool npu_mask_dtype(DataKind kind) { return named_in(kind, blitz::limits::kNpuMaskDtypes); }

namespace {

bool fail(TilingPlan *plan, const std::string &message) {
  plan->ok = false;
  plan->error = message;
  return false;
}

}  // namespace

// The shape and length readers BlitzSelectBlocks' plan (select_plan.cpp) shares (tiling_plan.h).
// Reads [B, N, S, D] of one tensor from its shape and the layout; false with a message when the
// rank or the hidden size does not fit.
bool read_bnsd(TilingPlan *plan, const char *name, const int64_t *dims, int rank,
               uint32_t layout, int64_t heads, int64_t out[4]) {
  const std::string layout_name = blitz::limits::kLayouts[layout];
  if (layout == kLayoutTND) {  // one packed sequence of T tokens: batch 1 here, split by read_packed
    if (rank != 3)
      return fail(plan, std::string(name) + " must be 3-d [T, N, D] for layout " + layout_name + ", got " +
                            dims_text(dims, rank));
    out[0] = 1; out[1] = dims[1]; out[2] = dims[0]; out[3] = dims[2];
    return true;
  }
  if (layout == kLayoutBSH) {
    if (rank != 3)
      return fail(plan, std::string(name) + " must be 3-d [B, S, H] for layout " + layout_name + ", got " +
                            dims_text(dims, rank));
    if (heads <= 0 || dims[2] % heads != 0)
      return fail(plan, blitz::limits::refuse_bsh_hidden(name, dims[2], heads));
    out[0] = dims[0]; out[1] = heads; out[2] = dims[1]; out[3] = dims[2] / heads;
    return true;
  }
  if (rank != 4) return fail(plan, std::string(name) + " must be 4-d for layout " + layout_name + ", got " + dims_text(dims, rank));
  if (head_major(layout)) {
    out[0] = dims[0]; out[1] = dims[1]; out[2] = dims[2]; out[3] = dims[3];
  } else {  // BSND
    out[0] = dims[0]; out[1] = dims[2]; out[2] = dims[1]; out[3] = dims[3];
  }
  return true;
}

bool check_block_shape(TilingPlan *plan, int64_t bq, int64_t bkv) {
  if (!blitz::limits::block_shape_supported(bq, bkv))
    return fail(plan, blitz::limits::refuse_block_shape(bq, bkv, blitz::limits::kNpuTitle));
  return true;
}

bool check_lengths(TilingPlan *plan, const char *name, const int64_t *values, int64_t count,
                   int64_t batch, int64_t limit) {
  if (count == 0) return true;
  if (values == nullptr)
    return fail(plan, std::string(name) + " must be readable on the host for tiling");
  // The original's rule: 1 entry applies to every batch, >= B entries give the first B.
  if (count != 1 && count < batch)
    return fail(plan, blitz::limits::refuse_lengths_count(name, count, batch));
  const int64_t used = count == 1 ? 1 : batch;
  for (int64_t i = 0; i < used; ++i) {
    if (values[i] < 0 || values[i] > limit)
      return fail(plan, blitz::limits::refuse_length_value(name, i, values[i], limit));
  }
  return true;
}

// TND: actual_seq_lengths(_kv) are required and CUMULATIVE, as the original documents (entry b =
// the tokens of batches 0..b, so B is their count): non-decreasing from 0, the last = the
// tensor's T. Gives each batch's own length.
bool read_packed(TilingPlan *plan, const char *name, const int64_t *values, int64_t count, int64_t tokens,
                 std::vector<int64_t> *lengths) {
  if (count == 0)
    return fail(plan, blitz::limits::refuse_packed_required(name));
  if (values == nullptr) return fail(plan, std::string(name) + " must be readable on the host for tiling");
  lengths->clear();
  int64_t previous = 0;
  for (int64_t b = 0; b < count; ++b) {
    if (values[b] < previous || values[b] > tokens)
      return fail(plan, blitz::limits::refuse_packed_entry(name, b, values[b], previous, tokens));
    lengths->push_back(values[b] - previous);
    previous = values[b];
  }
  if (previous != tokens)
    return fail(plan, blitz::limits::refuse_packed_end(name, previous, tokens));
  return true;
}

namespace {

int64_t longest(const std::vector<int64_t> &lengths) {
  int64_t m = 0;
  for (int64_t v : lengths) m = v > m ? v : m;
  return m;
}

// The sparse mode and, in modes 0/1, the explicit mask's dims -> mask_* fields.
bool read_mask(TilingPlan *plan, const TilingRequest &r, BlitzTilingParams *p) {
  if (r.sparse_mode < blitz::limits::kSparseModeMin || r.sparse_mode > blitz::limits::kSparseModeMax)
    return fail(plan, blitz::limits::refuse_sparse_mode(r.sparse_mode));
  const bool explicit_mode = r.sparse_mode <= blitz::kSparseExplicit;
  p->pre_tokens = blitz::clamp_i64(r.pre_tokens, -kTokenClamp, kTokenClamp);
  p->next_tokens = blitz::clamp_i64(r.next_tokens, -kTokenClamp, kTokenClamp);
  p->mask_stride_b = p->mask_stride_h = p->mask_stride_q = 0;
  p->has_mask_tensor = 0;
  if (!explicit_mode) {  // modes 2-4: from indices; a mask given here is ignored, as on the CPU
    p->mask_mode = uint32_t(r.sparse_mode);
    return true;
  }
  if (r.mask_rank == 0) {
    if (r.sparse_mode == blitz::kSparseExplicit) return fail(plan, "sparse_mode 1 requires atten_mask");
    p->mask_mode = blitz::kSparseNone;
    return true;
  }
  if (!r.mask_dtype_supported) return fail(plan, blitz::limits::refuse_npu_mask_dtype());
  const int64_t *d = r.mask_dims;
  const int rank = r.mask_rank;
  // The original's forms: [Sq', Skv'], [1|B, Sq', Skv'], [1|B, 1|N, Sq', Skv'], Sq' >= Sq and
  // Skv' >= Skv (its docs pad the key length to 32); the kernel reads the top-left window.
  const bool rank_ok = rank >= 2 && rank <= 4;
  const int64_t mask_batch = rank_ok && rank >= 3 ? d[0] : 1;
  const int64_t mask_heads = rank == 4 ? d[1] : 1;
  const bool ok = rank_ok && d[rank - 2] >= p->seq_q && d[rank - 1] >= p->seq_kv &&
                  (mask_batch == 1 || mask_batch == p->batch) && (mask_heads == 1 || mask_heads == p->heads);
  if (!ok)
    return fail(plan, blitz::limits::refuse_mask_shape("atten_mask", dims_text(d, rank), p->batch, p->heads,
                                                       p->seq_q, p->seq_kv));
  // The mask is contiguous (the binding passes it so): strides from its own dims.
  const int64_t rows = d[rank - 2], cols = d[rank - 1];
  p->mask_mode = blitz::kSparseExplicit;
  p->has_mask_tensor = 1;
  p->mask_stride_q = cols;
  p->mask_stride_h = mask_heads == 1 ? 0 : rows * cols;
  p->mask_stride_b = mask_batch == 1 ? 0 : mask_heads * rows * cols;
  return true;
}

bool read_sabi(TilingPlan *plan, const TilingRequest &r, BlitzTilingParams *p) {
  p->has_sabi = r.sabi_rank == 0 ? 0 : 1;
  if (!p->has_sabi) {
    p->sabi_batch = p->sabi_heads = p->sabi_rows = p->sabi_width = p->sabi_length = 0;
    return true;
  }
  if (r.sabi_rank != 3 && r.sabi_rank != 4)
    return fail(plan, "sabi must be 3-d [N, rows, W] or 4-d [B, N, rows, W], got " + dims_text(r.sabi_dims, r.sabi_rank));
  const int64_t *d = r.sabi_dims;
  const int off = r.sabi_rank == 4 ? 1 : 0;
  p->sabi_batch = r.sabi_rank == 4 ? d[0] : 1;
  p->sabi_heads = d[off];
  p->sabi_rows = d[off + 1];
  p->sabi_width = d[off + 2];
  if (p->sabi_batch != 1 && p->sabi_batch != p->batch)
    return fail(plan, "sabi batch dim " + std::to_string(p->sabi_batch) + " must be 1 or B = " + std::to_string(p->batch));
  if (p->sabi_heads != 1 && p->sabi_heads != p->heads)
    return fail(plan, "sabi head dim " + std::to_string(p->sabi_heads) + " must be 1 or N = " + std::to_string(p->heads));
  if (p->sabi_rows != p->q_blocks)
    return fail(plan, "sabi has " + std::to_string(p->sabi_rows) + " rows; expected ceil(Sq / bq) = " +
                          std::to_string(p->q_blocks));
  if (p->sabi_width < 1 || (p->kv_blocks > 0 && p->sabi_width > p->kv_blocks))
    return fail(plan, "sabi width " + std::to_string(p->sabi_width) + " must be in [1, ceil(Skv / bkv) = " +
                          std::to_string(p->kv_blocks) + "]");
  p->sabi_length = p->sabi_batch * p->sabi_heads * p->sabi_rows * p->sabi_width;
  return true;
}

}  // namespace

TilingRequest default_request() {
  TilingRequest r{};
  using namespace blitz::limits;  // the op's attribute defaults, from the spec
  r.layout = kDefaultInputLayout;
  r.dtype_size = 2;
  r.dtype_supported = true;
  r.num_heads = kDefaultNumHeads;
  r.scale_value = kDefaultScaleValue;
  r.inner_precise = kDefaultInnerPrecise;
  r.pre_tokens = kDefaultPreTokens;
  r.next_tokens = kDefaultNextTokens;
  r.mask_dtype_supported = true;
  r.block_q = blitz::limits::kDefaultBlockQ;  // NULL block_shape: the original's (128, 128)
  r.block_kv = blitz::limits::kDefaultBlockKv;
  r.device_split_scan = true;
  r.cores = CoreInfo{24, 48, 192 * 1024, 512 * 1024, 128 * 1024};
  return r;
}

bool request_from_values(const CallValues &v, TilingRequest *request, std::string *error) {
  TilingRequest r = default_request();
  auto dims = [](const TensorValues &t, int64_t *out, int *rank) {
    *rank = t.kind == DataKind::kAbsent ? 0 : t.rank;
    for (int i = 0; i < *rank; ++i) out[i] = t.dims[i];
  };
  dims(v.query, r.q_dims, &r.q_rank);
  dims(v.key, r.k_dims, &r.k_rank);
  dims(v.value, r.v_dims, &r.v_rank);
  dims(v.sabi, r.sabi_dims, &r.sabi_rank);
  dims(v.atten_mask, r.mask_dims, &r.mask_rank);
  const DataKind dt = v.query.kind;
  r.dtype_supported = npu_qkv_dtype(dt) && v.key.kind == dt && v.value.kind == dt;
  r.dtype_size = r.dtype_supported ? 2 : 4;
  const DataKind mt = v.atten_mask.kind;
  r.mask_dtype_supported = mt == DataKind::kAbsent || npu_mask_dtype(mt);
  r.has_pse = v.has_pse;
  r.has_quant = v.has_quant;
  r.num_heads = v.num_heads;
  r.scale_value = v.scale_value;
  r.layout = v.input_layout;
  r.num_kv_heads = v.num_key_value_heads;
  r.sparse_mode = v.sparse_mode;
  r.pre_tokens = v.pre_tokens;
  r.next_tokens = v.next_tokens;
  r.inner_precise = v.inner_precise;
  // softmax_lse is an OPTIONAL output: written only when softmax_lse_flag is set, and then it
  // must be present.
  r.return_lse = v.softmax_lse_flag;
  if (r.return_lse && !v.has_lse_output) {
    *error = "softmax_lse_flag is true but the softmax_lse output is absent";
    return false;
  }
  // NULL or empty block_shape: the original's (128, 128) (default_request's block_q / block_kv).
  if (v.block_shape.values != nullptr && v.block_shape.count > 0) {
    if (v.block_shape.count != 2) {
      *error = "block_shape must hold two values (bq, bkv), got " + std::to_string(v.block_shape.count);
      return false;
    }
    r.block_q = v.block_shape.values[0];
    r.block_kv = v.block_shape.values[1];
  }
  if (v.actual_seq_lengths.values != nullptr) {
    r.actual_q = v.actual_seq_lengths.values;
    r.actual_q_count = v.actual_seq_lengths.count;
  }
  if (v.actual_seq_lengths_kv.values != nullptr) {
    r.actual_kv = v.actual_seq_lengths_kv.values;
    r.actual_kv_count = v.actual_seq_lengths_kv.count;
  }
  r.sabi_values = r.sabi_rank != 0 ? v.sabi_values : nullptr;
  *request = r;
  return true;
}

ViewStrides layout_strides(uint32_t layout, bool out_side, int64_t heads, int64_t seq, int64_t head_dim) {
  // TND: [T, N, D]; a batch is addressed by its first token (b stride 0).
  if (layout == kLayoutTND) return ViewStrides{0, head_dim, heads * head_dim};
  const bool bnsd = layout == kLayoutBNSD || (layout == kLayoutBNSD_BSND && !out_side);
  if (bnsd) return ViewStrides{heads * seq * head_dim, seq * head_dim, head_dim};
  return ViewStrides{seq * heads * head_dim, head_dim, heads * head_dim};  // BSND, BSH
}

uint64_t ub_bytes_for(int64_t group_rows, int64_t slice_rows, int64_t kv_block_aligned,
                      int64_t head_dim, uint32_t dtype_size, uint32_t softmax_tmp,
                      bool explicit_mask) {
  const uint64_t g = group_rows, s = slice_rows, n = kv_block_aligned, d = head_dim;
  const uint64_t acc = g * d * kFloatBytes;
  const uint64_t stats = kStatBuffers * g * kFloatsPerBlock * kFloatBytes;
  const uint64_t score = kQueueDepth * s * n * kFloatBytes;
  const uint64_t prob = kQueueDepth * s * n * dtype_size;
  const uint64_t otile = kQueueDepth * s * d * kFloatBytes;
  const uint64_t out = kQueueDepth * s * d * dtype_size;
  const uint64_t mask = explicit_mask ? s * n * (1 + kHalfBytes) + s * n / kBitsPerByte : 0;
  return acc + stats + score + prob + otile + out + softmax_tmp + mask;
}

bool choose_blocking(BlitzTilingParams *p, uint64_t ub_bytes, SoftmaxTmpBytesFn tmp_fn,
                     void *tmp_user) {
  const int64_t n = p->kv_block_aligned;
  const uint64_t budget = ub_bytes > kUbReserveBytes ? ub_bytes - kUbReserveBytes : 0;
  for (int64_t g = p->block_q < kMaxGroupRows ? p->block_q : kMaxGroupRows; g >= kMinGroupRows; g /= 2) {
    for (int64_t s = g < kMaxSliceRows ? g : kMaxSliceRows; s >= kMinSliceRows; s /= 2) {
      const uint32_t tmp = tmp_fn ? tmp_fn(uint32_t(s), uint32_t(n), tmp_user) : 0;
      const bool explicit_mask = p->has_mask_tensor != 0;
      const uint64_t total = ub_bytes_for(g, s, n, p->head_dim, p->dtype_size, tmp, explicit_mask);
      if (total > budget) continue;
      p->group_rows = g;
      p->slice_rows = s;
      p->ub_acc_bytes = uint32_t(g * p->head_dim * kFloatBytes);
      p->ub_stat_bytes = uint32_t(g * kFloatsPerBlock * kFloatBytes);
      p->ub_score_bytes = uint32_t(s * n * kFloatBytes);
      p->ub_prob_bytes = uint32_t(s * n * p->dtype_size);
      p->ub_otile_bytes = uint32_t(s * p->head_dim * kFloatBytes);
      p->ub_out_bytes = uint32_t(s * p->head_dim * p->dtype_size);
      p->ub_softmax_tmp_bytes = tmp;
      p->ub_mask_bytes = explicit_mask ? uint32_t(s * n) : 0;
      p->ub_mask_half_bytes = explicit_mask ? uint32_t(s * n * kHalfBytes) : 0;
      p->ub_mask_bits_bytes = explicit_mask ? uint32_t(s * n / kBitsPerByte) : 0;
      p->ub_total_bytes = uint32_t(total);
      return true;
    }
  }
  return false;
}

void size_workspace(BlitzTilingParams *p) {
  p->ws_score_bytes = align_up(uint64_t(p->group_rows * p->kv_block_aligned) * kFloatBytes, kWorkspaceAlign);
  p->ws_prob_bytes = align_up(uint64_t(p->group_rows * p->kv_block_aligned) * p->dtype_size, kWorkspaceAlign);
  p->ws_otile_bytes = align_up(uint64_t(p->group_rows * p->head_dim) * kFloatBytes, kWorkspaceAlign);
  p->ws_worker_bytes = kQueueDepth * (p->ws_score_bytes + p->ws_prob_bytes + p->ws_otile_bytes);
  p->ws_user_bytes = p->ws_worker_bytes * p->workers;
}

void split_tasks(BlitzTilingParams *p, const TilingRequest &r) {
  const int64_t n = p->tasks;
  const int64_t workers = p->workers;
  for (int64_t w = 0; w <= workers; ++w) p->task_start[w] = n * w / workers;
  p->interleave = 0;
  p->device_split = 0;
  p->scan_chunk = 0;
  if (p->has_sabi != 0 && r.sabi_values == nullptr) {
    // sabi's values are device data: the kernel weighs the tasks itself (or, with the scan
    // switched off, runs them round-robin).
    if (r.device_split_scan) {
      p->device_split = 1;
      p->scan_chunk = uint32_t(p->ub_acc_bytes / (kScanSlots * sizeof(uint16_t)) / kScanChunkAlign * kScanChunkAlign);
    } else {
      p->interleave = 1;
    }
    return;
  }
  if (n > kMaxWeightedTasks) {  // too many tasks to weigh on the host: round-robin
    p->interleave = 1;
    return;
  }
  const blitz::SabiShape sabi{p->has_sabi ? r.sabi_values : nullptr, p->sabi_batch, p->sabi_heads,
                              p->sabi_rows, p->sabi_width};
  const blitz::BlockAxis q_axis = blitz::BlockAxis::make(p->seq_q, p->block_q);
  const blitz::BlockAxis kv_axis = blitz::BlockAxis::make(p->seq_kv, p->block_kv);
  std::vector<int64_t> prefix(size_t(n) + 1, 0);
  for (int64_t t = 0; t < n; ++t) {
    const blitz::TaskIndex x = blitz::TaskIndex::decode(t, p->heads, p->q_blocks);
    const blitz::SequenceGeometry seq = blitz::SequenceGeometry::make(
        x.b, p->seq_q, p->seq_kv, p->block_kv, r.actual_q, r.actual_q_count, r.actual_kv, r.actual_kv_count);
    // The explicit mask's bytes are device data: its tiles count as computed (mixed); the
    // index-defined masks (modes 2-4) drop the tiles they mask entirely, as the kernel does.
    const blitz::TokenMask mask = blitz::TokenMask::make(int(p->mask_mode), seq.q_len, seq.kv_len, p->pre_tokens,
                                                         p->next_tokens, nullptr, 0);
    const int64_t tiles = blitz::task_tiles(sabi, seq, mask, q_axis, kv_axis, x.b, x.h, x.q_block);
    prefix[size_t(t) + 1] = prefix[size_t(t)] + blitz::task_cost(tiles);
  }
  for (int64_t w = 0; w <= workers; ++w) p->task_start[w] = blitz::split_point(prefix.data(), n, workers, w);
}

TilingPlan plan_tiling(const TilingRequest &r) {
  TilingPlan plan{};
  plan.ok = true;
  BlitzTilingParams *p = &plan.params;

  if (r.has_pse) { fail(&plan, "pse_shift is not supported by BlitzSparseAttention"); return plan; }
  if (r.has_quant) {
    fail(&plan, "int8 quantisation (deq_scale / quant_scale / quant_offset) is not supported by BlitzSparseAttention");
    return plan;
  }
  using namespace blitz::limits;
  if (!r.dtype_supported || r.dtype_size != 2) {
    fail(&plan, refuse_npu_dtype());
    return plan;
  }
  if (!layout_code(r.layout, &p->layout)) {
    fail(&plan, refuse_layout(r.layout));
    return plan;
  }
  const uint32_t layout = p->layout;

  const int64_t heads = r.num_heads;
  const int64_t kv_heads = r.num_kv_heads == 0 ? r.num_heads : r.num_kv_heads;
  if (heads <= 0 || heads > kNpuHeadsMax) {
    fail(&plan, refuse_npu_heads(heads));
    return plan;
  }
  if (kv_heads <= 0 || heads % kv_heads != 0) {
    fail(&plan, refuse_gqa("num_heads", heads, "num_key_value_heads", kv_heads));
    return plan;
  }
  if (heads / kv_heads > kNpuGroupMax) {
    fail(&plan, refuse_npu_group(heads / kv_heads));
    return plan;
  }
  int64_t q[4], k[4], v[4];
  if (!read_bnsd(&plan, "query", r.q_dims, r.q_rank, layout, heads, q) ||
      !read_bnsd(&plan, "key", r.k_dims, r.k_rank, layout, kv_heads, k) ||
      !read_bnsd(&plan, "value", r.v_dims, r.v_rank, layout, kv_heads, v))
    return plan;
  if (q[1] != heads) { fail(&plan, "query has " + std::to_string(q[1]) + " heads; num_heads = " + std::to_string(heads)); return plan; }
  if (k[1] != kv_heads) {
    fail(&plan, "key has " + std::to_string(k[1]) + " heads; num_key_value_heads = " + std::to_string(kv_heads));
    return plan;
  }
  for (int i = 0; i < 4; ++i) {
    if (k[i] != v[i]) { fail(&plan, "key " + dims_text(r.k_dims, r.k_rank) + " and value " + dims_text(r.v_dims, r.v_rank) + " differ"); return plan; }
  }
  // TND: the batches and their lengths come from the cumulative actual lengths; from here on
  // q / k read [B, N, longest Lq, D] / [B, Nkv, longest Lkv, D].
  const bool packed = p->layout == kLayoutTND;
  std::vector<int64_t> lengths_q, lengths_kv;
  const int64_t tokens_q = q[2];
  if (packed) {
    if (!read_packed(&plan, "actual_seq_lengths", r.actual_q, r.actual_q_count, q[2], &lengths_q) ||
        !read_packed(&plan, "actual_seq_lengths_kv", r.actual_kv, r.actual_kv_count, k[2], &lengths_kv))
      return plan;
    if (lengths_kv.size() != lengths_q.size()) {
      fail(&plan, refuse_packed_lengths(int64_t(lengths_kv.size()), int64_t(lengths_q.size())));
      return plan;
    }
    if (r.mask_rank != 0 && r.sparse_mode <= blitz::kSparseExplicit) {
      fail(&plan, refuse_packed_mask());
      return plan;
    }
    q[0] = k[0] = v[0] = int64_t(lengths_q.size());
    q[2] = longest(lengths_q);
    k[2] = v[2] = longest(lengths_kv);
  }
  if (k[0] != q[0]) { fail(&plan, "key batch " + std::to_string(k[0]) + " differs from query batch " + std::to_string(q[0])); return plan; }
  if (k[3] != q[3]) { fail(&plan, "key head_dim " + std::to_string(k[3]) + " differs from query head_dim " + std::to_string(q[3])); return plan; }
  if (q[0] < 1 || q[0] > kNpuBatchMax) { fail(&plan, refuse_npu_batch(q[0])); return plan; }
  const int64_t d = q[3];
  if (!npu_head_dim_supported(d)) {
    fail(&plan, refuse_npu_head_dim(d));
    return plan;
  }
  if (!check_block_shape(&plan, r.block_q, r.block_kv)) return plan;

  p->batch = q[0];
  p->heads = heads;
  p->kv_heads = kv_heads;
  p->group = heads / kv_heads;
  p->seq_q = q[2];
  p->seq_kv = k[2];
  p->head_dim = d;
  p->dtype_size = r.dtype_size;
  p->scale = float(r.scale_value);
  p->return_lse = r.return_lse ? 1 : 0;
  p->packed = packed ? 1 : 0;
  p->lse_stride_h = packed ? tokens_q : p->seq_q;
  p->lse_stride_b = packed ? 0 : heads * p->seq_q;
  p->q = layout_strides(layout, false, heads, p->seq_q, d);
  p->k = layout_strides(layout, false, kv_heads, p->seq_kv, d);
  p->v = p->k;
  p->out = layout_strides(layout, true, heads, p->seq_q, d);
  p->block_q = r.block_q;
  p->block_kv = r.block_kv;
  p->q_blocks = blitz::ceil_div(p->seq_q, p->block_q);
  p->kv_blocks = blitz::ceil_div(p->seq_kv, p->block_kv);
  if (p->kv_blocks >= kSabiPad) {  // indices 0 .. kSabiPad - 1; kSabiPad itself means "no block"
    fail(&plan, refuse_npu_kv_blocks(p->kv_blocks));
    return plan;
  }
  p->kv_block_aligned = int64_t(align_up(uint64_t(p->block_kv), kRowAlign));
  if (!read_sabi(&plan, r, p) || !read_mask(&plan, r, p)) return plan;
  if (!packed && (!check_lengths(&plan, "actual_seq_lengths", r.actual_q, r.actual_q_count, p->batch, p->seq_q) ||
                  !check_lengths(&plan, "actual_seq_lengths_kv", r.actual_kv, r.actual_kv_count, p->batch, p->seq_kv)))
    return plan;
  p->actual_q_count = r.actual_q_count;
  p->actual_kv_count = r.actual_kv_count;

  if (!choose_blocking(p, r.cores.ub_bytes, r.softmax_tmp_bytes, r.softmax_tmp_user)) {
    fail(&plan, "no row blocking fits the unified buffer (" + std::to_string(r.cores.ub_bytes) +
                    " bytes) for head_dim " + std::to_string(d) + " and bkv " + std::to_string(p->block_kv));
    return plan;
  }

  // Cores: two vector workers per cube core; never more workers than tasks (at least one core
  // is launched even when Sq == 0, so the launch itself is valid).
  p->tasks = p->batch * p->heads * p->q_blocks;
  const uint32_t cube = cube_cores_for(r.cores, p->tasks);
  if (cube == 0) { fail(&plan, "the platform reports no cube/vector core pair"); return plan; }
  p->cube_cores = cube;
  p->workers = 2 * cube;
  // The split weighs tasks by each batch's own lengths: TND's are the cumulative ends' differences.
  TilingRequest per_batch = r;
  if (packed) {
    per_batch.actual_q = lengths_q.data();
    per_batch.actual_kv = lengths_kv.data();
  }
  split_tasks(p, per_batch);
  size_workspace(p);
  return plan;
}

}  // namespace blitz_npu
