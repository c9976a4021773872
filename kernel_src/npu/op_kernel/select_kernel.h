// BlitzSelectBlocks (method mean_pool, no sub-block refinement) on the NPU: the sabi
// BlitzSparseAttention takes, chosen from the query and key.
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
//   vector: the mean of each of the batch's key blocks of head g (once per (b, g) and worker:
//           consecutive units reuse it) and the mean of query block i of each query head of the
//           group, to the worker's workspace (float)
//   cube:   logits [group, valid blocks] = pooled Q x pooled K^T (Matmul "scores", sync)
//   vector: per head: l_j = scale * logit_j + ln(n_j / bkv) (only a partial last block has
//           n_j < bkv; the softmax is shift-invariant, so this is the CPU op's scale q.k + ln n_j),
//           columns past the valid blocks excluded, softmax (SoftmaxFlashV2) -> block masses;
//           share_kv_groups: the group's mean mass
//   scalar: the choice (block_choice.h's rule): anchors always; then the best remaining block
//           (highest mass, lower index on a tie) while fewer than top_k - |anchors| are taken or
//           the kept mass is below `mass`; the row written ascending, then 0xFFFF.
// The choice runs on the scalar unit (GetValue / SetValue over one row of masses, O(valid x
// taken) reads): a row is a few hundred blocks at most and the rule is sequential.
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
constexpr uint32_t kStatFloats = 8;  // one 32-byte block: SoftmaxFlashV2's per-row statistics
constexpr int64_t kLogitRowAlign = 8;  // ND_ALIGN writes whole 32-byte blocks of each logit row

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

    // The worker index places this core's workspace: [key means | query means | logits].
    worker_ = AscendC::GetBlockIdx();
    GM_ADDR base = userWorkspace + p_->ws_worker_bytes * worker_;
    keyMeanWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(base));
    queryMeanWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(base + p_->ws_key_bytes));
    logitWs_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(base + p_->ws_key_bytes + p_->ws_query_bytes));

    pipe_->InitBuffer(tokenQue_, kSelectTokenBuffers, p_->ub_tokens_bytes);
    pipe_->InitBuffer(floatBuf_, p_->ub_float_bytes);
    pipe_->InitBuffer(meanQue_, kSelectSingleBuffer, p_->ub_mean_bytes);
    pipe_->InitBuffer(scoreQue_, kSelectSingleBuffer, p_->ub_score_bytes);
    pipe_->InitBuffer(massBuf_, p_->ub_score_bytes);
    pipe_->InitBuffer(groupMassBuf_, p_->ub_score_bytes);
    pipe_->InitBuffer(maxBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(sumBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(expMaxBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(countBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(logBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(tmpBuf_, p_->ub_softmax_tmp_bytes);
    pipe_->InitBuffer(sabiBuf_, p_->ub_sabi_bytes);

    unitBegin_ = p_->unit_start[worker_];
    unitEnd_ = p_->unit_start[worker_ + 1];
    // Fixed for the launch: logits [group, cols] with rows cols_aligned apart; pooled rows are
    // D floats apart (SetOrgShape(orgM, orgN, orgKa, orgKb, orgKc)). No key block: no matmul.
    if (p_->cols == 0) return;
    const int32_t d = static_cast<int32_t>(p_->head_dim);
    scores.SetOrgShape(static_cast<int32_t>(p_->group), static_cast<int32_t>(p_->cols), d, d,
                       static_cast<int32_t>(p_->cols_aligned));
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
    for (int64_t m = 0; m < p_->group; ++m) {
      const int64_t at = b * p_->q.b + (firstHead + m) * p_->q.h + (tokens.q_start + firstToken) * p_->q.s;
      PoolRows(qGm_, at, queryRows, p_->q.s, queryMeanWs_[m * p_->head_dim]);
    }
    ComputeLogits(valid);

    const int64_t lastKeys = tokens.seq.kv_len - (valid - 1) * p_->block_kv;
    const float lastLog = lastKeys < p_->block_kv ? PartialBlockLog(lastKeys) : 0.0f;
    const uint32_t cols = static_cast<uint32_t>(p_->cols_aligned);
    AscendC::LocalTensor<float> mass = massBuf_.Get<float>();
    AscendC::LocalTensor<float> groupMass = groupMassBuf_.Get<float>();
    if (p_->share_kv_groups) {
      AscendC::Duplicate(groupMass, 0.0f, static_cast<int32_t>(cols));
    }
    for (int64_t m = 0; m < p_->group; ++m) {
      BlockMass(m, valid, lastLog, mass);
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

  // The mean of `rows` token rows (row stride `stride` elements from element `at` of src), as a
  // float row of D to dst: chunks of chunk_rows rows copied in, cast to float, summed row by row.
  __aicore__ inline void PoolRows(const AscendC::GlobalTensor<T> &src, int64_t at, int64_t rows, int64_t stride,
                                  const AscendC::GlobalTensor<float> &dst)
  {
    const int32_t d = static_cast<int32_t>(p_->head_dim);
    AscendC::LocalTensor<float> mean = meanQue_.AllocTensor<float>();
    AscendC::Duplicate(mean, 0.0f, d);
    AscendC::LocalTensor<float> floats = floatBuf_.Get<float>();
    for (int64_t r0 = 0; r0 < rows; r0 += p_->chunk_rows) {
      const int64_t n = blitz::min_i64(p_->chunk_rows, rows - r0);
      AscendC::LocalTensor<T> tokens = tokenQue_.AllocTensor<T>();
      // DataCopyExtParams field order: blockCount, blockLen (bytes), srcStride (GM gap, bytes),
      // dstStride (UB gap, 32-byte blocks), rsv. D * sizeof(T) is whole 32-byte blocks.
      const AscendC::DataCopyExtParams copy(static_cast<uint16_t>(n), static_cast<uint32_t>(d * sizeof(T)),
                                            static_cast<uint32_t>((stride - d) * sizeof(T)), 0, 0);
      // DataCopyPadExtParams field order: isPad, leftPadding, rightPadding, paddingValue.
      const AscendC::DataCopyPadExtParams<T> noPad(false, 0, 0, T());
      AscendC::DataCopyPad(tokens, src[at + r0 * stride], copy, noPad);
      tokenQue_.EnQue(tokens);
      tokens = tokenQue_.DeQue<T>();
      AscendC::Cast(floats, tokens, AscendC::RoundMode::CAST_NONE, static_cast<uint32_t>(n * d));
      tokenQue_.FreeTensor(tokens);
      for (int64_t r = 0; r < n; ++r) {
        AscendC::Add(mean, mean, floats[static_cast<uint32_t>(r * d)], d);
      }
    }
    AscendC::Muls(mean, mean, 1.0f / static_cast<float>(rows), d);
    meanQue_.EnQue(mean);
    mean = meanQue_.DeQue<float>();
    AscendC::DataCopy(dst, mean, static_cast<uint32_t>(d));
    meanQue_.FreeTensor(mean);
  }

  // Key block j's mean to row j of the key-mean workspace, for the batch's valid blocks.
  __aicore__ inline void PoolKeys(int64_t b, int64_t g, const BatchTokens &tokens, int64_t valid)
  {
    for (int64_t j = 0; j < valid; ++j) {
      const int64_t first = j * p_->block_kv;
      const int64_t rows = blitz::min_i64(p_->block_kv, tokens.seq.kv_len - first);
      const int64_t at = b * p_->k.b + g * p_->k.h + (tokens.kv_start + first) * p_->k.s;
      PoolRows(kGm_, at, rows, p_->k.s, keyMeanWs_[j * p_->head_dim]);
    }
  }

  // logits [group, valid] = pooled Q x pooled K^T, rows cols_aligned apart.
  __aicore__ inline void ComputeLogits(int64_t valid)
  {
    // MTE3 -> S: the pooled rows this core just wrote must be in GM before the matmul message.
    OrderPipes<AscendC::HardEvent::MTE3_S>(pipe_);
    scores.SetTensorA(queryMeanWs_);
    scores.SetTensorB(keyMeanWs_, /*isTransposeB=*/true);
    scores.SetTail(static_cast<int32_t>(p_->group), static_cast<int32_t>(valid), static_cast<int32_t>(p_->head_dim));
    scores.IterateAll(logitWs_);
    computed_ = true;
  }

  // ln(keys / bkv) of a partial last block, by the vector Log on one 8-float block.
  __aicore__ inline float PartialBlockLog(int64_t keys)
  {
    AscendC::LocalTensor<float> count = countBuf_.Get<float>();
    AscendC::LocalTensor<float> log = logBuf_.Get<float>();
    AscendC::Duplicate(count, static_cast<float>(keys) / static_cast<float>(p_->block_kv), static_cast<int32_t>(kStatFloats));
    AscendC::Log(log, count, kStatFloats);
    OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: the scalar unit reads the log
    const float value = log.GetValue(0);
    OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: the next unit's Duplicate overwrites it
    return value;
  }

  // Head m's block masses into `mass` (cols_aligned floats; 0 past the valid blocks).
  __aicore__ inline void BlockMass(int64_t m, int64_t valid, float lastLog, const AscendC::LocalTensor<float> &mass)
  {
    const uint32_t cols = static_cast<uint32_t>(p_->cols_aligned);
    AscendC::LocalTensor<float> row = scoreQue_.AllocTensor<float>();
    AscendC::DataCopy(row, logitWs_[m * p_->cols_aligned], cols);
    scoreQue_.EnQue(row);
    row = scoreQue_.DeQue<float>();
    AscendC::Muls(row, row, p_->scale, static_cast<int32_t>(cols));
    // The partial block's log term and the columns up to the next 32-byte block on the scalar
    // unit (the cube left ND_ALIGN's invalid data there); whole blocks after them by Duplicate.
    const int64_t blockEnd = blitz::min_i64((valid + kLogitRowAlign - 1) / kLogitRowAlign * kLogitRowAlign, p_->cols_aligned);
    OrderPipes<AscendC::HardEvent::V_S>(pipe_);  // V -> S: Muls wrote the row
    if (lastLog != 0.0f) {
      row.SetValue(static_cast<uint32_t>(valid - 1), row.GetValue(static_cast<uint32_t>(valid - 1)) + lastLog);
    }
    for (int64_t j = valid; j < blockEnd; ++j) {
      row.SetValue(static_cast<uint32_t>(j), kExcludedLogit);
    }
    OrderPipes<AscendC::HardEvent::S_V>(pipe_);  // S -> V: the softmax reads what the scalar wrote
    if (blockEnd < p_->cols_aligned) {
      AscendC::Duplicate(row[static_cast<uint32_t>(blockEnd)], kExcludedLogit,
                         static_cast<int32_t>(p_->cols_aligned - blockEnd));
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
    const float total = sumRow.GetValue(0);
    AscendC::Muls(mass, row, 1.0f / total, static_cast<int32_t>(cols));
    scoreQue_.FreeTensor(row);
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
  bool computed_ = false;

  AscendC::GlobalTensor<T> qGm_, kGm_;
  AscendC::GlobalTensor<uint16_t> sabiGm_;
  AscendC::GlobalTensor<int64_t> actualQGm_, actualKvGm_;
  AscendC::GlobalTensor<float> keyMeanWs_, queryMeanWs_, logitWs_;

  AscendC::TQue<AscendC::TPosition::VECIN, kSelectTokenBuffers> tokenQue_;
  AscendC::TQue<AscendC::TPosition::VECIN, kSelectSingleBuffer> scoreQue_;
  AscendC::TQue<AscendC::TPosition::VECOUT, kSelectSingleBuffer> meanQue_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> floatBuf_, massBuf_, groupMassBuf_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> maxBuf_, sumBuf_, expMaxBuf_, countBuf_, logBuf_, tmpBuf_;
  AscendC::TBuf<AscendC::TPosition::VECOUT> sabiBuf_;
};

}  // namespace blitz_npu
