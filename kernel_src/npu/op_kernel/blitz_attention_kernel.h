// BlitzSparseAttention on one Ascend AI core pair group: block-sparse flash attention that
// computes only the (query block, key block) tiles sabi selects.
//
// Tensors (strides in elements, read once from the tiling into q_/k_/v_/out_ ViewStrides):
//   query [B, N, Sq, D]   element (b, h, s, d) at b*q.b + h*q.h + s*q.s + d
//   key, value [B, Nkv, Skv, D] with k.*/v.*; query head h reads kv head h / (N / Nkv)
//   attention_out like query with out.* (BNSD_BSND writes BSND)
//   softmax_lse [B, N, Sq] float32, contiguous (written only with kWithLse: softmax_lse_flag)
//   sabi uint16 [Bs, Ns, ceil(Sq/bq), W]; actual_seq_lengths(_kv) int64 [1 or B]
//   atten_mask bytes (sparse_mode 0/1 only): (b, h, i, j) at b*mask_stride_b + h*mask_stride_h +
//     i*mask_stride_q + j; a mask larger than [Sq, Skv] is read in its top-left window
//   TND (packed): query / out [T, N, D], key / value [Tkv, Nkv, D], strides b = 0; batch b's
//     rows start at token end[b-1] of the cumulative actual_seq_lengths(_kv) [B]
//     (batch_tokens_gm.h), so element (b, h, s, d) is at (start_b + s)*q.s + h*q.h + d; Sq / Skv
//     are the longest batch's; lse [N, T] (lse_stride_h = T); no explicit mask
//
// Work: a task is (b, h, query block) in the flattened order of kernel_src/common/
// work_split.h; vector worker w (of 2 per cube core) runs tasks [task_start[w], task_start[w+1]);
// when sabi's values never reached the host (device_split), each worker first computes the
// same weighted ranges itself by streaming sabi (split_scan_gm.h); w, w + workers, ... only
// when the tiling switched that scan off (interleave).
// A query block is processed in row groups of group_rows rows. Per group, for each selected key
// block j (bkv keys, the last one partial):
//   cube:   S_j = Q_g K_j^T            (Matmul "qk", scores to the worker's workspace, float)
//   vector: P_j = exp(scale*S_j - m_j) with the running max m and sum l (SoftmaxFlashV2),
//           probabilities to the workspace in the input dtype
//   cube:   T_j = P_j V_j              (Matmul "pv", float)
//   vector: O = O * exp(m_{j-1} - m_j) + T_j
// and finally out = O / l, lse = m + ln l. The cube computes S_{j+1} while the vector works on
// P_j, and P_j V_j while the vector adds T_{j-1} to O (see ComputeGroup; the two Matmul objects
// take turns, each ended before the other computes, as End.md requires).
//
// Token masks (sparse_mode 1-4, DESIGN.md): each selected tile is classified for the group's
// rows with kernel_src/common/token_mask.h. Fully masked tiles are never computed; fully
// allowed tiles run exactly as without a mask; only mixed tiles mask their scores in the
// unified buffer (mask_ops.h): from the row's allowed interval in modes 2-4, from the
// atten_mask bytes in modes 0/1. A row that met only masked keys ends with zeros, lse -inf.
//
// Cube and vector: the kernel is KERNEL_TYPE_MIX_AIC_1_2. The Matmul objects below are clients
// on the vector cores; REGIST_MATMUL_OBJ (in the entry function) turns the cube core into the
// Matmul server for its two vector cores (the cube part, under ASCEND_IS_AIC inside that macro)
// and returns there, so everything in this class runs under ASCEND_IS_AIV.
#pragma once

#include "kernel_operator.h"
#include "matmul_include.h"

#include "platform.h"
#include "tile_geometry.h"
#include "token_mask.h"
#include "work_split.h"
#include "blitz_tiling_data.h"
#include "mask_ops.h"
#include "row_ops.h"
#include "batch_tokens_gm.h"
#include "sabi_row_gm.h"
#include "split_scan_gm.h"

namespace blitz_npu {

// Queued unified-buffer tensors are double-buffered: the copy of slice k+1 overlaps the
// compute on slice k.
constexpr int32_t BUFFER_NUM = 2;
// Ping-pong workspace buffers per worker (scores, probabilities, P*V tiles): tile j+1's matmul
// writes one while the vector reads tile j's from the other.
constexpr int32_t WS_PINGPONG = 2;
// The explicit mask's bytes are copied in once per slice of a mixed tile and used at once.
constexpr int32_t MASK_BUFFER_NUM = 1;

template <typename T, bool kWithLse>
class BlitzAttentionKernel {
public:
  // Matmul types: MatmulType<position, format, dtype, transpose>. K is read transposed
  // (K_j^T); scores land 32-byte aligned per row (ND_ALIGN) so the vector can copy rows.
  using QType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, T, false>;
  using KType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, T, true>;
  using SType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND_ALIGN, float>;
  using PType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, T, false>;
  using VType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, T, false>;
  using OType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, float>;
  using BiasType = matmul::MatmulType<AscendC::TPosition::GM, CubeFormat::ND, float>;

  matmul::Matmul<QType, KType, SType, BiasType, CFG_MDL> qk;
  matmul::Matmul<PType, VType, OType, BiasType, CFG_MDL> pv;

  __aicore__ inline BlitzAttentionKernel() {}

  __aicore__ inline void Init(GM_ADDR query, GM_ADDR key, GM_ADDR value, GM_ADDR sabi,
                              GM_ADDR actualQ, GM_ADDR actualKv, GM_ADDR mask, GM_ADDR out, GM_ADDR lse,
                              GM_ADDR userWorkspace, const BlitzSparseAttentionTilingData *tiling,
                              AscendC::TPipe *pipe)
  {
    p_ = &tiling->params;
    softmaxTiling_ = &tiling->softmax;
    pipe_ = pipe;
    qGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(query));
    kGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(key));
    vGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(value));
    outGm_.SetGlobalBuffer(reinterpret_cast<__gm__ T *>(out));
    if constexpr (kWithLse) {
      lseGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float *>(lse));
    }
    if (p_->has_sabi) {
      sabiGm_.SetGlobalBuffer(reinterpret_cast<__gm__ uint16_t *>(sabi), p_->sabi_length);
    }
    if (p_->actual_q_count > 0) {
      actualQGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int64_t *>(actualQ), p_->actual_q_count);
    }
    if (p_->actual_kv_count > 0) {
      actualKvGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int64_t *>(actualKv), p_->actual_kv_count);
    }
    if (p_->has_mask_tensor) {
      // bool, int8 and uint8 masks are all read as bytes: nonzero = masked out.
      maskGm_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t *>(mask));
    }

    // The worker index comes first: it places this core's workspace below and its tasks after.
    worker_ = AscendC::GetBlockIdx();  // on a vector core: [0, 2 x cube cores)
    // This worker's workspace: [score x2 | prob x2 | otile x2], sizes from the tiling.
    GM_ADDR base = userWorkspace + p_->ws_worker_bytes * worker_;
    for (int32_t i = 0; i < WS_PINGPONG; ++i) {
      scoreWs_[i].SetGlobalBuffer(reinterpret_cast<__gm__ float *>(base + p_->ws_score_bytes * i));
      probWs_[i].SetGlobalBuffer(
          reinterpret_cast<__gm__ T *>(base + p_->ws_score_bytes * WS_PINGPONG + p_->ws_prob_bytes * i));
      otileWs_[i].SetGlobalBuffer(reinterpret_cast<__gm__ float *>(
          base + (p_->ws_score_bytes + p_->ws_prob_bytes) * WS_PINGPONG + p_->ws_otile_bytes * i));
    }

    pipe_->InitBuffer(scoreQue_, BUFFER_NUM, p_->ub_score_bytes);
    pipe_->InitBuffer(probQue_, BUFFER_NUM, p_->ub_prob_bytes);
    pipe_->InitBuffer(otileQue_, BUFFER_NUM, p_->ub_otile_bytes);
    pipe_->InitBuffer(outQue_, BUFFER_NUM, p_->ub_out_bytes);
    pipe_->InitBuffer(accBuf_, p_->ub_acc_bytes);
    pipe_->InitBuffer(maxBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(sumBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(expMaxBuf_[0], p_->ub_stat_bytes);
    pipe_->InitBuffer(expMaxBuf_[1], p_->ub_stat_bytes);
    pipe_->InitBuffer(lseBuf_, p_->ub_stat_bytes);
    pipe_->InitBuffer(tmpBuf_, p_->ub_softmax_tmp_bytes);
    if (p_->has_mask_tensor) {
      pipe_->InitBuffer(maskQue_, MASK_BUFFER_NUM, p_->ub_mask_bytes);
      pipe_->InitBuffer(maskHalfBuf_, p_->ub_mask_half_bytes);
      pipe_->InitBuffer(maskBitsBuf_, p_->ub_mask_bits_bytes);
    }

    taskStep_ = 1;
    if (p_->device_split && p_->has_sabi && p_->scan_chunk > 0) {
      // sabi is device data: weigh the tasks by scanning it here (split_scan_gm.h), in the
      // O accumulator's buffer, which no task has touched yet.
      if ASCEND_IS_AIV {
        DeviceTaskRange(pipe_, p_, sabiGm_, actualQGm_, actualKvGm_, accBuf_.Get<uint16_t>(), worker_, &taskBegin_,
                        &taskEnd_);
      }
    } else if (p_->interleave) {
      taskBegin_ = worker_;
      taskEnd_ = p_->tasks;
      taskStep_ = p_->workers;
    } else {
      taskBegin_ = p_->task_start[worker_];
      taskEnd_ = p_->task_start[worker_ + 1];
    }

    // Strides are fixed for the launch: set the matmuls' original shapes once (each call is a
    // message to the cube core). SetOrgShape(orgM, orgN, orgKa, orgKb, orgKc): Ka / Kb are the
    // row strides of Q and K, Kc the row stride of the score buffer; for P*V, N is V's row
    // stride, Ka the probability buffer's, Kc = D (T_j rows are contiguous).
    // Skv == 0: no key block exists, so no matmul runs, and 0 is not a valid original K.
    if (p_->seq_kv == 0) return;
    const int32_t kvAligned = static_cast<int32_t>(p_->kv_block_aligned);
    qk.SetOrgShape(static_cast<int32_t>(p_->group_rows), kvAligned, static_cast<int32_t>(p_->q.s),
                   static_cast<int32_t>(p_->k.s), kvAligned);
    pv.SetOrgShape(static_cast<int32_t>(p_->group_rows), static_cast<int32_t>(p_->v.s), kvAligned,
                   static_cast<int32_t>(p_->seq_kv), static_cast<int32_t>(p_->head_dim));
  }

  __aicore__ inline void Process()
  {
    if ASCEND_IS_AIV {
      // Each Matmul object is ended after each of its computations (ComputeGroup), so none is
      // left to end here.
      for (int64_t t = taskBegin_; t < taskEnd_; t += taskStep_) {
        RunTask(t);
      }
    }
  }

private:
  // One (b, h, query block): its row groups, each computed or zero-filled.
  __aicore__ inline void RunTask(int64_t t)
  {
    const blitz::TaskIndex task = blitz::TaskIndex::decode(t, p_->heads, p_->q_blocks);
    // This batch's lengths and (TND) first tokens, read from the actual-length tensors.
    const BatchTokens tokens = ReadBatchTokens(p_, actualQGm_, actualKvGm_, task.b);
    const blitz::SequenceGeometry &seq = tokens.seq;
    const blitz::BlockAxis qAxis = blitz::BlockAxis::make(p_->seq_q, p_->block_q);
    kvAxis_ = blitz::BlockAxis::make(p_->seq_kv, p_->block_kv);
    kvLen_ = seq.kv_len;
    // This batch entry's mask with its own lengths; the explicit mask's bytes stay in global
    // memory (maskBatch_), the rule object only knows there is one (every live tile is mixed).
    tokenMask_ = blitz::TokenMask::make(static_cast<int>(p_->mask_mode), seq.q_len, seq.kv_len, p_->pre_tokens,
                                        p_->next_tokens, nullptr, 0);
    maskBatch_ = task.b * p_->mask_stride_b + task.h * p_->mask_stride_h;  // this (b, h)'s mask rows

    b_ = task.b;
    h_ = task.h;
    kvHead_ = task.h / p_->group;
    // Element offsets of this (b, h): b * stride_b plus, with TND (stride_b 0), the batch's first
    // token's row; the lse row likewise.
    qBase_ = b_ * p_->q.b + tokens.q_start * p_->q.s + h_ * p_->q.h;
    kBase_ = b_ * p_->k.b + tokens.kv_start * p_->k.s + kvHead_ * p_->k.h;
    vBase_ = b_ * p_->v.b + tokens.kv_start * p_->v.s + kvHead_ * p_->v.h;
    outBase_ = b_ * p_->out.b + tokens.q_start * p_->out.s + h_ * p_->out.h;
    lseBase_ = b_ * p_->lse_stride_b + h_ * p_->lse_stride_h + tokens.q_start;
    const int64_t blockBegin = qAxis.begin(task.q_block);
    // TND: rows past the batch's length are the next batch's tokens, never this task's to write.
    const int64_t blockEnd = p_->packed ? blitz::min_i64(qAxis.end(task.q_block), seq.q_len) : qAxis.end(task.q_block);
    for (int64_t g0 = blockBegin; g0 < blockEnd; g0 += p_->group_rows) {
      const int64_t gEnd = blitz::min_i64(g0 + p_->group_rows, blockEnd);
      const int64_t validEnd = blitz::clamp_i64(seq.q_len, g0, gEnd);  // rows >= q_len: zeros
      bool computed = false;
      if (validEnd > g0) {
        GmSabiRow row;
        row.Init(sabiGm_, p_->has_sabi != 0, p_->sabi_batch, p_->sabi_heads, p_->sabi_rows,
                 p_->sabi_width, task.b, task.h, task.q_block, seq.kv_blocks_valid);
        computed = ComputeGroup(g0, validEnd - g0, row);
      }
      // Rows with no selected key (an empty sabi row) or past the q length: zeros, lse -inf.
      WriteEmptyRows(computed ? validEnd : g0, gEnd);
    }
  }

  // Rows [row0, row0 + rows) of head (b_, h_): the pipelined loop over the selected key blocks.
  // Returns false (nothing written) when the row selects no block.
  //
  // End.md: switching computation between Matmul objects requires one End() of the object that
  // computed last, so qk and pv are never in flight together: each IterateAll is waited and its
  // object ended before the other object computes. Order of work, tile i (S_i is ready; cube
  // work in brackets runs while the vector core computes):
  //   issue S_{i+1}; softmax_i [cube: S_{i+1}]; wait S_{i+1}, end qk;
  //   issue P_i V; update O with T_{i-1} [cube: P_i V]; wait T_i, end pv.
  __aicore__ inline bool ComputeGroup(int64_t row0, int64_t rows, GmSabiRow &row)
  {
    row0_ = row0;
    int64_t current;
    int32_t currentClass;
    if (!NextTile(row, rows, current, currentClass)) return false;
    IssueScores(row0, rows, current, currentClass, 0);
    WaitAndEnd(qk);  // S_0 is in scoreWs_[0]
    int64_t next = 0;
    int32_t nextClass = blitz::kTileAllAllowed;
    bool hasNext = NextTile(row, rows, next, nextClass);
    for (int32_t i = 0;; ++i) {
      const int32_t buf = i % WS_PINGPONG;
      if (hasNext) IssueScores(row0, rows, next, nextClass, (i + 1) % WS_PINGPONG);
      Softmax(rows, buf, /*first=*/i == 0);
      if (hasNext) WaitAndEnd(qk);  // S_{i+1} is in scoreWs_[1 - buf]
      IssuePv(rows, current, buf);
      if (i > 0) UpdateOutput(rows, 1 - buf, /*first=*/i == 1);  // T_{i-1}, in otileWs_[1 - buf]
      WaitAndEnd(pv);  // T_i is in otileWs_[buf]
      if (!hasNext) {
        UpdateOutput(rows, buf, /*first=*/i == 0);
        break;
      }
      current = next;
      hasNext = NextTile(row, rows, next, nextClass);
    }
    Finalize(row0, rows);
    return true;
  }

  // Completes a Matmul object's asynchronous IterateAll and ends the object (End.md), so the
  // other object may compute next.
  template <typename Mm>
  __aicore__ inline void WaitAndEnd(Mm &mm)
  {
    mm.WaitIterateAll();
    mm.End();
  }

  // The next selected key block the token mask leaves anything of, for rows [row0_, row0_ +
  // rows), and its class (all allowed or mixed); fully masked blocks are skipped here.
  __aicore__ inline bool NextTile(GmSabiRow &row, int64_t rows, int64_t &kvBlock, int32_t &tileClass)
  {
    while (row.Next(kvBlock)) {
      const blitz::TileClass c = tokenMask_.classify(row0_, row0_ + rows, kvAxis_.begin(kvBlock), kvAxis_.end(kvBlock));
      if (c == blitz::kTileAllMasked) continue;
      // The explicit mask's bytes are not looked at here: any live tile may hold masked keys.
      tileClass = (p_->has_mask_tensor && c == blitz::kTileAllAllowed) ? blitz::kTileMixed : c;
      return true;
    }
    return false;
  }

  // Cube: S = Q[row0 : row0 + rows] K_j^T into scoreWs_[buf] (asynchronous).
  __aicore__ inline void IssueScores(int64_t row0, int64_t rows, int64_t kvBlock, int32_t tileClass, int32_t buf)
  {
    const int64_t keys = blitz::min_i64(kvAxis_.end(kvBlock), kvLen_) - kvAxis_.begin(kvBlock);
    const int64_t qOffset = qBase_ + row0 * p_->q.s;
    const int64_t kOffset = kBase_ + kvAxis_.begin(kvBlock) * p_->k.s;
    qk.SetTail(static_cast<int32_t>(rows), static_cast<int32_t>(keys), static_cast<int32_t>(p_->head_dim));
    qk.SetTensorA(qGm_[qOffset]);
    qk.SetTensorB(kGm_[kOffset], /*isTransposeB=*/true);
    qk.template IterateAll</*sync=*/false>(scoreWs_[buf], /*enAtomic=*/0, /*enSequentialWrite=*/false,
                                           /*waitIterateAll=*/true);
    keys_[buf] = keys;
    tileClass_[buf] = tileClass;
    keyBegin_[buf] = kvAxis_.begin(kvBlock);
  }

  // Cube: T = P V_j into otileWs_[buf] (asynchronous). The probabilities were written by this
  // core's MTE3 queue; the cube core may only be told to read them once they are in memory.
  __aicore__ inline void IssuePv(int64_t rows, int64_t kvBlock, int32_t buf)
  {
    const int64_t vOffset = vBase_ + kvAxis_.begin(kvBlock) * p_->v.s;
    // MTE3 -> S: the probability tile's copy to global memory must finish before the scalar
    // unit sends the matmul message that makes the cube core read it.
    const event_t probWritten = static_cast<event_t>(pipe_->FetchEventID(AscendC::HardEvent::MTE3_S));
    AscendC::SetFlag<AscendC::HardEvent::MTE3_S>(probWritten);
    AscendC::WaitFlag<AscendC::HardEvent::MTE3_S>(probWritten);
    pv.SetTail(static_cast<int32_t>(rows), static_cast<int32_t>(p_->head_dim), static_cast<int32_t>(keys_[buf]));
    pv.SetTensorA(probWs_[buf]);
    pv.SetTensorB(vGm_[vOffset]);
    pv.template IterateAll</*sync=*/false>(otileWs_[buf], 0, false, /*waitIterateAll=*/true);
  }

  // Vector: scores of tile i (scoreWs_[buf], keys_[buf] valid columns) -> probabilities in
  // probWs_[buf], updating the running max / sum and writing expMaxBuf_[buf].
  __aicore__ inline void Softmax(int64_t rows, int32_t buf, bool first)
  {
    const uint32_t keys = static_cast<uint32_t>(keys_[buf]);
    const uint32_t keysAligned = AlignRow(keys);
    for (int64_t r = 0; r < rows; r += p_->slice_rows) {
      const uint32_t sliceRows = static_cast<uint32_t>(blitz::min_i64(p_->slice_rows, rows - r));
      CopyInScores(r, sliceRows, keys, keysAligned, buf);
      if (p_->has_mask_tensor && tileClass_[buf] == blitz::kTileMixed) CopyInMask(r, sliceRows, keys, buf);
      ComputeProbabilities(r, sliceRows, keys, keysAligned, buf, first);
      CopyOutProbabilities(r, sliceRows, keysAligned, buf);
    }
  }

  __aicore__ inline void CopyInScores(int64_t r, uint32_t sliceRows, uint32_t keys,
                                      uint32_t keysAligned, int32_t buf)
  {
    AscendC::LocalTensor<float> scores = scoreQue_.AllocTensor<float>();
    // DataCopyExtParams{blockCount, blockLen (bytes), srcStride (bytes, global), dstStride
    // (32-byte blocks, local), rsv}: one block per row, rows kv_block_aligned floats apart.
    const AscendC::DataCopyExtParams copy(static_cast<uint16_t>(sliceRows), keysAligned * sizeof(float),
                                          static_cast<uint32_t>((p_->kv_block_aligned - keysAligned) * sizeof(float)),
                                          0, 0);
    // DataCopyPadExtParams{isPad, leftPadding, rightPadding, paddingValue}: rows are whole
    // blocks already, no padding.
    AscendC::DataCopyPad(scores, scoreWs_[buf][r * p_->kv_block_aligned], copy,
                         AscendC::DataCopyPadExtParams<float>{false, 0, 0, 0.0f});
    scoreQue_.EnQue(scores);
  }

  __aicore__ inline void ComputeProbabilities(int64_t r, uint32_t sliceRows, uint32_t keys,
                                              uint32_t keysAligned, int32_t buf, bool first)
  {
    AscendC::LocalTensor<float> scores = scoreQue_.DeQue<float>();
    const uint32_t count = sliceRows * keysAligned;
    AscendC::Muls(scores, scores, p_->scale, count);
    if (tileClass_[buf] == blitz::kTileMixed) MaskScores(scores, r, sliceRows, keys, keysAligned, buf);
    FillRowTails(scores, sliceRows, keysAligned, keys, kMaskScore);

    const uint32_t statOffset = static_cast<uint32_t>(r) * kFloatsPerBlock;
    AscendC::LocalTensor<float> maxT = maxBuf_.Get<float>()[statOffset];
    AscendC::LocalTensor<float> sumT = sumBuf_.Get<float>()[statOffset];
    AscendC::LocalTensor<float> expMaxT = expMaxBuf_[buf].Get<float>()[statOffset];
    AscendC::LocalTensor<uint8_t> tmp = tmpBuf_.Get<uint8_t>();
    // SoftMaxShapeInfo{srcM, srcK, oriSrcM, oriSrcK}: the padded columns were set to kMaskScore.
    const AscendC::SoftMaxShapeInfo shape{sliceRows, keysAligned, sliceRows, keys};
    // SoftmaxFlashV2<T, isUpdate>(dst, expSum, max, src, expMax, inExpSum, inMax, tmp, tiling,
    // shape): in place on the scores; the first tile starts the running max / sum.
    if (first) {
      AscendC::SoftmaxFlashV2<float, /*isUpdate=*/false>(scores, sumT, maxT, scores, expMaxT, sumT, maxT,
                                                         tmp, *softmaxTiling_, shape);
    } else {
      AscendC::SoftmaxFlashV2<float, /*isUpdate=*/true>(scores, sumT, maxT, scores, expMaxT, sumT, maxT,
                                                        tmp, *softmaxTiling_, shape);
    }
    AscendC::LocalTensor<T> probs = probQue_.AllocTensor<T>();
    // P is rounded to the input dtype before P*V, as the cube multiplies fp16 / bf16.
    AscendC::Cast(probs, scores, AscendC::RoundMode::CAST_RINT, count);
    scoreQue_.FreeTensor(scores);
    probQue_.EnQue(probs);
  }

  // CopyIn: the explicit mask's bytes for slice rows [row0_ + r, + sliceRows) and this tile's
  // keys, one row per block into [sliceRows, keysAligned] bytes (each row padded to 32 bytes).
  __aicore__ inline void CopyInMask(int64_t r, uint32_t sliceRows, uint32_t keys, int32_t buf)
  {
    AscendC::LocalTensor<uint8_t> bytes = maskQue_.AllocTensor<uint8_t>();
    const int64_t offset = maskBatch_ + (row0_ + r) * p_->mask_stride_q + keyBegin_[buf];
    // DataCopyExtParams{blockCount, blockLen (bytes), srcStride (bytes, global), dstStride
    // (32-byte blocks, local), rsv}
    const AscendC::DataCopyExtParams copy(static_cast<uint16_t>(sliceRows), keys,
                                          static_cast<uint32_t>(p_->mask_stride_q - keys), 0, 0);
    AscendC::DataCopyPad(bytes, maskGm_[offset], copy, AscendC::DataCopyPadExtParams<uint8_t>{false, 0, 0, 0});
    maskQue_.EnQue(bytes);
  }

  // Vector: masked scores of a mixed tile's slice -> kMaskScore. Columns >= keys are padding and
  // are overwritten by FillRowTails afterwards.
  __aicore__ inline void MaskScores(const AscendC::LocalTensor<float> &scores, int64_t r, uint32_t sliceRows,
                                    uint32_t keys, uint32_t keysAligned, int32_t buf)
  {
    if (p_->has_mask_tensor) {
      AscendC::LocalTensor<uint8_t> bytes = maskQue_.DeQue<uint8_t>();
      ApplyExplicitMask(scores, bytes, maskHalfBuf_.Get<half>(), maskBitsBuf_.Get<uint8_t>(), sliceRows * keysAligned);
      maskQue_.FreeTensor(bytes);
      return;
    }
    // Modes 2-4: row i allows keys [lo, hi); mask the columns of this tile outside it.
    const int64_t c0 = keyBegin_[buf];
    for (uint32_t k = 0; k < sliceRows; ++k) {
      int64_t lo, hi;
      tokenMask_.row_interval(row0_ + r + k, &lo, &hi);
      const uint32_t allowBegin = static_cast<uint32_t>(blitz::clamp_i64(lo - c0, 0, keys));
      const uint32_t allowEnd = static_cast<uint32_t>(blitz::clamp_i64(hi - c0, allowBegin, keys));
      FillColumns(scores, k * keysAligned, 0, allowBegin, kMaskScore);
      FillColumns(scores, k * keysAligned, allowEnd, keys, kMaskScore);
    }
  }

  __aicore__ inline void CopyOutProbabilities(int64_t r, uint32_t sliceRows, uint32_t keysAligned,
                                              int32_t buf)
  {
    AscendC::LocalTensor<T> probs = probQue_.DeQue<T>();
    const AscendC::DataCopyExtParams copy(static_cast<uint16_t>(sliceRows), keysAligned * sizeof(T), 0,
                                          static_cast<uint32_t>((p_->kv_block_aligned - keysAligned) * sizeof(T)),
                                          0);
    AscendC::DataCopyPad(probWs_[buf][r * p_->kv_block_aligned], probs, copy);
    probQue_.FreeTensor(probs);
  }

  // Vector: O = O * expmax_i + T_i (first tile: O = T_i), slice by slice.
  __aicore__ inline void UpdateOutput(int64_t rows, int32_t buf, bool first)
  {
    const uint32_t d = static_cast<uint32_t>(p_->head_dim);
    AscendC::LocalTensor<float> acc = accBuf_.Get<float>();
    for (int64_t r = 0; r < rows; r += p_->slice_rows) {
      const uint32_t sliceRows = static_cast<uint32_t>(blitz::min_i64(p_->slice_rows, rows - r));
      const uint32_t count = sliceRows * d;
      // CopyIn
      AscendC::LocalTensor<float> tile = otileQue_.AllocTensor<float>();
      AscendC::DataCopy(tile, otileWs_[buf][r * d], count);
      otileQue_.EnQue(tile);
      // Compute
      tile = otileQue_.DeQue<float>();
      AscendC::LocalTensor<float> accRows = acc[static_cast<uint32_t>(r) * d];
      if (first) {
        AscendC::Adds(accRows, tile, 0.0f, count);
      } else {
        AscendC::LocalTensor<float> expMax = expMaxBuf_[buf].Get<float>()[static_cast<uint32_t>(r) * kFloatsPerBlock];
        RowBroadcast</*kDivide=*/false>(accRows, accRows, expMax, sliceRows, d);
        AscendC::Add(accRows, accRows, tile, count);
      }
      otileQue_.FreeTensor(tile);
    }
  }

  // Vector: out = O / sum in the input dtype, lse = max + ln(sum); every row here attended at
  // least one key (a selected block always holds a valid key), so sum >= 1.
  __aicore__ inline void Finalize(int64_t row0, int64_t rows)
  {
    const uint32_t d = static_cast<uint32_t>(p_->head_dim);
    AscendC::LocalTensor<float> acc = accBuf_.Get<float>();
    for (int64_t r = 0; r < rows; r += p_->slice_rows) {
      const uint32_t sliceRows = static_cast<uint32_t>(blitz::min_i64(p_->slice_rows, rows - r));
      const uint32_t stat = static_cast<uint32_t>(r) * kFloatsPerBlock;
      AscendC::LocalTensor<float> accRows = acc[static_cast<uint32_t>(r) * d];
      const uint32_t emptyRows = p_->mask_mode != blitz::kSparseNone ? ClearMaskedRows(accRows, stat, sliceRows) : 0;
      RowBroadcast</*kDivide=*/true>(accRows, accRows, sumBuf_.Get<float>()[stat], sliceRows, d);
      AscendC::LocalTensor<T> outRows = outQue_.AllocTensor<T>();
      AscendC::Cast(outRows, accRows, AscendC::RoundMode::CAST_RINT, sliceRows * d);
      outQue_.EnQue(outRows);
      CopyOutRows(row0 + r, sliceRows);
      if constexpr (kWithLse) {
        AscendC::LocalTensor<float> lse = lseBuf_.Get<float>();
        AscendC::Log(lse, sumBuf_.Get<float>()[stat], sliceRows * kFloatsPerBlock);
        AscendC::Add(lse, lse, maxBuf_.Get<float>()[stat], sliceRows * kFloatsPerBlock);
        for (uint32_t k = 0; k < sliceRows; ++k) {
          if ((emptyRows >> k) & 1u) AscendC::Duplicate(lse[k * kFloatsPerBlock], blitz::neg_infinity(), kFloatsPerBlock);
        }
        CopyOutLse(row0 + r, sliceRows, lse);
      }
    }
  }

  // Rows of the slice whose running max never left kMaskScore met only masked keys: their O
  // accumulator is zeroed (so out = 0 / sum = 0). Returns them as bits (slice_rows <= 32) for
  // the lse -inf. The scalar unit reads the vector unit's max, hence the V -> S wait.
  __aicore__ inline uint32_t ClearMaskedRows(const AscendC::LocalTensor<float> &accRows, uint32_t stat,
                                             uint32_t sliceRows)
  {
    const event_t maxReady = static_cast<event_t>(pipe_->FetchEventID(AscendC::HardEvent::V_S));
    AscendC::SetFlag<AscendC::HardEvent::V_S>(maxReady);
    AscendC::WaitFlag<AscendC::HardEvent::V_S>(maxReady);
    const AscendC::LocalTensor<float> maxT = maxBuf_.Get<float>();
    const uint32_t d = static_cast<uint32_t>(p_->head_dim);
    uint32_t empty = 0;
    for (uint32_t k = 0; k < sliceRows; ++k) {
      if (!IsMaskedRowMax(maxT.GetValue(stat + k * kFloatsPerBlock))) continue;
      empty |= 1u << k;
      AscendC::Duplicate(accRows[k * d], 0.0f, static_cast<int32_t>(d));
    }
    // S -> V: the next SoftmaxFlashV2 overwrites the max the scalar unit has just read (WAR).
    const event_t maxRead = static_cast<event_t>(pipe_->FetchEventID(AscendC::HardEvent::S_V));
    AscendC::SetFlag<AscendC::HardEvent::S_V>(maxRead);
    AscendC::WaitFlag<AscendC::HardEvent::S_V>(maxRead);
    return empty;
  }

  // Rows [row0, rowEnd) of head (b_, h_) get zeros and lse -inf.
  __aicore__ inline void WriteEmptyRows(int64_t row0, int64_t rowEnd)
  {
    const uint32_t d = static_cast<uint32_t>(p_->head_dim);
    for (int64_t r = row0; r < rowEnd; r += p_->slice_rows) {
      const uint32_t sliceRows = static_cast<uint32_t>(blitz::min_i64(p_->slice_rows, rowEnd - r));
      AscendC::LocalTensor<T> zeros = outQue_.AllocTensor<T>();
      AscendC::Duplicate(zeros, static_cast<T>(0.0f), static_cast<int32_t>(sliceRows * d));
      outQue_.EnQue(zeros);
      CopyOutRows(r, sliceRows);
      if constexpr (kWithLse) {
        AscendC::LocalTensor<float> lse = lseBuf_.Get<float>();
        AscendC::Duplicate(lse, blitz::neg_infinity(), static_cast<int32_t>(sliceRows * kFloatsPerBlock));
        CopyOutLse(r, sliceRows, lse);
      }
    }
  }

  // CopyOut: the slice queued in outQue_ to attention_out rows [row, row + sliceRows).
  __aicore__ inline void CopyOutRows(int64_t row, uint32_t sliceRows)
  {
    const uint32_t d = static_cast<uint32_t>(p_->head_dim);
    AscendC::LocalTensor<T> outRows = outQue_.DeQue<T>();
    const int64_t offset = outBase_ + row * p_->out.s;
    const AscendC::DataCopyExtParams copy(static_cast<uint16_t>(sliceRows), d * sizeof(T), 0,
                                          static_cast<uint32_t>((p_->out.s - d) * sizeof(T)), 0);
    AscendC::DataCopyPad(outGm_[offset], outRows, copy);
    outQue_.FreeTensor(outRows);
  }

  // CopyOut: one float per row from the [rows, 8] statistic layout to softmax_lse[b, h, row...].
  __aicore__ inline void CopyOutLse(int64_t row, uint32_t sliceRows, const AscendC::LocalTensor<float> &lse)
  {
    // V -> MTE3: the vector unit's Log/Add (or Duplicate) into the lse buffer must finish before
    // MTE3 copies it out.
    const event_t lseReady = static_cast<event_t>(pipe_->FetchEventID(AscendC::HardEvent::V_MTE3));
    AscendC::SetFlag<AscendC::HardEvent::V_MTE3>(lseReady);
    AscendC::WaitFlag<AscendC::HardEvent::V_MTE3>(lseReady);
    // Each row's statistic is one 32-byte local block; copy its first 4 bytes per row.
    const AscendC::DataCopyExtParams copy(static_cast<uint16_t>(sliceRows), sizeof(float), 0, 0, 0);
    AscendC::DataCopyPad(lseGm_[lseBase_ + row], lse, copy);
    // MTE3 -> V: the next slice's vector ops overwrite the lse buffer; wait for this copy.
    const event_t lseCopied = static_cast<event_t>(pipe_->FetchEventID(AscendC::HardEvent::MTE3_V));
    AscendC::SetFlag<AscendC::HardEvent::MTE3_V>(lseCopied);
    AscendC::WaitFlag<AscendC::HardEvent::MTE3_V>(lseCopied);
  }

  // Row length in elements that keeps every row whole 32-byte blocks for float and fp16/bf16.
  // (32 elements: also whole 32-byte blocks as the explicit mask's bytes.)
  __aicore__ inline static uint32_t AlignRow(uint32_t n)
  {
    constexpr uint32_t kRowAlign = 32;
    return (n + kRowAlign - 1) / kRowAlign * kRowAlign;
  }

  const blitz_npu::BlitzTilingParams *p_ = nullptr;
  const AscendC::tiling::SoftMaxTiling *softmaxTiling_ = nullptr;
  AscendC::TPipe *pipe_ = nullptr;

  AscendC::GlobalTensor<T> qGm_, kGm_, vGm_, outGm_;
  AscendC::GlobalTensor<float> lseGm_;
  AscendC::GlobalTensor<uint16_t> sabiGm_;
  AscendC::GlobalTensor<int64_t> actualQGm_, actualKvGm_;
  AscendC::GlobalTensor<uint8_t> maskGm_;
  AscendC::GlobalTensor<float> scoreWs_[WS_PINGPONG];
  AscendC::GlobalTensor<T> probWs_[WS_PINGPONG];
  AscendC::GlobalTensor<float> otileWs_[WS_PINGPONG];

  AscendC::TQue<AscendC::TPosition::VECIN, BUFFER_NUM> scoreQue_;
  AscendC::TQue<AscendC::TPosition::VECOUT, BUFFER_NUM> probQue_;
  AscendC::TQue<AscendC::TPosition::VECIN, BUFFER_NUM> otileQue_;
  AscendC::TQue<AscendC::TPosition::VECOUT, BUFFER_NUM> outQue_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> accBuf_, maxBuf_, sumBuf_, lseBuf_, tmpBuf_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> expMaxBuf_[WS_PINGPONG];
  AscendC::TQue<AscendC::TPosition::VECIN, MASK_BUFFER_NUM> maskQue_;
  AscendC::TBuf<AscendC::TPosition::VECCALC> maskHalfBuf_, maskBitsBuf_;

  int64_t worker_ = 0, taskBegin_ = 0, taskEnd_ = 0, taskStep_ = 1;
  int64_t b_ = 0, h_ = 0, kvHead_ = 0, kvLen_ = 0;
  int64_t qBase_ = 0, kBase_ = 0, vBase_ = 0, outBase_ = 0, lseBase_ = 0;  // this task's (b, h) origins
  int64_t keys_[WS_PINGPONG] = {0, 0};
  int64_t keyBegin_[WS_PINGPONG] = {0, 0};
  int32_t tileClass_[WS_PINGPONG] = {blitz::kTileAllAllowed, blitz::kTileAllAllowed};
  int64_t row0_ = 0, maskBatch_ = 0;
  blitz::BlockAxis kvAxis_;
  blitz::TokenMask tokenMask_;
};

}  // namespace blitz_npu
