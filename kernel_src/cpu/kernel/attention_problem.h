// The contract between the CPU device's aclnn layer (cann_api/) and its kernel (kernel/).
// cann_api/ checks every argument, resolves layouts into strides and fills an AttentionProblem;
// kernel/ computes it. The kernel trusts the shapes and pointers but not the sabi values:
// every index is bounds-guarded again (a bad index acts as "no block"), so validate=False can
// give wrong zeros but never an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace blitz::cpu {

enum class ElementType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

// Which implementation runs the tiles. kAuto picks the fastest the CPU supports (checked at run
// time); the others force one (tests force kPortable to cover the fallback).
enum class KernelPath : int { kAuto = 0, kPortable = 1, kAvx512 = 2, kAmx = 3, kAvx2 = 4, kNeon = 5, kNeonBf16 = 6 };

// A [batch, heads, seq, head_dim] view; strides are in elements, head_dim's stride is 1.
// Every layout (BNSD, BSND, BSH, BNSD_BSND's output) is one choice of these three strides.
struct TensorView {
  void *data = nullptr;
  int64_t stride_b = 0, stride_h = 0, stride_s = 0;
};

struct AttentionProblem {
  ElementType dtype = ElementType::kFloat32;  // q, k, v and out share it
  int64_t batch = 0, heads_q = 0, heads_kv = 0, seq_q = 0, seq_kv = 0, head_dim = 0;
  TensorView q, k, v, out;  // out is written for every valid (b, h, row); rows past the q length get zeros
  float *lse = nullptr;     // [batch, heads_q, seq_q] contiguous float32, or nullptr

  // sabi [sabi_batch, sabi_heads, sabi_rows, sabi_width], contiguous uint16; 0xFFFF = no block.
  // sabi_batch is 1 or batch, sabi_heads 1 or heads_q (size 1 broadcasts). nullptr = dense.
  const uint16_t *sabi = nullptr;
  int64_t sabi_batch = 0, sabi_heads = 0, sabi_rows = 0, sabi_width = 0;

  int64_t block_q = 128, block_kv = 512;
  float scale = 1.0f;

  // Per-batch valid lengths; nullptr = full length; a count of 1 applies to every batch.
  const int64_t *actual_seq_q = nullptr;
  int64_t actual_seq_q_count = 0;
  const int64_t *actual_seq_kv = nullptr;
  int64_t actual_seq_kv_count = 0;

  // Token masks inside the selected tiles (DESIGN.md): 0/1 explicit mask (or none), 2 causal
  // top-left, 3 causal bottom-right, 4 band bottom-right with pre/next tokens.
  int sparse_mode = 0;
  int64_t pre_tokens = 2147483647, next_tokens = 2147483647;
  // Explicit mask, a nonzero byte = masked out: element (b, h, i, j) at
  // mask[b * mask_stride_b + h * mask_stride_h + i * mask_stride_q + j]; a stride of 0
  // broadcasts over that dim. The mask may be larger than [Sq, Skv]: only i < Sq, j < Skv are read.
  const uint8_t *mask = nullptr;
  int64_t mask_stride_b = 0, mask_stride_h = 0, mask_stride_q = 0;

  // Packed varlen batches (layout TND): batch b's query rows start at token q_start[b] of q and
  // out, its keys at token kv_start[b] of k and v (element offset start * stride_s; stride_b is
  // unused); seq_q / seq_kv are the longest batch's lengths and actual_seq_q / _kv each batch's.
  // Rows past a batch's length are not written (they are the next batch's tokens), and lse is
  // [heads_q, lse_tokens]: row i of batch b, head h at h * lse_tokens + q_start[b] + i.
  // nullptr: batch b at b * stride_b, lse [batch, heads_q, seq_q].
  const int64_t *q_start = nullptr, *kv_start = nullptr;
  int64_t lse_tokens = 0;
};

// Bytes of scratch run_attention needs for num_threads threads (per-thread tiles, packed K/V).
size_t workspace_size(const AttentionProblem &problem, int num_threads);

// Computes the problem with num_threads threads, using only the workspace for scratch.
// Returns 0, or a nonzero code with a message in *error (only for failures such as a
// workspace that is too small; bad sabi values are not errors here).
int run_attention(const AttentionProblem &problem, void *workspace, size_t workspace_bytes,
                  int num_threads, KernelPath path, const char **error);

// The thread count when the caller asks for none: the CPUs this process may run on. The
// kernel reads no environment: path and threads come down as run_attention's arguments from
// the caller's settings (backend/kernel_settings.h).
int default_num_threads();

// The path a request resolves to (kAuto: the fastest this CPU has, else the request itself),
// and a one-line summary of the ISA features found (for the bench's JSON and error messages).
KernelPath resolve_path(KernelPath requested);
const char *isa_summary();

}  // namespace blitz::cpu
