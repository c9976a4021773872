// BlitzSelectBlocks on the NPU (methods mean_pool, with the sub-block refinement, and
// antidiagonal; no mask yet: the plan refuses sparse_mode != 0): the sabi BlitzSparseAttention
// takes, chosen from the query and key.
//
// Tensors (element strides from the tiling, SelectTilingParams::q / k):
//   query [B, N, Sq, D], key [B, Nkv, Skv, D] in their layout (TND: packed, batch b's tokens start
//     at the cumulative actual lengths' end[b-1], b stride 0; batch_tokens_gm.h)
//   sabi uint16 [B, N, rows, cols], contiguous: row (b, h, i) lists its kept key blocks
//     ascending, then 0xFFFF (rows past the batch's query length, or of a batch without keys, are
//     all 0xFFFF); actual_seq_lengths(_kv) int64 as the attention reads them
//
// Work: a unit is (b, kv head g, query block i), the CPU op's task (kernel_src/cpu/select/
// select_run.cpp); worker w runs units [unit_start[w], unit_start[w + 1]) in order. Per unit:
//   vector: the units of each of the batch's key blocks of head g (once per (b, g) and worker:
//           consecutive units reuse them) and of query block i of each query head of the group,
//           their means to the worker's workspace (float). A block is one unit (its mean) unless
//           refine_below > 0 and its coherence |sum x|^2 / (n sum |x|^2) (sum of squares by Mul,
//           the two reductions over D on the scalar unit) is below it: then sub_block-token units
//   cube:   logits [query units, key units] = pooled Q x pooled K^T (Matmul "scores", sync)
//   vector: per query unit u: l_t = scale * logit_t + ln(n_t / bkv) (the softmax is
//           shift-invariant, so this is the CPU op's scale q.k + ln n_t; without the refinement
//           only a partial last block has n_t < bkv, its term added on the scalar unit), columns
//           past the key units excluded, softmax (SoftmaxFlashV2); summed per key block (the
//           scalar unit, only when some key block was refined) and weighted n_u / rows into the
//           head's block masses; share_kv_groups: the group's mean mass
//   scalar: the choice (block_choice.h's rule): anchors always; then the best remaining block
//           (highest mass, lower index on a tie) while fewer than top_k - |anchors| are taken or
//           the kept mass is below `mass`; the row written ascending, then 0xFFFF.
// The choice runs on the scalar unit (GetValue / SetValue over one row of masses, O(valid x
// taken) reads): a row is a few hundred blocks at most and the rule is sequential.
//
// Antidiagonal (stride S > 0; the CPU op's kernel_src/cpu/select/antidiagonal.h rule): units
// are cells instead of means. A key block's cells are S keys each (the last n_t <= S), written
// to the workspace as cell vectors of S x D floats in token order, zeros after a partial cell's
// keys; a query block's row groups are S rows each, written reversed (row a to slot S-1-a),
// zeros before a partial group's rows. Query vector u . key vector t is then the sum of q . k
// over the cell's antidiagonal (a + c = S - 1, valid pairs only), so the same Matmul (K = S x D)
// gives every cell's sum. Logit = that sum x scale / pairs + ln n_t, pairs = n_t + n_u - S: the
// vector unit's Muls / Adds for every full cell (n_u pairs), the scalar unit for the partial
// ones (CellLogits); a partial group and a partial cell with no pair on the antidiagonal
// (n_u + n_t <= S) take the mean over all their pairs, scale (sum q) . (sum k) / (n_u n_t), from
// the two sums the staging wrote to the workspace. Softmax per row group over all cells, cells
// summed per key block, weighted n_u / rows: the refinement's path, with cells for units and
// the score row as the only UB row per cell.
//
// Every cross-pipe dependency is a SetFlag / WaitFlag pair right away (OrderPipes): the unit's
// steps depend on each other, so nothing would overlap anyway. Cube and vector: the kernel is
// KERNEL_TYPE_MIX_AIC_1_2; REGIST_MATMUL_OBJ (entry) makes the cube core the Matmul server and
// returns there, so everything below runs under ASCEND_IS_AIV.
#pragma once

#include "kernel_operator.h"
#include "matmul_include.h"

#include "op_limits.h"
#include "platform.h"
#include "batch_tokens_gm.h"
#include "select_tiling_data.h"

namespace blitz_npu {

// The copy of token chunk c + 1 overlaps the cast of chunk c.
constexpr int32_t kSelectTokenBuffers = 2;
constexpr int32_t kSelectSingleBuffer = 1;
// A column past the batch's valid key blocks: finite (no inf arithmetic), and exp(l - max)
// underflows to exactly 0 for it, so it takes no mass.
constexpr float kExcludedLogit = -3.0e38f;
// A mass entry already kept (masses are >= 0, so every kept entry is below every candidate).
constexpr float kKeptMark = -1.0f;
constexpr int64_t kLogitRowAlign = 8;  // ND_ALIGN writes whole 32-byte blocks of each logit row
constexpr int32_t kRepeatFloats = kFloatsPerRepeat;  // blitz_tiling_params.h, as the plan sizes rows
constexpr int32_t kStatFloats = 8;     // one 32-byte block of float
constexpr int32_t kLnTable = 64;       // cells: ln 1 .. ln 64 (the largest stride), one vector repeat

// Producer pipe -> consumer pipe, at once: SetFlag then WaitFlag on a fetched event id.
template <AscendC::HardEvent kEvent>
__aicore__ inline void OrderPipes(AscendC::TPipe *pipe)
{
  const event_t id = static_cast<event_t>(pipe->FetchEventID(kEvent));
  AscendC::SetFlag<kEvent>(id);
  AscendC::WaitFlag<kEvent>(id);
}

template <typename T>
class SelectBlocksKernel {
public:
  // MatmulType<position, format, dtype, transpose>: pooled key means are read transposed (K^T);
  // logit rows land 32-byte aligned (ND_ALIGN) so the vector copies whole rows.
  using MeanType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, float, false>;
  using KeyMeanType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, float, true>;
  using LogitType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND_ALIGN, float>;
  using BiasType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, float>;

  matmul::Matmul<MeanType, KeyMeanType, LogitType, BiasType> scores;

  __aicore__ inline SelectBlocksKernel() {}

  __aicore__ inline void Init(GM_ADDR query, GM_ADDR key, GM_ADDR actualQ, GM_ADDR actualKv, GM_ADDR sabi,
                              GM_ADDR userWorkspace, const BlitzSelectBlocksTilingData *tiling, AscendC::TPipe *pipe)
  {
    p_ = &tiling->params;
    softmaxTiling_ = &tiling->softmax;
    pipe_ = pipe;
    qGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(query));
    kGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(key));
    sabiGm_.SetGlobalBuffer(reinterpret_cast<__gm__ uint16_t *>(sabi),
                            static_cast<uint64_t>(p_->batch * p_->heads * p_->rows * p_->cols));
    if (p_->actual_q_count > 0) {
      actualQGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int64_t *>(actualQ), p_->actual_q_count);
    }
    if (p_->actual_kv_count > 0) {
      actualKvGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int64_t *>(actualKv), p_->actual_kv_count);
    }

    // The worker index places this core's workspace: [key means | query means | logits | sums]
    // (cells: the means are cell vectors, the sums the partial cells' key and query sums).
    worker_ = AscendC::GetBlockIdx();
    GM_ADDR base = userWorkspace + p_->ws_worker_bytes * worker_;
    keyMeanWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(base));
    queryMeanWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(base + p_->ws_key_bytes));
    logitWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(base + p_->ws_key_bytes + p_->ws_query_bytes));
    GM_ADDR sums = base + p_->ws_key_bytes + p_->ws_query_bytes + p_->ws_logit_bytes;
    keySumWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(sums));
    querySumWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(sums) + p_->cols * p_->head_dim);

    // The refinement's own buffers (the square sums, one query unit's block masses, each block's
    // first unit) exist only when the plan sized them: sub_block is 0 when refine_below is, and
    // without them a score row may be about twice as long (select_plan.cpp).
    // Antidiagonal cells (stride > 0) use the block firsts and the unit block-mass row too (the
    // latter also as the partial cells' stash), the count / ln rows as a 64-entry ln n table,
    // and the fallback's sum rows; one score row is their only row per key unit.
    refining_ = p_->sub_block > 0;
    cells_ = p_->stride > 0;
    const bool unitRows = refining_ || cells_;
    pipe_->InitBuffer(tokenQue_, kSelectTokenBuffers, p_->ub_tokens_bytes);
    pipe_->InitBuffer(floatBuf_, p_->ub_float_bytes);
    pipe_->InitBuffer(meanQue_, kSelectSingleBuffer, p_->ub_mean_bytes);
    if (refining_) {
      pipe_->InitBuffer(sqBuf_, p_->ub_mean_bytes);
    }
    pipe_->InitBuffer(scoreQue_, kSelectSingleBuffer, p_->ub_unit_row_bytes);
    pipe_->InitBuffer(countRowBuf_, p_->ub_log_bytes);
    pipe_->InitBuffer(unitLogBuf_, p_->ub_log_bytes);
    pipe_->InitBuffer(massBuf_, p_->ub_score_bytes);
    pipe_->InitBuffer(groupMassBuf_, p_->ub_score_bytes);
    if (unitRows) {
      pipe_->InitBuffer(blockRowBuf_, p_->ub_score_bytes);
    }
    pipe_->InitBuffer(maxBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(sumBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(expMaxBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(tmpBuf_, p_->ub_softmax_tmp_bytes);
    pipe_->InitBuffer(sabiBuf_, p_->ub_sabi_bytes);
    if (unitRows) {
      pipe_->InitBuffer(firstBuf_, p_->ub_first_bytes);
    }
    if (cells_) {
      pipe_->InitBuffer(sumRowsBuf_, p_->ub_sum_bytes);
    }

    unitBegin_ = p_->unit_start[worker_];
    unitEnd_ = p_->unit_start[worker_ + 1];
    // Fixed for the launch: logits [query units, key units] with rows k_units_aligned apart;
    // pooled rows are cell_dim floats apart (D; cells: stride x D) (SetOrgShape(orgM, orgN, orgKa,
    // orgKb, orgKc)). No key block: no matmul.
    if (p_->cols == 0) return;
    const int32_t k = static_cast<int32_t>(p_->cell_dim);
    scores.SetOrgShape(static_cast<int32_t>(p_->q_units_max), static_cast<int32_t>(p_->k_units_max), k, k,
                       static_cast<int32_t>(p_->k_units_aligned));
  }

  __aicore__ inline void Process()
  {
    if ASCEND_IS_AIV {
      for (int64_t u = unitBegin_; u < unitEnd_; ++u) {
        RunUnit(u);
      }
      if (computed_) {
        scores.End();
      }
    }
  }

private:
  __aicore__ inline void RunUnit(int64_t u)
  {
    const int64_t i = u % p_->rows;
    const int64_t g = (u / p_->rows) % p_->kv_heads;
    const int64_t b = u / (p_->rows * p_->kv_heads);
    const BatchTokens tokens = ReadBatchTokens(p_, actualQGm_, actualKvGm_, b);
    const int64_t firstToken = i * p_->block_q;
    const int64_t queryRows = blitz::min_i64(p_->block_q, tokens.seq.q_len - firstToken);
    const int64_t valid = tokens.seq.kv_blocks_valid;
    const int64_t firstHead = g * p_->group;
    if (queryRows <= 0 || valid == 0) {  // nothing this block can attend: empty rows
      FillEmptyRow();
      for (int64_t m = 0; m < p_->group; ++m) {
        WriteSabiRow(b, firstHead + m, i);
      }
      return;
    }
    if (b != keysOfBatch_ || g != keysOfHead_) {
      PoolKeys(b, g, tokens, valid);
      keysOfBatch_ = b;
      keysOfHead_ = g;
    }
    int64_t next = 0;
    for (int64_t m = 0; m < p_->group; ++m) {
      const int64_t at = b * p_->q.b + (firstHead + m) * p_->q.h + (tokens.q_start + firstToken) * p_->q.s;
      qFirst_[m] = next;
      if (cells_) {  // row groups of stride rows, the last one possibly partial
        StageBlock(qGm_, at, queryRows, p_->q.s, queryMeanWs_[next * p_->cell_dim], true,
                   querySumWs_[m * p_->head_dim]);
        qSize_[m] = p_->stride;
        next += blitz::ceil_div(queryRows, p_->stride);
      } else {
        qSize_[m] = PoolUnits(qGm_, at, queryRows, p_->q.s, queryMeanWs_, &next);
      }
    }
    qFirst_[p_->group] = next;
    ComputeLogits(next);

    const uint32_t cols = static_cast<uint32_t>(p_->cols_aligned);
    AscendC::LocalTensor<float> mass = massBuf_.Get<float>();
    AscendC::LocalTensor<float> groupMass = groupMassBuf_.Get<float>();
    if (p_->share_kv_groups) {
      AscendC::Duplicate(groupMass, 0.0f, static_cast<int32_t>(cols));
    }
    for (int64_t m = 0; m < p_->group; ++m) {
      BlockMass(m, valid, queryRows, mass);
      if (p_->share_kv_groups) {
        AscendC::Add(groupMass, groupMass, mass, static_cast<int32_t>(cols));
      } else {
        Choose(mass, valid, firstToken, queryRows);
        WriteSabiRow(b, firstHead + m, i);
      }
    }
    if (p_->share_kv_groups) {
      AscendC::Muls(groupMass, groupMass, 1.0f / static_cast<float>(p_->group), static_cast<int32_t>(cols));
      Choose(groupMass, valid, firstToken, queryRows);
      for (int64_t m = 0; m < p_->group; ++m) {
        WriteSabiRow(b, firstHead + m, i);
      }
    }
  }

  // One block of `rows` token rows (from element `at` of src, row stride `stride`) pooled into
  // units, their means to rows *next, *next + 1, ... of ws (D floats apart); returns the unit
  // size in tokens (rows: the block is one unit). The block's mean is written first; a refined
  // block's sub-block means then overwrite it (MTE3 writes in order).
  __aicore__ inline int64_t PoolUnits(const AscendC::GlobalTensor<T> &src, int64_t at, int64_t rows, int64_t stride,
                                      const AscendC::GlobalTensor<float> &ws, int64_t *next)
  {
    const float coherence = PoolRows(src, at, rows, stride, ws[*next * p_->head_dim], refining_);
    const int64_t size = refining_ && coherence < p_->refine_below ? blitz::min_i64(p_->sub_block, rows) : rows;
    if (size == rows) {
      ++*next;
      return rows;
    }
    for (int64_t r0 = 0; r0 < rows; r0 += size) {
      PoolRows(src, at + r0 * stride, blitz::min_i64(size, rows - r0), stride, ws[*next * p_->head_dim], false);
      ++*next;
    }
    return size;
  }

  // x[0, d) = x * x, by the repeat form (Mul.md: SIMD-API/基础API/Memory矢量计算/基础算术/Mul.md):
  // whole 64-float repeats, then one repeat masked to the tail.
  __aicore__ inline void SquareRow(const AscendC::LocalTensor<float> &x, int32_t d)
  {
    const AscendC::BinaryRepeatParams contiguous(1, 1, 1, 8, 8, 8);
    const int32_t full = d / kRepeatFloats;
    const int32_t tail = d - full * kRepeatFloats;
    if (full > 0) {
      AscendC::Mul(x, x, x, static_cast<uint64_t>(kRepeatFloats), static_cast<uint8_t>(full), contiguous);
    }
    if (tail > 0) {
      const AscendC::LocalTensor<float> rest = x[static_cast<uint32_t>(full * kRepeatFloats)];
      AscendC::Mul(rest, rest, rest, static_cast<uint64_t>(tail), 1, contiguous);
    }
  }

  // n (<= chunk_rows) token rows of D elements, rowStride elements apart in GM from src[at] on,
  // cast to float into floats (n x D, dense): through tokenQue_ (MTE2 -> V), as both the pooling
  // and the cell staging read their tokens.
  __aicore__ inline void LoadRowsAsFloat(const AscendC::GlobalTensor<T> &src, int64_t at, int64_t n, int64_t rowStride,
                                         const AscendC::LocalTensor<float> &floats)
  {
    const int32_t d = static_cast<int32_t>(p_->head_dim);
    AscendC::LocalTensor<T> tokens = tokenQue_.AllocTensor<T>();
    // DataCopyExtParams field order: blockCount, blockLen (bytes), srcStride (GM gap, bytes),
    // dstStride (UB gap, 32-byte blocks), rsv. D * sizeof(T) is whole 32-byte blocks.
    const AscendC::DataCopyExtParams copy(static_cast<uint16_t>(n), static_cast<uint32_t>(d * sizeof(T)),
                                          static_cast<uint32_t>((rowStride - d) * sizeof(T)), 0, 0);
    // DataCopyPadExtParams field order: isPad, leftPadding, rightPadding, paddingValue.
    const AscendC::DataCopyPadExtParams<T> noPad(false, 0, 0, T());
    AscendC::DataCopyPad(tokens, src[at], copy, noPad);
    tokenQue_.EnQue(tokens);
    tokens = tokenQue_.DeQue<T>();
    AscendC::Cast(floats, tokens, AscendC::RoundMode::CAST_NONE, static_cast<uint32_t>(n * d));
    tokenQue_.FreeTensor(tokens);
  }

  // The mean of `rows` token rows (row stride `stride` elements from element `at` of src), as a
  // float row of D to dst: chunks of chunk_rows rows copied in, cast to float, summed row by row.
  // coherence: also sum the squares and return |sum x|^2 / (rows sum |x|^2) = rows |mean|^2 /
  // sum |x|^2 (1 for all-zero tokens, as the CPU op); otherwise 1. Only a refining launch asks
  // for it (sqBuf_ exists then).
  __aicore__ inline float PoolRows(const AscendC::GlobalTensor<T> &src, int64_t at, int64_t rows, int64_t stride,
                                   const AscendC::GlobalTensor<float> &dst, bool coherence)
  {
    const int32_t d = static_cast<int32_t>(p_->head_dim);
    AscendC::LocalTensor<float> mean = meanQue_.AllocTensor<float>();
    AscendC::Duplicate(mean, 0.0f, d);
    AscendC::LocalTensor<float> sq;
    if (coherence) {
      sq = sqBuf_.Get<float>();
      AscendC::Duplicate(sq, 0.0f, d);
    }
    AscendC::LocalTensor<float> floats = floatBuf_.Get<float>();
    for (int64_t r0 = 0; r0 < rows; r0 += p_->chunk_rows) {
      const int64_t n = blitz::min_i64(p_->chunk_rows, rows - r0);
      LoadRowsAsFloat(src, at + r0 * stride, n, stride, floats);
      for (int64_t r = 0; r < n; ++r) {
        const AscendC::LocalTensor<float> row = floats[static_cast<uint32_t>(r * d)];
        AscendC::Add(mean, mean, row, d);
        if (coherence) {
          SquareRow(row, d);
          AscendC::Add(sq, sq, row, d);
        }
      }
    }
    AscendC::Muls(mean, mean, 1.0f / static_cast<float>(rows), d);
    meanQue_.EnQue(mean);
    mean = meanQue_.DeQue<float>();
    float result = 1.0f;
    if (coherence) {
      OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the scalar unit reads mean and sq
      float meanSq = 0.0f, sumSq = 0.0f;
      for (int32_t c = 0; c < d; ++c) {
        const float v = mean.GetValue(static_cast<uint32_t>(c));
        meanSq += v * v;
        sumSq += sq.GetValue(static_cast<uint32_t>(c));
      }
      result = sumSq > 0.0f ? static_cast<float>(rows) * meanSq / sumSq : 1.0f;
      OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: the next pooling overwrites them
    }
    AscendC::DataCopy(dst, mean, static_cast<uint32_t>(d));
    meanQue_.FreeTensor(mean);
    return result;
  }

  // The key units of the batch's valid blocks to the key-mean workspace. Refining: firstBuf_[j]
  // is block j's first unit (firstBuf_[valid] = kUnits_), unitLogBuf_ each unit's ln(n_t / bkv)
  // (0 past the units: ln 1). Otherwise a block is a unit and lastLog_ the partial last block's
  // ln(n / bkv) (0 when it is full).
  __aicore__ inline void PoolKeys(int64_t b, int64_t g, const BatchTokens &tokens, int64_t valid)
  {
    if (cells_) {
      StageKeyCells(b, g, tokens, valid);
      return;
    }
    if (!refining_) {
      int64_t next = 0;
      for (int64_t j = 0; j < valid; ++j) {
        const int64_t rows = blitz::min_i64(p_->block_kv, tokens.seq.kv_len - j * p_->block_kv);
        const int64_t at = b * p_->k.b + g * p_->k.h + (tokens.kv_start + j * p_->block_kv) * p_->k.s;
        PoolUnits(kGm_, at, rows, p_->k.s, keyMeanWs_, &next);
      }
      kUnits_ = next;
      const int64_t lastKeys = tokens.seq.kv_len - (valid - 1) * p_->block_kv;
      lastLog_ = lastKeys < p_->block_kv ? PartialBlockLog(lastKeys) : 0.0f;
      return;
    }
    const int32_t unitCols = static_cast<int32_t>(p_->k_units_aligned);
    AscendC::LocalTensor<float> count = countRowBuf_.Get<float>();
    AscendC::LocalTensor<int32_t> firstOf = firstBuf_.Get<int32_t>();
    AscendC::Duplicate(count, 1.0f, unitCols);
    OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the unit counts overwrite the ones
    int64_t next = 0;
    for (int64_t j = 0; j < valid; ++j) {
      const int64_t first = j * p_->block_kv;
      const int64_t rows = blitz::min_i64(p_->block_kv, tokens.seq.kv_len - first);
      const int64_t at = b * p_->k.b + g * p_->k.h + (tokens.kv_start + first) * p_->k.s;
      const int64_t unit0 = next;
      const int64_t size = PoolUnits(kGm_, at, rows, p_->k.s, keyMeanWs_, &next);
      firstOf.SetValue(static_cast<uint32_t>(j), static_cast<int32_t>(unit0));
      for (int64_t t = unit0; t < next; ++t) {
        const int64_t n = blitz::min_i64(size, rows - (t - unit0) * size);
        count.SetValue(static_cast<uint32_t>(t), static_cast<float>(n) / static_cast<float>(p_->block_kv));
      }
    }
    firstOf.SetValue(static_cast<uint32_t>(valid), static_cast<int32_t>(next));
    kUnits_ = next;
    OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: Log reads the counts
    AscendC::Log(unitLogBuf_.Get<float>(), count, static_cast<uint32_t>(unitCols));
  }

  // One block's `n` token rows (from element `at` of src, rowStride elements apart) as cell
  // vectors of S x D floats (S = the cell side, p_->stride) to dst (cell c at dst[c * cell_dim]):
  // token x in slot x % S of cell x / S, or (reversed: the query side) in slot S - 1 - x % S,
  // so that a query cell vector . a key cell vector is the sum of q . k along the cell's
  // antidiagonal. The last cell's unused slots are written zero (they hold the previous block's
  // values otherwise); when it is partial its rows' sum (D floats, the fallback's) goes to sumDst.
  __aicore__ inline void StageBlock(const AscendC::GlobalTensor<T> &src, int64_t at, int64_t n, int64_t rowStride,
                                    const AscendC::GlobalTensor<float> &dst, bool reversed,
                                    const AscendC::GlobalTensor<float> &sumDst)
  {
    const int32_t d = static_cast<int32_t>(p_->head_dim);
    const int64_t s = p_->stride;
    const int64_t lastFirst = (blitz::ceil_div(n, s) - 1) * s;
    const int64_t lastRows = n - lastFirst;
    const bool partial = lastRows < s;
    AscendC::LocalTensor<float> sum;
    if (partial) {
      sum = meanQue_.AllocTensor<float>();
      AscendC::Duplicate(sum, 0.0f, d);
    }
    AscendC::LocalTensor<float> floats = floatBuf_.Get<float>();
    for (int64_t r0 = 0; r0 < n; r0 += p_->chunk_rows) {
      const int64_t m = blitz::min_i64(p_->chunk_rows, n - r0);
      LoadRowsAsFloat(src, at + r0 * rowStride, m, rowStride, floats);
      if (partial) {
        for (int64_t r = blitz::max_i64(lastFirst - r0, 0); r < m; ++r) {
          AscendC::Add(sum, sum, floats[static_cast<uint32_t>(r * d)], d);
        }
      }
      OrderPipes<AscendC::HardEvent::V_MTE3>(pipe_);  // V -> MTE3: the cast rows go out
      if (!reversed) {  // a block's cells are its rows in order, S rows each
        AscendC::DataCopy(dst[r0 * d], floats, static_cast<uint32_t>(m * d));
      } else {
        for (int64_t r = 0; r < m; ++r) {
          const int64_t x = r0 + r;
          const int64_t slot = x / s * s + s - 1 - x % s;
          AscendC::DataCopy(dst[slot * d], floats[static_cast<uint32_t>(r * d)], static_cast<uint32_t>(d));
        }
      }
      OrderPipes<AscendC::HardEvent::MTE3_V>(pipe_);  // MTE3 -> V: the next cast overwrites them
    }
    if (!partial) return;
    // The unused slots: after the keys of a key cell, before the rows of a query row group.
    const int64_t zeroFirst = reversed ? lastFirst : lastFirst + lastRows;
    const int64_t zeros = s - lastRows;
    for (int64_t z0 = 0; z0 < zeros; z0 += p_->chunk_rows) {
      const int64_t piece = blitz::min_i64(p_->chunk_rows, zeros - z0);
      AscendC::Duplicate(floats, 0.0f, static_cast<int32_t>(piece * d));
      OrderPipes<AscendC::HardEvent::V_MTE3>(pipe_);
      AscendC::DataCopy(dst[(zeroFirst + z0) * d], floats, static_cast<uint32_t>(piece * d));
      OrderPipes<AscendC::HardEvent::MTE3_V>(pipe_);
    }
    meanQue_.EnQue(sum);
    sum = meanQue_.DeQue<float>();
    AscendC::DataCopy(sumDst, sum, static_cast<uint32_t>(d));
    meanQue_.FreeTensor(sum);
  }

  // The key cells of the batch's valid blocks (antidiagonal) to the key workspace: firstBuf_[j]
  // is block j's first cell (firstBuf_[valid] = kUnits_). Only a block's last cell can be
  // partial (fewer than stride keys); its key sum goes to keySumWs_[j]. The first call also
  // fills unitLogBuf_[k - 1] = ln k for k = 1..kLnTable, the cells' ln n_t.
  __aicore__ inline void StageKeyCells(int64_t b, int64_t g, const BatchTokens &tokens, int64_t valid)
  {
    if (!lnReady_) {
      AscendC::LocalTensor<float> count = countRowBuf_.Get<float>();
      for (int32_t k = 1; k <= kLnTable; ++k) {
        count.SetValue(static_cast<uint32_t>(k - 1), static_cast<float>(k));
      }
      OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: Log reads them
      AscendC::Log(unitLogBuf_.Get<float>(), count, static_cast<uint32_t>(kLnTable));
      OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the scalar unit reads the table
      lnStride_ = LnOf(p_->stride);
      lnReady_ = true;
    }
    const int64_t s = p_->stride;
    AscendC::LocalTensor<int32_t> firstOf = firstBuf_.Get<int32_t>();
    int64_t next = 0;
    for (int64_t j = 0; j < valid; ++j) {
      const int64_t first = j * p_->block_kv;
      const int64_t rows = blitz::min_i64(p_->block_kv, tokens.seq.kv_len - first);
      const int64_t at = b * p_->k.b + g * p_->k.h + (tokens.kv_start + first) * p_->k.s;
      StageBlock(kGm_, at, rows, p_->k.s, keyMeanWs_[next * p_->cell_dim], false, keySumWs_[j * p_->head_dim]);
      firstOf.SetValue(static_cast<uint32_t>(j), static_cast<int32_t>(next));
      next += blitz::ceil_div(rows, s);
    }
    firstOf.SetValue(static_cast<uint32_t>(valid), static_cast<int32_t>(next));
    kUnits_ = next;
    kvLen_ = tokens.seq.kv_len;
    lastLog_ = 0.0f;
  }

  // The keys of block j's last cell (stride when it is full).
  __aicore__ inline int64_t LastCellKeys(int64_t j)
  {
    const int64_t rows = blitz::min_i64(p_->block_kv, kvLen_ - j * p_->block_kv);
    return rows - (blitz::ceil_div(rows, p_->stride) - 1) * p_->stride;
  }

  // ln k (1 <= k <= kLnTable) from the table.
  __aicore__ inline float LnOf(int64_t k) { return unitLogBuf_.Get<float>().GetValue(static_cast<uint32_t>(k - 1)); }

  // A partial row group (nU rows, head m) and a partial key cell of block j (nT keys) with
  // nU + nT <= stride share no antidiagonal pair: their score is the mean over all their pairs,
  // scale (sum q) . (sum k) / (nU nT), from the sums the staging wrote (scalar unit).
  __aicore__ inline float FallbackScore(int64_t m, int64_t j, int64_t nU, int64_t nT)
  {
    const uint32_t d = static_cast<uint32_t>(p_->head_dim);
    AscendC::LocalTensor<float> qSum = sumRowsBuf_.Get<float>();
    AscendC::LocalTensor<float> kSum = qSum[p_->ub_mean_bytes / sizeof(float)];
    OrderPipes<AscendC::HardEvent::S_MTE2>(pipe_);  // S -> MTE2: the sums were read before
    AscendC::DataCopy(qSum, querySumWs_[m * p_->head_dim], d);
    AscendC::DataCopy(kSum, keySumWs_[j * p_->head_dim], d);
    OrderPipes<AscendC::HardEvent::MTE2_S>(pipe_);  // MTE2 -> S: the scalar unit reads them
    float dot = 0.0f;
    for (uint32_t x = 0; x < d; ++x) {
      dot += qSum.GetValue(x) * kSum.GetValue(x);
    }
    return p_->scale * dot / static_cast<float>(nU * nT);
  }

  // Row group r (head m, nU rows): its logits over the key cells in `row` (raw sums from the
  // cube). A full cell has nU antidiagonal pairs (stride for a full group), so the vector unit
  // scales the whole row by scale / nU and adds ln stride; a partial cell (a block's last, nT
  // keys) has nT + nU - stride pairs (or none: the fallback), so the scalar unit reads its raw
  // sum first (stashed in blockRowBuf_, free until the softmax is taken) and writes its logit
  // after: scale x sum / pairs + ln nT. With stride | bkv only the batch's last cell can be partial.
  __aicore__ inline void CellLogits(AscendC::LocalTensor<float> &row, int64_t m, int64_t nU, int64_t valid)
  {
    const int64_t s = p_->stride;
    const uint32_t cols = static_cast<uint32_t>(p_->k_units_aligned);
    const int64_t j0 = p_->block_kv % s == 0 ? valid - 1 : 0;
    AscendC::LocalTensor<int32_t> firstOf = firstBuf_.Get<int32_t>();
    AscendC::LocalTensor<float> stash = blockRowBuf_.Get<float>();
    bool partialCells = false;
    for (int64_t j = j0; j < valid && !partialCells; ++j) {
      partialCells = LastCellKeys(j) < s;
    }
    if (partialCells) {
      OrderPipes<AscendC::HardEvent::MTE2_S>(pipe_);  // MTE2 -> S: the scalar unit reads raw sums
      OrderPipes<AscendC::HardEvent::V_S>(pipe_);     // V -> S: the last row's block sums read the stash
      for (int64_t j = j0; j < valid; ++j) {
        const int64_t nT = LastCellKeys(j);
        if (nT == s) continue;
        const uint32_t t = static_cast<uint32_t>(firstOf.GetValue(static_cast<uint32_t>(j + 1)) - 1);
        const int64_t pairs = nT + nU - s;
        const float score = pairs > 0 ? row.GetValue(t) * (p_->scale / static_cast<float>(pairs))
                                      : FallbackScore(m, j, nU, nT);
        stash.SetValue(static_cast<uint32_t>(j), score + LnOf(nT));
      }
      OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: the Muls overwrites what was read
    }
    AscendC::Muls(row, row, p_->scale / static_cast<float>(nU), static_cast<int32_t>(cols));
    AscendC::Adds(row, row, lnStride_, static_cast<int32_t>(cols));
    if (partialCells) {
      OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the partial cells' logits go in
      for (int64_t j = j0; j < valid; ++j) {
        if (LastCellKeys(j) == s) continue;
        const uint32_t t = static_cast<uint32_t>(firstOf.GetValue(static_cast<uint32_t>(j + 1)) - 1);
        row.SetValue(t, stash.GetValue(static_cast<uint32_t>(j)));
      }
    }
  }

  // ln(keys / bkv) of a partial last block, by the vector Log on one 8-float block (ub_log_bytes
  // when not refining).
  __aicore__ inline float PartialBlockLog(int64_t keys)
  {
    AscendC::LocalTensor<float> count = countRowBuf_.Get<float>();
    AscendC::LocalTensor<float> log = unitLogBuf_.Get<float>();
    AscendC::Duplicate(count, static_cast<float>(keys) / static_cast<float>(p_->block_kv), kStatFloats);
    AscendC::Log(log, count, static_cast<uint32_t>(kStatFloats));
    OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the scalar unit reads the log
    const float value = log.GetValue(0);
    OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: the next batch's Duplicate overwrites it
    return value;
  }

  // logits [query units, key units] = pooled Q x pooled K^T, rows k_units_aligned apart.
  __aicore__ inline void ComputeLogits(int64_t queryUnits)
  {
    // MTE3 -> S: the pooled rows this core just wrote must be in GM before the matmul message.
    OrderPipes<AscendC::HardEvent::MTE3_S>(pipe_);
    if (cells_) {  // MTE3 -> MTE2: the fallback reads back the partial cells' sums
      OrderPipes<AscendC::HardEvent::MTE3_MTE2>(pipe_);
    }
    scores.SetTensorA(queryMeanWs_);
    scores.SetTensorB(keyMeanWs_, /*isTransposeB=*/true);
    scores.SetTail(static_cast<int32_t>(queryUnits), static_cast<int32_t>(kUnits_), static_cast<int32_t>(p_->cell_dim));
    scores.IterateAll(logitWs_);
    computed_ = true;
  }

  // Head m's block masses into `mass` (cols_aligned floats; 0 past the valid blocks): each of
  // its query units' softmax over the key units, summed per key block, weighted n_u / rows.
  __aicore__ inline void BlockMass(int64_t m, int64_t valid, int64_t queryRows, const AscendC::LocalTensor<float> &mass)
  {
    const int32_t cols = static_cast<int32_t>(p_->cols_aligned);
    AscendC::Duplicate(mass, 0.0f, cols);
    for (int64_t r = qFirst_[m]; r < qFirst_[m + 1]; ++r) {
      const int64_t n = blitz::min_i64(qSize_[m], queryRows - (r - qFirst_[m]) * qSize_[m]);
      const float weight = static_cast<float>(n) / static_cast<float>(queryRows);
      AscendC::LocalTensor<float> row = scoreQue_.AllocTensor<float>();
      const float total = UnitSoftmax(r, m, n, valid, row);
      if (kUnits_ == valid) {  // every key block is one unit: the softmax row is the block masses
        AscendC::Muls(row, row, weight / total, cols);
        AscendC::Add(mass, mass, row, cols);
      } else {  // some block was refined or cut into cells (blockRowBuf_ exists)
        AscendC::LocalTensor<float> blockRow = blockRowBuf_.Get<float>();
        AscendC::Duplicate(blockRow, 0.0f, cols);
        OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the scalar unit sums the row
        AscendC::LocalTensor<int32_t> firstOf = firstBuf_.Get<int32_t>();
        for (int64_t j = 0; j < valid; ++j) {
          float sum = 0.0f;
          const int64_t t1 = firstOf.GetValue(static_cast<uint32_t>(j + 1));
          for (int64_t t = firstOf.GetValue(static_cast<uint32_t>(j)); t < t1; ++t) {
            sum += row.GetValue(static_cast<uint32_t>(t));
          }
          blockRow.SetValue(static_cast<uint32_t>(j), sum * (weight / total));
        }
        OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: Add reads what the scalar wrote
        AscendC::Add(mass, mass, blockRow, cols);
      }
      scoreQue_.FreeTensor(row);
    }
  }

  // Query unit r's (of head m, n rows) softmax numerators over the key units into `row`
  // (k_units_aligned floats, 0 past the units); returns their sum. Cells: logit = the cube's
  // antidiagonal sum x scale / pairs (the antidiagonal's mean) + ln n_t (CellLogits).
  __aicore__ inline float UnitSoftmax(int64_t r, int64_t m, int64_t n, int64_t valid, AscendC::LocalTensor<float> &row)
  {
    const uint32_t cols = static_cast<uint32_t>(p_->k_units_aligned);
    AscendC::DataCopy(row, logitWs_[r * p_->k_units_aligned], cols);
    scoreQue_.EnQue(row);
    row = scoreQue_.DeQue<float>();
    if (cells_) {
      CellLogits(row, m, n, valid);
    } else {
      AscendC::Muls(row, row, p_->scale, static_cast<int32_t>(cols));
    }
    if (refining_) {
      AscendC::Add(row, row, unitLogBuf_.Get<float>(), static_cast<int32_t>(cols));
    }
    // Without the refinement the partial last block's log term, and the columns up to the next
    // 32-byte block, on the scalar unit (the cube left ND_ALIGN's invalid data there); whole
    // blocks after them by Duplicate.
    const int64_t units = kUnits_;
    const int64_t blockEnd = blitz::min_i64((units + kLogitRowAlign - 1) / kLogitRowAlign * kLogitRowAlign, p_->k_units_aligned);
    OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: Muls / Add wrote the row
    if (!refining_ && !cells_ && lastLog_ != 0.0f) {
      const uint32_t last = static_cast<uint32_t>(units - 1);
      row.SetValue(last, row.GetValue(last) + lastLog_);
    }
    for (int64_t j = units; j < blockEnd; ++j) {
      row.SetValue(static_cast<uint32_t>(j), kExcludedLogit);
    }
    OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: the softmax reads what the scalar wrote
    if (blockEnd < p_->k_units_aligned) {
      AscendC::Duplicate(row[static_cast<uint32_t>(blockEnd)], kExcludedLogit,
                         static_cast<int32_t>(p_->k_units_aligned - blockEnd));
    }
    AscendC::LocalTensor<float> maxRow = maxBuf_.Get<float>();
    AscendC::LocalTensor<float> sumRow = sumBuf_.Get<float>();
    AscendC::LocalTensor<float> expMax = expMaxBuf_.Get<float>();
    AscendC::LocalTensor<uint8_t> tmp = tmpBuf_.Get<uint8_t>();
    // SoftMaxShapeInfo field order: srcM, srcK, oriSrcM, oriSrcK. isUpdate = false: dst =
    // exp(x - rowmax), sum = its row sum (expMax not written).
    const AscendC::SoftMaxShapeInfo shape{1, cols, 1, cols};
    AscendC::SoftmaxFlashV2<float, /*isUpdate=*/false>(row, sumRow, maxRow, row, expMax, sumRow, maxRow, tmp,
                                                       *softmaxTiling_, shape);
    OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the scalar unit reads the sum
    return sumRow.GetValue(0);
  }

  // The rule on one row of masses (valid blocks), into sabiBuf_; marks kept entries kKeptMark.
  __aicore__ inline void Choose(const AscendC::LocalTensor<float> &mass, int64_t valid, int64_t firstToken,
                                int64_t queryRows)
  {
    OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the masses are read and marked here
    const int64_t diagLo = firstToken / p_->block_kv;
    const int64_t diagHi = (firstToken + queryRows - 1) / p_->block_kv;
    float reached = 0.0f;
    int64_t anchored = 0;
    for (int64_t j = 0; j < valid; ++j) {  // anchors, their mass summed in block order
      const bool anchor = j < p_->anchor_first || (p_->anchor_last && j == valid - 1) ||
                          (p_->anchor_diagonal && j >= diagLo && j <= diagHi);
      if (anchor) {
        reached += mass.GetValue(static_cast<uint32_t>(j));
        mass.SetValue(static_cast<uint32_t>(j), kKeptMark);
        ++anchored;
      }
    }
    const int64_t candidates = valid - anchored;
    const int64_t floor = p_->top_k > 0 ? blitz::min_i64(candidates, blitz::max_i64(0, p_->top_k - anchored)) : 0;
    for (int64_t taken = 0; taken < candidates && (taken < floor || (p_->mass > 0.0f && reached < p_->mass)); ++taken) {
      int64_t best = 0;
      float bestMass = kKeptMark;
      for (int64_t j = 0; j < valid; ++j) {  // strict >: the lower index wins a tie
        const float v = mass.GetValue(static_cast<uint32_t>(j));
        if (v > bestMass) {
          best = j;
          bestMass = v;
        }
      }
      reached += bestMass;
      mass.SetValue(static_cast<uint32_t>(best), kKeptMark);
    }
    AscendC::LocalTensor<uint16_t> out = sabiBuf_.Get<uint16_t>();
    int64_t w = 0;
    for (int64_t j = 0; j < valid; ++j) {
      if (mass.GetValue(static_cast<uint32_t>(j)) < 0.0f) {
        out.SetValue(static_cast<uint32_t>(w++), static_cast<uint16_t>(j));
      }
    }
    for (; w < p_->cols; ++w) {
      out.SetValue(static_cast<uint32_t>(w), blitz::limits::kSabiPad);
    }
    OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: the next head's masses overwrite the marks
  }

  __aicore__ inline void FillEmptyRow()
  {
    AscendC::LocalTensor<uint16_t> out = sabiBuf_.Get<uint16_t>();
    for (int64_t w = 0; w < p_->cols; ++w) {
      out.SetValue(static_cast<uint32_t>(w), blitz::limits::kSabiPad);
    }
  }

  __aicore__ inline void WriteSabiRow(int64_t b, int64_t h, int64_t i)
  {
    if (p_->cols == 0) return;
    OrderPipes<AscendC::HardEvent::S_MTE3>(pipe_);  // S -> MTE3: the row was written by SetValue
    // DataCopyExtParams field order: blockCount, blockLen (bytes), srcStride, dstStride, rsv.
    const AscendC::DataCopyExtParams copy(1, static_cast<uint32_t>(p_->cols * sizeof(uint16_t)), 0, 0, 0);
    AscendC::DataCopyPad(sabiGm_[((b * p_->heads + h) * p_->rows + i) * p_->cols], sabiBuf_.Get<uint16_t>(), copy);
    OrderPipes<AscendC::HardEvent::MTE3_S>(pipe_);  // MTE3 -> S: the next row's SetValue overwrites it
  }

  const SelectTilingParams *p_ = nullptr;
  const AscendC::tiling::SoftMaxTiling *softmaxTiling_ = nullptr;
  AscendC::TPipe *pipe_ = nullptr;
  int64_t worker_ = 0;
  int64_t unitBegin_ = 0, unitEnd_ = 0;
  int64_t keysOfBatch_ = -1, keysOfHead_ = -1;  // whose key means the workspace holds
  int64_t kUnits_ = 0;                           // and how many key units they are
  float lastLog_ = 0.0f;                         // not refining: their partial last block's ln(n / bkv)
  bool refining_ = false;                        // sub_block > 0: the refinement's buffers exist
  bool cells_ = false;                           // stride > 0: antidiagonal cells (their buffers exist)
  bool lnReady_ = false;                         // cells: the ln k table is filled
  float lnStride_ = 0.0f;                        // cells: ln stride (a full cell's ln n_t)
  int64_t kvLen_ = 0;                            // cells: the staged batch's key length
  // Head m's query units: rows [qFirst_[m], qFirst_[m + 1]) of the query workspace, qSize_[m]
  // tokens each (the last may be shorter).
  int64_t qFirst_[blitz::limits::kNpuGroupMax + 1] = {};
  int64_t qSize_[blitz::limits::kNpuGroupMax] = {};
  bool computed_ = false;

  AscendC::GlobalTensor<T> qGm_, kGm_;
  AscendC::GlobalTensor<uint16_t> sabiGm_;
  AscendC::GlobalTensor<int64_t> actualQGm_, actualKvGm_;
  AscendC::GlobalTensor<float> keyMeanWs_, queryMeanWs_, logitWs_, keySumWs_, querySumWs_;

  AscendC::TQue<AscendC::TPosition::VECIN, kSelectTokenBuffers> tokenQue_;
  AscendC::TQue<AscendC::TPosition::VECIN, kSelectSingleBuffer> scoreQue_;
  AscendC::TQue<AscendC::TPosition::VECOUT, kSelectSingleBuffer> meanQue_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> floatBuf_, sqBuf_, massBuf_, groupMassBuf_, blockRowBuf_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> countRowBuf_, unitLogBuf_, firstBuf_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> sumRowsBuf_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> maxBuf_, sumBuf_, expMaxBuf_, tmpBuf_;
  AscendC::TBuf<AscendC::TPosition::VECOUT> sabiBuf_;
};

}  // namespace blitz_npu
