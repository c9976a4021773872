// BlitzSparseAttention's tiling arithmetic as pure functions: shapes, attributes, sabi and the
// core counts in; the tiling parameters (blitz_tiling_params.h) or a rejection message out.
// Nothing here includes CANN, so tests/npu_host compiles and tests it with plain g++; the CANN
// tiling function (blitz_sparse_attention_tiling.cpp) reads the TilingContext into a
// TilingRequest, calls plan_tiling, and adds the Matmul / softmax tilings from CANN's APIs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../../common/op_limits.h"
#include "../op_kernel/blitz_tiling_params.h"

namespace blitz_npu {

// What the NPU kernel supports (block shapes, head dims, heads, GQA group, batch, layouts,
// sparse modes, the sabi pad) is the spec's (../../common/op_limits.h), and everything else is
// refused in the spec's words (../../common/op_refusals.h), as Python and the CPU device refuse
// it. A bq above kMaxGroupRows is processed as several row groups of one task.
// pre/next tokens beyond any sequence length act alike; clamping keeps i + shift in range.
constexpr int64_t kTokenClamp = int64_t(1) << 40;

// Unified buffer blocking limits: group rows halve from min(bq, 128) down to 16; slices from
// min(group, 32) down to 8 (8 float rows = the row-statistic tensors' [rows, 8] datablocks).
constexpr int64_t kMaxGroupRows = 128;
constexpr int64_t kMinGroupRows = 16;
constexpr int64_t kMaxSliceRows = 32;
constexpr int64_t kMinSliceRows = 8;
// Score / probability / mask rows are padded to 32 elements: whole 32-byte blocks as uint8
// mask bytes, fp16 / bf16 probabilities and float scores alike (bkv, a multiple of 64, already is).
constexpr int64_t kRowAlign = 32;
constexpr uint64_t kWorkspaceAlign = 512;
// Unified buffer a mix (AIC + AIV) kernel may not plan: 256 B the runtime keeps plus the 8 KiB
// Ascend C reserves unless built with --cce-disable-asc-reserved-ubuf (asc-devkit
// docs/zh/guide/.../架构规格/NPU架构版本2201.md; 静态Tensor编程.md), so 192 KiB leaves 188160 B,
// the figure the execution model enforces.
constexpr uint64_t kUbReserveBytes = 8 * 1024 + 256;
// Above this many tasks the host splits by task count (no per-task cost array on the host);
// the device scan has no such limit (it keeps no per-task array).
constexpr int64_t kMaxWeightedTasks = int64_t(1) << 24;
// The device scan's two loads share the O accumulator buffer: entries per load.
constexpr int64_t kScanSlots = 2;
constexpr int64_t kScanChunkAlign = 16;  // 32 bytes of uint16: each slot starts block-aligned

// Hardware figures the tiling reads from the platform (PlatformAscendC on a device).
struct CoreInfo {
  uint32_t cube_cores;   // AIC count
  uint32_t vector_cores; // AIV count (2 x AIC on 910B / 910_93)
  uint64_t ub_bytes;     // unified buffer per vector core
  uint64_t l1_bytes;     // L1 per cube core
  uint64_t l0c_bytes;    // L0C per cube core
};

// SoftmaxFlashV2's minimum scratch for a [rows, cols] float slice; the CANN glue passes
// GetSoftMaxFlashV2MinTmpSize, the tests a stand-in.
using SoftmaxTmpBytesFn = uint32_t (*)(uint32_t rows, uint32_t cols, void *user);

constexpr int kMaxRank = 8;  // dims kept per shape; a rank above 4 is rejected, never read past

struct TilingRequest {
  // Shapes as given (dims of q, k, v; 3 for BSH, 4 otherwise).
  int64_t q_dims[kMaxRank];
  int64_t k_dims[kMaxRank];
  int64_t v_dims[kMaxRank];
  int q_rank, k_rank, v_rank;
  std::string layout;    // an input_layout name (the spec's list, op_refusals.h kLayouts)
  uint32_t dtype_size;   // 2 for fp16 / bf16; anything else is rejected
  bool dtype_supported;  // fp16 or bf16, q/k/v alike (the glue checks the enum)

  int64_t num_heads;
  int64_t num_kv_heads;  // 0 = num_heads
  double scale_value;
  int64_t sparse_mode;
  int64_t pre_tokens;
  int64_t next_tokens;
  // atten_mask: rank 0 = absent. Read in modes 0/1 ([Sq, Skv], [1|B, Sq, Skv] or
  // [1|B, 1, Sq, Skv], contiguous); modes 2-4 build their mask from indices and ignore it.
  int64_t mask_dims[kMaxRank];
  int mask_rank;
  bool mask_dtype_supported;  // bool / int8 / uint8 (the glue checks the enum)
  bool has_pse;
  bool has_quant;        // any of the deq/quant scale inputs
  int64_t inner_precise;

  // sabi: rank 0 = absent (dense); 3-d [N, rows, W] means batch 1.
  int64_t sabi_dims[kMaxRank];
  int sabi_rank;
  const uint16_t *sabi_values;  // host copy when the framework provides it (value depend), else null
  // Without sabi_values: true lets every vector core weigh the tasks by scanning sabi itself
  // (device_split); false falls back to round-robin (interleave).
  bool device_split_scan;

  int64_t block_q;      // from block_shape, or the defaults
  int64_t block_kv;
  bool return_lse;

  // Actual lengths (host values), count 0 = absent.
  const int64_t *actual_q;
  int64_t actual_q_count;
  const int64_t *actual_kv;
  int64_t actual_kv_count;

  CoreInfo cores;
  SoftmaxTmpBytesFn softmax_tmp_bytes;
  void *softmax_tmp_user;
};

// Fills a request with the defaults of the op's attributes (block 128 x 512, no mask, ...).
TilingRequest default_request();

// The call as plain values, whoever holds it: CANN's TilingContext (blitz_sparse_attention_
// tiling.cpp) and the runtime's OpArgs (the npu_sim launcher's sim_backend.cpp) each copy their
// view into this, and request_from_values turns it into a TilingRequest, so the rules (which
// dtypes pass, what an absent block_shape means, lse flag vs output) are written once.
enum class DataKind { kAbsent, kFloat16, kBFloat16, kBool, kInt8, kUint8, kOther };
// A kind's dtype name as the spec writes it; nullptr for kAbsent and kOther.
const char *dtype_name(DataKind kind);
// Whether the NPU kernel takes the kind for query / key / value, or for atten_mask: the spec's
// dtype groups (op_refusals.h kNpuQkvDtypes, kNpuMaskDtypes).
bool npu_qkv_dtype(DataKind kind);
bool npu_mask_dtype(DataKind kind);

struct TensorValues {
  DataKind kind = DataKind::kAbsent;  // kAbsent: the optional input is not given
  int64_t dims[kMaxRank] = {};
  int rank = 0;
  // dims from any shape type; a rank above kMaxRank is kept as kMaxRank (the plan rejects > 4).
  template <typename DimAt>
  void assign(DataKind k, size_t full_rank, DimAt dim_at) {
    kind = k;
    rank = int(full_rank > size_t(kMaxRank) ? size_t(kMaxRank) : full_rank);
    for (int i = 0; i < rank; ++i) dims[i] = int64_t(dim_at(i));
  }
};

struct IntListValues {  // an aclIntArray / host tensor of int64; values == nullptr or count 0: absent
  const int64_t *values = nullptr;
  int64_t count = 0;
};

struct CallValues {
  TensorValues query, key, value, atten_mask, sabi;
  bool has_pse = false;
  bool has_quant = false;       // any of deq_scale1, quant_scale1, deq_scale2, quant_scale2, quant_offset2
  bool has_lse_output = false;  // the OPTIONAL softmax_lse output is present
  // Attributes as CANN stores them (scale_value is a float attribute).
  int64_t num_heads = 0;
  float scale_value = 1.0f;
  std::string input_layout;
  int64_t num_key_value_heads = 0;
  int64_t sparse_mode = 0;
  int64_t pre_tokens = 0;
  int64_t next_tokens = 0;
  int64_t inner_precise = 0;
  bool softmax_lse_flag = false;
  IntListValues block_shape;  // absent or empty: the original's (128, 128)
  // Value-depend inputs: host copies of actual_seq_lengths(_kv); sabi's only if it ever becomes
  // value-depend (it is not: blitz_sparse_attention_tiling.cpp, kSabiValueDepend).
  IntListValues actual_seq_lengths, actual_seq_lengths_kv;
  const uint16_t *sabi_values = nullptr;
};

// The request for `values` (the platform part, cores and softmax_tmp_bytes, is left to the
// caller); false with *error when the values cannot form one (block_shape not two values,
// softmax_lse_flag without the output). Everything else is plan_tiling's to check.
bool request_from_values(const CallValues &values, TilingRequest *request, std::string *error);

struct TilingPlan {
  bool ok;
  std::string error;  // why the call is rejected (empty when ok)
  BlitzTilingParams params;
};

TilingPlan plan_tiling(const TilingRequest &request);

// Pieces of plan_tiling, exposed for the tests and for BlitzSelectBlocks' plan (select_plan.cpp),
// which reads its query and key the same way. Each returns false with plan->error set.

// The LayoutCode of a layout name (its index in the spec's list); false for a name not listed.
bool layout_code(const std::string &name, uint32_t *code);
// The same as a value for InferShape, which only reads shapes: kUnknownLayout for a name not
// listed (the tiling refuses it).
constexpr uint32_t kUnknownLayout = ~0u;
uint32_t layout_of(const std::string &name);
// Whether query / key / value are stored [B, N, S, D] in `layout` (BNSD and BNSD_BSND's inputs).
bool head_major(uint32_t layout);
// [B, N, S, D] of one tensor from its dims and its LayoutCode (TND: [1, N, T, D], split later).
bool read_bnsd(TilingPlan *plan, const char *name, const int64_t *dims, int rank,
               uint32_t layout, int64_t heads, int64_t out[4]);
// Padded layouts' actual lengths: 1 entry for every batch or >= batch entries, each in [0, limit].
bool check_lengths(TilingPlan *plan, const char *name, const int64_t *values, int64_t count,
                   int64_t batch, int64_t limit);
// TND's cumulative lengths -> each batch's own length (non-decreasing, ending at tokens).
bool read_packed(TilingPlan *plan, const char *name, const int64_t *values, int64_t count, int64_t tokens,
                 std::vector<int64_t> *lengths);

// Cube cores to launch for `items` units of work, two vector workers on each: the platform's
// cube cores, at most half its vector cores and kMaxWorkers / 2, never more than ceil(items / 2)
// (at least one when items == 0, so the launch is valid); 0 only when the platform reports none.
uint32_t cube_cores_for(const CoreInfo &cores, int64_t items);

// Layout strides of a [B, N, S, D] tensor stored in `layout` (a LayoutCode: the layout's index in
// the spec's list); out_side true gives the output strides (BNSD_BSND writes BSND).
ViewStrides layout_strides(uint32_t layout, bool out_side, int64_t heads, int64_t seq, int64_t head_dim);

// Unified-buffer blocking for one group/slice choice; returns total bytes. `explicit_mask` adds
// the mask buffers (bytes, half, bits) of one slice.
uint64_t ub_bytes_for(int64_t group_rows, int64_t slice_rows, int64_t kv_block_aligned,
                      int64_t head_dim, uint32_t dtype_size, uint32_t softmax_tmp,
                      bool explicit_mask = false);

// Chooses group_rows / slice_rows and fills the ub_* fields; false when nothing fits.
bool choose_blocking(BlitzTilingParams *p, uint64_t ub_bytes, SoftmaxTmpBytesFn tmp_fn,
                     void *tmp_user);

// The per-worker workspace buffers and the total user workspace.
void size_workspace(BlitzTilingParams *p);

// Balanced task ranges via kernel_src/common/work_split.h, weighted by the tiles each task
// computes (sabi values on the host, and/or a mask from indices). When sabi's values are not on
// the host: the kernel's own scan (device_split, with scan_chunk from the accumulator's size),
// or round-robin (interleave) when request.device_split_scan is off.
void split_tasks(BlitzTilingParams *p, const TilingRequest &request);

}  // namespace blitz_npu
