// Unit tests of the NPU op's host tiling arithmetic (kernel_src/npu/op_host/tiling_plan.*),
// compiled with plain g++ (no CANN) by tests/test_npu_tiling.py. Expected values are worked
// out by hand from the shapes, never read back from the code under test.
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tiling_plan.h"
#include "op_refusals.h"
#include "split_scan.h"
#include "../op_kernel/column_fill.h"

using namespace blitz_npu;

static int g_failures = 0;
static const char *g_test = "";

#define CHECK(cond)                                                                    \
  do {                                                                                 \
    if (!(cond)) {                                                                     \
      std::fprintf(stderr, "%s:%d [%s] CHECK failed: %s\n", __FILE__, __LINE__, g_test, \
                   #cond);                                                             \
      ++g_failures;                                                                    \
    }                                                                                  \
  } while (0)
#define CHECK_EQ(a, b)                                                                        \
  do {                                                                                        \
    const long long va_ = (long long)(a), vb_ = (long long)(b);                               \
    if (va_ != vb_) {                                                                         \
      std::fprintf(stderr, "%s:%d [%s] %s = %lld, expected %s = %lld\n", __FILE__, __LINE__, \
                   g_test, #a, va_, #b, vb_);                                                 \
      ++g_failures;                                                                           \
    }                                                                                         \
  } while (0)
#define CHECK_ERROR_HAS(plan, text)                                                           \
  do {                                                                                        \
    if ((plan).ok || (plan).error.find(text) == std::string::npos) {                          \
      std::fprintf(stderr, "%s:%d [%s] expected rejection containing '%s', got ok=%d '%s'\n", \
                   __FILE__, __LINE__, g_test, text, (int)(plan).ok, (plan).error.c_str());   \
      ++g_failures;                                                                           \
    }                                                                                         \
  } while (0)

// A stand-in for GetSoftMaxFlashV2MinTmpSize: a fixed 8 KiB (the real one depends on CANN).
static uint32_t tmp_8k(uint32_t, uint32_t, void *) { return 8 * 1024; }

// A request for q/k/v in `layout` with [B, N, S, D] / [B, Nkv, Skv, D], in 128 x 512 tiles
// (the tests below count tiles of that size; default_request's own (128, 128) is checked apart).
static TilingRequest request(const std::string &layout, int64_t b, int64_t n, int64_t nkv,
                             int64_t sq, int64_t skv, int64_t d) {
  TilingRequest r = default_request();
  r.block_q = 128;
  r.block_kv = 512;
  r.layout = layout;
  r.num_heads = n;
  r.num_kv_heads = nkv;
  r.softmax_tmp_bytes = tmp_8k;
  auto fill = [&](int64_t *dims, int *rank, int64_t heads, int64_t s) {
    if (layout == "BSH") {
      *rank = 3; dims[0] = b; dims[1] = s; dims[2] = heads * d;
    } else if (layout == "BSND") {
      *rank = 4; dims[0] = b; dims[1] = s; dims[2] = heads; dims[3] = d;
    } else {
      *rank = 4; dims[0] = b; dims[1] = heads; dims[2] = s; dims[3] = d;
    }
  };
  fill(r.q_dims, &r.q_rank, n, sq);
  const int64_t kv_heads = nkv == 0 ? n : nkv;  // 0 means N, as the attribute does
  fill(r.k_dims, &r.k_rank, kv_heads, skv);
  fill(r.v_dims, &r.v_rank, kv_heads, skv);
  return r;
}

static void set_sabi(TilingRequest *r, std::vector<uint16_t> *values, int64_t bs, int64_t ns,
                     int64_t rows, int64_t width) {
  r->sabi_rank = 4;
  r->sabi_dims[0] = bs; r->sabi_dims[1] = ns; r->sabi_dims[2] = rows; r->sabi_dims[3] = width;
  r->sabi_values = values ? values->data() : nullptr;
}

static void test_geometry_and_tails() {
  g_test = "geometry_and_tails";
  // NULL / empty block_shape is the original's (128, 128).
  CHECK_EQ(default_request().block_q, 128);
  CHECK_EQ(default_request().block_kv, 128);
  // The original's bench shape: B=1, N=3, S=118806, D=128, BSH.
  TilingPlan p = plan_tiling(request("BSH", 1, 3, 0, 118806, 118806, 128));
  CHECK(p.ok);
  CHECK_EQ(p.params.q_blocks, 929);   // ceil(118806 / 128)
  CHECK_EQ(p.params.kv_blocks, 233);  // ceil(118806 / 512)
  CHECK_EQ(p.params.tasks, 3 * 929);
  CHECK_EQ(p.params.kv_heads, 3);
  CHECK_EQ(p.params.group, 1);
  // Unaligned tails: 113 x 203 is one partial tile.
  p = plan_tiling(request("BNSD", 1, 1, 1, 113, 203, 64));
  CHECK(p.ok);
  CHECK_EQ(p.params.q_blocks, 1);
  CHECK_EQ(p.params.kv_blocks, 1);
  // One past a tile: 129 rows -> 2 blocks; 513 keys -> 2 blocks.
  p = plan_tiling(request("BNSD", 1, 1, 1, 129, 513, 64));
  CHECK_EQ(p.params.q_blocks, 2);
  CHECK_EQ(p.params.kv_blocks, 2);
  // Sq == 0: nothing to do, one core still launched; Skv == 0 is valid (zeros).
  p = plan_tiling(request("BNSD", 1, 1, 1, 0, 512, 64));
  CHECK(p.ok);
  CHECK_EQ(p.params.tasks, 0);
  CHECK_EQ(p.params.cube_cores, 1);
  p = plan_tiling(request("BNSD", 1, 2, 2, 256, 0, 64));
  CHECK(p.ok);
  CHECK_EQ(p.params.kv_blocks, 0);
  CHECK_EQ(p.params.tasks, 4);
}

static void test_layout_strides() {
  g_test = "layout_strides";
  const int64_t B = 2, N = 4, S = 300, D = 64;
  // BNSD: [B, N, S, D]
  TilingPlan p = plan_tiling(request("BNSD", B, N, N, S, S, D));
  CHECK(p.ok);
  CHECK_EQ(p.params.q.b, N * S * D); CHECK_EQ(p.params.q.h, S * D); CHECK_EQ(p.params.q.s, D);
  CHECK_EQ(p.params.out.b, N * S * D); CHECK_EQ(p.params.out.h, S * D); CHECK_EQ(p.params.out.s, D);
  // BSND: [B, S, N, D]
  p = plan_tiling(request("BSND", B, N, N, S, S, D));
  CHECK(p.ok);
  CHECK_EQ(p.params.q.b, S * N * D); CHECK_EQ(p.params.q.h, D); CHECK_EQ(p.params.q.s, N * D);
  // BSH: [B, S, N*D] is BSND's memory order.
  p = plan_tiling(request("BSH", B, N, N, S, S, D));
  CHECK(p.ok);
  CHECK_EQ(p.params.head_dim, D);
  CHECK_EQ(p.params.q.b, S * N * D); CHECK_EQ(p.params.q.h, D); CHECK_EQ(p.params.q.s, N * D);
  CHECK_EQ(p.params.layout, kLayoutBSH);
  // BNSD_BSND: reads BNSD, writes BSND.
  p = plan_tiling(request("BNSD_BSND", B, N, N, S, S, D));
  CHECK(p.ok);
  CHECK_EQ(p.params.q.h, S * D);
  CHECK_EQ(p.params.out.b, S * N * D); CHECK_EQ(p.params.out.h, D); CHECK_EQ(p.params.out.s, N * D);
  // Unknown layout.
  p = plan_tiling(request("SBH", B, N, N, S, S, D));
  CHECK_ERROR_HAS(p, "got 'SBH'");
  // A 5-d query is rejected with its dims (read within the request's arrays).
  TilingRequest r5 = request("BNSD", B, N, N, S, S, D);
  r5.q_rank = 5;
  r5.q_dims[4] = 7;
  CHECK_ERROR_HAS(plan_tiling(r5), "query must be 4-d for layout BNSD, got [2, 4, 300, 64, 7]");
  r5.q_rank = 3;
  CHECK_ERROR_HAS(plan_tiling(r5), "query must be 4-d");
  // BSH hidden size not divisible by heads.
  TilingRequest r = request("BSH", B, N, N, S, S, D);
  r.q_dims[2] = N * D + 1;
  CHECK_ERROR_HAS(plan_tiling(r), "hidden size");
}

static void test_gqa() {
  g_test = "gqa";
  const int64_t S = 640, D = 128;
  TilingPlan p = plan_tiling(request("BSND", 1, 8, 2, S, S, D));
  CHECK(p.ok);
  CHECK_EQ(p.params.group, 4);
  CHECK_EQ(p.params.k.s, 2 * D);  // kv rows are Nkv * D apart
  CHECK_EQ(p.params.q.s, 8 * D);
  p = plan_tiling(request("BNSD", 1, 8, 1, S, S, D));  // MQA
  CHECK(p.ok);
  CHECK_EQ(p.params.group, 8);
  CHECK_EQ(p.params.k.b, S * D);
  CHECK_ERROR_HAS(plan_tiling(request("BNSD", 1, 6, 4, S, S, D)), "not a multiple of num_key_value_heads");
  CHECK_ERROR_HAS(plan_tiling(request("BNSD", 1, 128, 1, S, S, D)), "exceeds 64");
  // num_key_value_heads = 0 means N.
  p = plan_tiling(request("BNSD", 1, 4, 4, S, S, D));
  TilingRequest r = request("BNSD", 1, 4, 4, S, S, D);
  r.num_kv_heads = 0;
  CHECK_EQ(plan_tiling(r).params.kv_heads, 4);
  // key heads disagree with num_key_value_heads.
  r = request("BNSD", 1, 4, 2, S, S, D);
  r.k_dims[1] = 4; r.v_dims[1] = 4;
  CHECK_ERROR_HAS(plan_tiling(r), "key has 4 heads");
}

static void test_block_shape_and_dims() {
  g_test = "block_shape_and_dims";
  TilingRequest r = request("BNSD", 1, 2, 2, 1000, 3000, 128);
  // Every pair of the original's {128, 256, 512, 1024}, plus our bq 64 and bkv multiples of 64.
  // bq above 128 runs as several row groups of <= 128 rows (a 1024-row block is 8 groups).
  std::vector<std::pair<int64_t, int64_t>> ok_shapes = {{64, 64}, {64, 192}, {128, 192}, {1024, 64}};
  for (int64_t bq : {128, 256, 512, 1024})
    for (int64_t bkv : {128, 256, 512, 1024}) ok_shapes.push_back({bq, bkv});
  for (auto &s : ok_shapes) {
    r.block_q = s.first; r.block_kv = s.second;
    TilingPlan p = plan_tiling(r);
    CHECK(p.ok);
    CHECK_EQ(p.params.q_blocks, (1000 + s.first - 1) / s.first);
    CHECK_EQ(p.params.kv_blocks, (3000 + s.second - 1) / s.second);
    CHECK_EQ(p.params.kv_block_aligned, s.second);  // multiples of 64 are already 32-byte aligned
    CHECK(p.params.group_rows <= kMaxGroupRows);
    CHECK(p.params.block_q % p.params.group_rows == 0);
  }
  r.block_q = 96; r.block_kv = 512;
  CHECK_ERROR_HAS(plan_tiling(r), "block_shape (96, 512) is not supported by the NPU kernel: expected bq 64, 128");
  r.block_q = 2048;
  CHECK_ERROR_HAS(plan_tiling(r), "block_shape (2048, 512)");
  r.block_q = 128; r.block_kv = 500;
  CHECK_ERROR_HAS(plan_tiling(r), "block_shape (128, 500)");
  r.block_kv = 2048;
  CHECK_ERROR_HAS(plan_tiling(r), "up to 1024");
  for (int64_t d : {8, 72, 264}) {
    CHECK_ERROR_HAS(plan_tiling(request("BNSD", 1, 1, 1, 128, 128, d)), "head_dim");
  }
  for (int64_t d : {16, 48, 256}) CHECK(plan_tiling(request("BNSD", 1, 1, 1, 128, 128, d)).ok);
  r = request("BNSD", 1, 1, 1, 128, 128, 64);
  r.k_dims[2] = 100;  // key and value lengths differ
  CHECK_ERROR_HAS(plan_tiling(r), "differ");
  r = request("BNSD", 70000, 1, 1, 128, 128, 64);
  CHECK_ERROR_HAS(plan_tiling(r), "batch 70000");
}

static void test_unsupported_features() {
  g_test = "unsupported_features";
  TilingRequest r = request("BNSD", 1, 1, 1, 128, 128, 64);
  r.has_pse = true;
  CHECK_ERROR_HAS(plan_tiling(r), "pse_shift");
  r = request("BNSD", 1, 1, 1, 128, 128, 64);
  r.has_quant = true;
  CHECK_ERROR_HAS(plan_tiling(r), "int8");
  r = request("BNSD", 1, 1, 1, 128, 128, 64);
  r.dtype_size = 4;
  CHECK_ERROR_HAS(plan_tiling(r), "float16 or bfloat16");
}

static void set_mask(TilingRequest *r, std::vector<int64_t> dims) {
  r->mask_rank = int(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) r->mask_dims[i] = dims[i];
}

static void test_token_masks() {
  g_test = "token_masks";
  const int64_t B = 2, Sq = 300, Skv = 700;
  TilingRequest r = request("BNSD", B, 1, 1, Sq, Skv, 64);
  // No mask: mode 0 applies nothing and needs no mask buffers.
  TilingPlan p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.mask_mode, 0);
  CHECK_EQ(p.params.has_mask_tensor, 0);
  CHECK_EQ(p.params.ub_mask_bytes, 0);
  // Every accepted explicit shape, in modes 0 and 1; strides of contiguous rows.
  const std::vector<std::vector<int64_t>> shapes = {
      {Sq, Skv}, {1, Sq, Skv}, {B, Sq, Skv}, {1, 1, Sq, Skv}, {B, 1, Sq, Skv}};
  const int64_t batch_stride[] = {0, 0, Sq * Skv, 0, Sq * Skv};
  for (int mode : {0, 1}) {
    for (size_t i = 0; i < shapes.size(); ++i) {
      r.sparse_mode = mode;
      set_mask(&r, shapes[i]);
      p = plan_tiling(r);
      CHECK(p.ok);
      CHECK_EQ(p.params.mask_mode, 1);
      CHECK_EQ(p.params.has_mask_tensor, 1);
      CHECK_EQ(p.params.mask_stride_q, Skv);
      CHECK_EQ(p.params.mask_stride_b, batch_stride[i]);
      // Mask buffers: bytes s*n, half 2*s*n, bits s*n/8 for the chosen slice.
      const int64_t sn = p.params.slice_rows * p.params.kv_block_aligned;
      CHECK_EQ(p.params.ub_mask_bytes, sn);
      CHECK_EQ(p.params.ub_mask_half_bytes, 2 * sn);
      CHECK_EQ(p.params.ub_mask_bits_bytes, sn / 8);
    }
  }
  // Wrong shapes, dtypes, a missing mask in mode 1, modes outside 0-4.
  r.sparse_mode = 0;
  for (const auto &bad : std::vector<std::vector<int64_t>>{
           {Sq - 1, Skv}, {Sq, Skv - 1}, {3, Sq, Skv}, {B, 2, Sq, Skv}, {Skv}, {1, 1, 1, Sq, Skv}}) {
    set_mask(&r, bad);
    CHECK_ERROR_HAS(plan_tiling(r), "atten_mask has shape");
  }
  // The original's larger forms: keys padded (here to 704, a multiple of 32), extra rows, one
  // mask per head; strides follow the mask's own dims and the kernel reads the top-left window.
  {
    const int64_t H = 3, Sq2 = Sq + 4, Skv2 = 704;
    TilingRequest m = request("BNSD", B, H, 1, Sq, Skv, 64);
    struct Case { std::vector<int64_t> dims; int64_t stride_b, stride_h; };
    const Case cases[] = {{{Sq2, Skv2}, 0, 0},
                          {{B, Sq2, Skv2}, Sq2 * Skv2, 0},
                          {{B, H, Sq2, Skv2}, H * Sq2 * Skv2, Sq2 * Skv2},
                          {{1, H, Sq, Skv2}, 0, Sq * Skv2},
                          {{B, 1, Sq2, Skv2}, Sq2 * Skv2, 0}};
    for (const Case &c : cases) {
      set_mask(&m, c.dims);
      TilingPlan q = plan_tiling(m);
      CHECK(q.ok);
      CHECK_EQ(q.params.mask_stride_q, Skv2);
      CHECK_EQ(q.params.mask_stride_b, c.stride_b);
      CHECK_EQ(q.params.mask_stride_h, c.stride_h);
    }
    set_mask(&m, {B, 2, Sq, Skv});  // 2 heads of 3
    CHECK_ERROR_HAS(plan_tiling(m), "1 or N");
  }
  set_mask(&r, {Sq, Skv});
  r.mask_dtype_supported = false;
  CHECK_ERROR_HAS(plan_tiling(r), "bool, int8 or uint8");
  r.mask_dtype_supported = true;
  r.mask_rank = 0;
  r.sparse_mode = 1;
  CHECK_ERROR_HAS(plan_tiling(r), "sparse_mode 1 requires atten_mask");
  for (int64_t mode : {-1, 5, 8}) {
    r.sparse_mode = mode;
    CHECK_ERROR_HAS(plan_tiling(r), ("sparse_mode must be one of (0, 1, 2, 3, 4), got " + std::to_string(mode)).c_str());
  }
  // Modes 2-4 build their mask from indices: a mask (e.g. the original's compressed 2048 x 2048
  // one) is ignored, whatever its shape, and costs no unified buffer.
  for (int mode : {2, 3, 4}) {
    r.sparse_mode = mode;
    set_mask(&r, {2048, 2048});
    p = plan_tiling(r);
    CHECK(p.ok);
    CHECK_EQ(p.params.mask_mode, mode);
    CHECK_EQ(p.params.has_mask_tensor, 0);
    CHECK_EQ(p.params.ub_mask_bytes, 0);
  }
  // pre/next tokens pass through, clamped far from int64 overflow.
  r.mask_rank = 0;
  r.sparse_mode = 4;
  r.pre_tokens = 100; r.next_tokens = -3;
  p = plan_tiling(r);
  CHECK_EQ(p.params.pre_tokens, 100);
  CHECK_EQ(p.params.next_tokens, -3);
  r.pre_tokens = INT64_MAX; r.next_tokens = INT64_MIN;
  p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.pre_tokens, int64_t(1) << 40);
  CHECK_EQ(p.params.next_tokens, -(int64_t(1) << 40));
  // With an explicit mask every accepted head_dim / block shape still fits the unified buffer.
  for (int64_t d = 16; d <= 256; d += 16) {
    for (int64_t bkv = 64; bkv <= 1024; bkv += 64) {
      for (int64_t bq : {64, 128, 256}) {
        TilingRequest m = request("BNSD", 1, 1, 1, 512, 2048, d);
        m.block_q = bq; m.block_kv = bkv;
        set_mask(&m, {512, 2048});
        TilingPlan q = plan_tiling(m);
        CHECK(q.ok);
        if (!q.ok) continue;
        CHECK(q.params.ub_total_bytes + kUbReserveBytes <= m.cores.ub_bytes);
        CHECK_EQ(q.params.ub_total_bytes,
                 ub_bytes_for(q.params.group_rows, q.params.slice_rows, bkv, d, 2, 8192, true));
        // The kernel's Cast / Compares run on a slice's element count rounded up to whole
        // 128-half repeats; that must stay inside the mask buffers.
        CHECK_EQ(q.params.slice_rows * q.params.kv_block_aligned % 128, 0);
      }
    }
  }
}

static void test_unified_buffer() {
  g_test = "unified_buffer";
  // Hand count for D=128, bkv=512, bf16, group 128, slice 8, tmp 8 KiB:
  //   acc 128*128*4 = 65536; stats 5*128*8*4 = 20480; scores 2*8*512*4 = 32768;
  //   probs 2*8*512*2 = 16384; P*V 2*8*128*4 = 8192; out 2*8*128*2 = 4096; tmp 8192.
  CHECK_EQ(ub_bytes_for(128, 8, 512, 128, 2, 8192), 65536 + 20480 + 32768 + 16384 + 8192 + 4096 + 8192);
  TilingPlan p = plan_tiling(request("BNSD", 1, 1, 1, 4096, 4096, 128));
  CHECK(p.ok);
  // Group 128 with slice 16 needs 65536+20480+65536+32768+16384+8192+8192 = 217088 > 196608
  // - 8192 reserved, so the planner takes group 128 with slice 8.
  CHECK_EQ(p.params.group_rows, 128);
  CHECK_EQ(p.params.slice_rows, 8);
  CHECK_EQ(p.params.ub_total_bytes, 155648);
  CHECK(p.params.ub_total_bytes <= 192 * 1024);
  // Every accepted shape fits the unified buffer.
  for (int64_t d = 16; d <= 256; d += 16) {
    for (int64_t bkv = 64; bkv <= 1024; bkv += 64) {
      for (int64_t bq : {64, 128, 256}) {
        TilingRequest r = request("BNSD", 1, 1, 1, 512, 2048, d);
        r.block_q = bq; r.block_kv = bkv;
        TilingPlan q = plan_tiling(r);
        CHECK(q.ok);
        if (!q.ok) continue;
        CHECK(q.params.ub_total_bytes + kUbReserveBytes <= r.cores.ub_bytes);
        CHECK(q.params.group_rows % q.params.slice_rows == 0);
        CHECK(q.params.slice_rows >= kMinSliceRows);
        CHECK_EQ(q.params.ub_acc_bytes, q.params.group_rows * d * 4);
      }
    }
  }
  // A unified buffer too small for anything is rejected with its size.
  TilingRequest r = request("BNSD", 1, 1, 1, 512, 2048, 256);
  r.cores.ub_bytes = 16 * 1024;
  CHECK_ERROR_HAS(plan_tiling(r), "unified buffer (16384 bytes)");
}

static void test_workspace() {
  g_test = "workspace";
  TilingPlan p = plan_tiling(request("BNSD", 2, 4, 4, 1024, 1024, 128));
  CHECK(p.ok);
  const BlitzTilingParams &t = p.params;
  // group 128, bkv 512: scores 128*512*4 = 262144, probs 128*512*2 = 131072, P*V 128*128*4 = 65536.
  CHECK_EQ(t.ws_score_bytes, 262144);
  CHECK_EQ(t.ws_prob_bytes, 131072);
  CHECK_EQ(t.ws_otile_bytes, 65536);
  CHECK_EQ(t.ws_worker_bytes, 2 * (262144 + 131072 + 65536));
  CHECK_EQ(t.ws_user_bytes, t.ws_worker_bytes * t.workers);
  // bkv 192 with group 64: 64*192*2 = 24576 is already 512-aligned; D=48: 64*48*4 = 12288.
  TilingRequest r = request("BNSD", 1, 1, 1, 64, 1000, 48);
  r.block_q = 64; r.block_kv = 192;
  p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.group_rows, 64);
  CHECK_EQ(p.params.ws_prob_bytes, 24576);
  CHECK_EQ(p.params.ws_otile_bytes, 12288);
}

// Checks that task_start is a monotone cover of [0, tasks).
static void check_cover(const BlitzTilingParams &t) {
  CHECK_EQ(t.task_start[0], 0);
  CHECK_EQ(t.task_start[t.workers], t.tasks);
  for (uint32_t w = 0; w < t.workers; ++w) CHECK(t.task_start[w] <= t.task_start[w + 1]);
}

static void test_core_split() {
  g_test = "core_split";
  // Dense: 2 x 4 heads x 8 query blocks = 64 tasks of equal cost over 48 workers.
  TilingPlan p = plan_tiling(request("BNSD", 2, 4, 4, 1024, 1024, 64));
  CHECK(p.ok);
  CHECK_EQ(p.params.cube_cores, 24);
  CHECK_EQ(p.params.workers, 48);
  check_cover(p.params);
  for (uint32_t w = 0; w < 48; ++w) {
    const int64_t n = p.params.task_start[w + 1] - p.params.task_start[w];
    CHECK(n == 1 || n == 2);
  }
  // Fewer tasks than workers: 3 tasks -> 2 cube cores, 4 workers.
  p = plan_tiling(request("BNSD", 1, 3, 3, 100, 100, 64));
  CHECK_EQ(p.params.tasks, 3);
  CHECK_EQ(p.params.cube_cores, 2);
  CHECK_EQ(p.params.workers, 4);
  check_cover(p.params);
  // A smaller platform: 20 cube / 40 vector cores.
  TilingRequest r = request("BNSD", 4, 8, 8, 4096, 4096, 128);
  r.cores.cube_cores = 20; r.cores.vector_cores = 40;
  p = plan_tiling(r);
  CHECK_EQ(p.params.workers, 40);
  check_cover(p.params);

  // Weighted by selected tiles: 1 batch, 1 head, 64 query blocks over 8 key blocks; the first
  // 8 rows select all 8 key blocks, the other 56 rows one each. Costs (work_split.h): 8 tiles
  // -> 8*16+1 = 129, 1 tile -> 17. Total 8*129 + 56*17 = 1984; with 4 workers (2 cube cores)
  // each share is 496, so worker 0 must stop after about 4 heavy rows, not after 16 rows.
  r = request("BNSD", 1, 1, 1, 64 * 128, 8 * 512, 64);
  r.cores.cube_cores = 2; r.cores.vector_cores = 4;
  std::vector<uint16_t> sabi(64 * 8, 0xFFFF);
  for (int row = 0; row < 64; ++row) {
    if (row < 8) {
      for (int c = 0; c < 8; ++c) sabi[row * 8 + c] = uint16_t(7 - c);  // any order
    } else {
      sabi[row * 8 + 3] = uint16_t(row % 8);  // one block, not at the row start
    }
  }
  set_sabi(&r, &sabi, 1, 1, 64, 8);
  p = plan_tiling(r);
  CHECK(p.ok);
  check_cover(p.params);
  CHECK(p.params.task_start[1] >= 3 && p.params.task_start[1] <= 5);
  int64_t costs[4] = {0, 0, 0, 0};
  for (int w = 0; w < 4; ++w) {
    for (int64_t t = p.params.task_start[w]; t < p.params.task_start[w + 1]; ++t) costs[w] += t < 8 ? 129 : 17;
  }
  for (int w = 0; w < 4; ++w) CHECK(costs[w] >= 496 - 129 && costs[w] <= 496 + 129);
  CHECK_EQ(p.params.interleave, 0);
  // Without host values the kernel scans sabi itself (test_device_split), in loads that fill
  // half the accumulator each: group 128 (= bq) x D 64 x 4 bytes / (2 slots x 2 bytes) = 8192.
  set_sabi(&r, nullptr, 1, 1, 64, 8);
  p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.interleave, 0);
  CHECK_EQ(p.params.device_split, 1);
  CHECK_EQ(p.params.group_rows, 128);
  CHECK_EQ(p.params.scan_chunk, 8192);
  // With the scan switched off: round-robin over the workers.
  r.device_split_scan = false;
  p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.interleave, 1);
  CHECK_EQ(p.params.device_split, 0);
  r.device_split_scan = true;
  // Dense (no sabi) costs are known from the shapes: contiguous ranges.
  r.sabi_rank = 0;
  CHECK_EQ(plan_tiling(r).params.interleave, 0);

  // Out-of-range and 0xFFFF entries cost nothing; a kv length of 0 leaves only the task cost.
  r = request("BNSD", 2, 1, 1, 4 * 128, 4 * 512, 64);
  r.cores.cube_cores = 1; r.cores.vector_cores = 2;
  std::vector<uint16_t> dense_rows(2 * 4 * 4);
  for (size_t i = 0; i < dense_rows.size(); ++i) dense_rows[i] = uint16_t(i % 4);
  set_sabi(&r, &dense_rows, 2, 1, 4, 4);
  const int64_t kv_lengths[2] = {0, 4 * 512};
  r.actual_kv = kv_lengths; r.actual_kv_count = 2;
  p = plan_tiling(r);
  CHECK(p.ok);
  // batch 0 costs 4 x 1, batch 1 costs 4 x (4*16+1) = 260; total 264, half 132: the boundary
  // lands inside batch 1 after its second task (4 + 2*65 = 134 is nearest to 132).
  CHECK_EQ(p.params.task_start[1], 6);
}

// Masks in modes 2-4 drop the tiles they mask entirely from the split, with each batch's own
// lengths (dense: no sabi). Costs per task (work_split.h): tiles * 16 + 1.
static void test_masked_split() {
  g_test = "masked_split";
  // Causal top-left, Sq = Skv = 1024, 128 x 512 tiles: query blocks 0-3 see key block 0 only
  // (17 each), blocks 4-7 both (33 each); total 200, half 100: prefix 101 after 5 tasks
  // (68 after 4 is further), where an unweighted split would cut at 4.
  TilingRequest r = request("BNSD", 1, 1, 1, 1024, 1024, 64);
  r.cores.cube_cores = 1; r.cores.vector_cores = 2;
  r.sparse_mode = 2;
  TilingPlan p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.task_start[1], 5);
  r.sparse_mode = 0;
  CHECK_EQ(plan_tiling(r).params.task_start[1], 4);
  // Band j in [i - 1024, i - 512] (Sq = Skv, so anchored at the diagonal): rows < 512 attend
  // nothing (cost 1 each), blocks 4-7 see key block 0 only (17 each): total 72, half 36 ->
  // prefix 38 after 6 tasks.
  r.sparse_mode = 4;
  r.pre_tokens = 1024; r.next_tokens = -512;
  p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.task_start[1], 6);
  // Causal bottom-right with Sq = 1024 > Skv = 512: j <= i - 512, the same costs.
  r = request("BNSD", 1, 1, 1, 1024, 512, 64);
  r.cores.cube_cores = 1; r.cores.vector_cores = 2;
  r.sparse_mode = 3;
  CHECK_EQ(plan_tiling(r).params.task_start[1], 6);
  // Per-batch lengths re-anchor mode 3: batch 0 (1024 x 1024) costs 17,17,17,17,33,33,33,33;
  // batch 1 (q length 512, kv 1024, offset 512) 33 x 4 then 1 x 4 (rows past its q length).
  // Total 336, half 168: prefix 167 after 7 tasks (200 after 8 is further).
  r = request("BNSD", 2, 1, 1, 1024, 1024, 64);
  r.cores.cube_cores = 1; r.cores.vector_cores = 2;
  r.sparse_mode = 3;
  const int64_t q_lengths[2] = {1024, 512};
  r.actual_q = q_lengths; r.actual_q_count = 2;
  p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.task_start[1], 7);
  // sabi values on the host combine with the mask: causal, only key block 1 selected in every
  // row -> blocks 0-3 select nothing the mask allows (cost 1), 4-7 one tile (17): half of 72 -> 6.
  r = request("BNSD", 1, 1, 1, 1024, 1024, 64);
  r.cores.cube_cores = 1; r.cores.vector_cores = 2;
  r.sparse_mode = 2;
  std::vector<uint16_t> only_block1(8, 1);
  set_sabi(&r, &only_block1, 1, 1, 8, 1);
  CHECK_EQ(plan_tiling(r).params.task_start[1], 6);
}

// The split the kernel computes when sabi is device data (kernel_src/common/split_scan.h, run
// here through a plain-array Source, the same template the kernel instantiates with unified
// buffer loads) equals the host's weighted split of the same sabi (plan with sabi_values).
struct HostScanSource {
  const std::vector<uint16_t> *sabi = nullptr;
  const BlitzTilingParams *p = nullptr;
  const int64_t *actual_q = nullptr, *actual_kv = nullptr;
  std::vector<uint16_t> slot[2];
  int pending[2] = {0, 0};
  void Prefetch(int s, int64_t offset, int64_t count) {
    CHECK(pending[s] == 0 && count >= 1 && count <= int64_t(p->scan_chunk));
    CHECK(offset >= 0 && offset + count <= p->sabi_length);
    slot[s].assign(sabi->begin() + offset, sabi->begin() + offset + count);
    pending[s] = 1;
  }
  blitz::PlainRow Acquire(int s) {
    CHECK(pending[s] == 1);
    return blitz::PlainRow{slot[s].data()};
  }
  void Release(int s) {
    pending[s] = 0;
    std::fill(slot[s].begin(), slot[s].end(), uint16_t(0));  // stale data would show
  }
  blitz::SequenceGeometry Sequence(int64_t b) const {
    return blitz::SequenceGeometry::make(b, p->seq_q, p->seq_kv, p->block_kv, actual_q, p->actual_q_count,
                                         actual_kv, p->actual_kv_count);
  }
};

static blitz::SplitScanShape scan_shape(const BlitzTilingParams &p) {
  blitz::SplitScanShape s{};
  s.batch = p.batch; s.heads = p.heads; s.q_blocks = p.q_blocks;
  s.sabi_batch = p.sabi_batch; s.sabi_heads = p.sabi_heads; s.width = p.sabi_width;
  s.seq_q = p.seq_q; s.seq_kv = p.seq_kv; s.block_q = p.block_q; s.block_kv = p.block_kv;
  s.mask_mode = int(p.mask_mode); s.pre_tokens = p.pre_tokens; s.next_tokens = p.next_tokens;
  s.chunk = p.scan_chunk;
  return s;
}

static void test_device_split() {
  g_test = "device_split";
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t b = 1 + rng() % 3, n = 1 + rng() % 4, d = 64;
    const int64_t bq = 64, bkv = 64;
    const int64_t sq = 1 + rng() % 2000, skv = 1 + rng() % 3000;
    TilingRequest r = request("BNSD", b, n, n, sq, skv, d);
    r.block_q = bq; r.block_kv = bkv;
    r.cores.cube_cores = 1 + rng() % 24; r.cores.vector_cores = 48;
    r.sparse_mode = int64_t(rng() % 5);
    if (r.sparse_mode == 1) r.sparse_mode = 0;  // mode 1 needs a mask tensor; its tiles all count
    r.pre_tokens = int64_t(rng() % 1500); r.next_tokens = int64_t(rng() % 1500) - 500;
    const int64_t qb = (sq + bq - 1) / bq, kb = (skv + bkv - 1) / bkv;
    const int64_t bs = rng() % 2 ? 1 : b, ns = rng() % 2 ? 1 : n, width = 1 + int64_t(rng() % kb);
    std::vector<uint16_t> sabi(size_t(bs * ns * qb * width));
    for (auto &v : sabi) v = rng() % 4 == 0 ? 0xFFFF : uint16_t(rng() % (kb + 2));  // some out of range
    std::vector<int64_t> aq(static_cast<size_t>(b)), akv(static_cast<size_t>(b));
    for (auto &v : aq) v = int64_t(rng() % (sq + 1));
    for (auto &v : akv) v = int64_t(rng() % (skv + 1));
    if (rng() % 2) { r.actual_q = aq.data(); r.actual_q_count = b; }
    if (rng() % 2) { r.actual_kv = akv.data(); r.actual_kv_count = rng() % 2 ? 1 : b; }
    set_sabi(&r, &sabi, bs, ns, qb, width);
    const TilingPlan host = plan_tiling(r);  // host values: the weighted split
    CHECK(host.ok);
    CHECK_EQ(host.params.device_split, 0);
    set_sabi(&r, nullptr, bs, ns, qb, width);
    TilingPlan dev = plan_tiling(r);
    CHECK(dev.ok);
    if (!host.ok || !dev.ok) continue;
    CHECK_EQ(dev.params.device_split, 1);
    CHECK_EQ(dev.params.interleave, 0);
    CHECK(dev.params.scan_chunk >= kScanChunkAlign && dev.params.scan_chunk % kScanChunkAlign == 0);
    CHECK(uint64_t(dev.params.scan_chunk) * kScanSlots * 2 <= dev.params.ub_acc_bytes);
    if (trial % 2) dev.params.scan_chunk = uint32_t(1 + rng() % 40);  // loads that cut rows anywhere
    HostScanSource src;
    src.sabi = &sabi; src.p = &dev.params; src.actual_q = r.actual_q; src.actual_kv = r.actual_kv;
    blitz::SplitScan<HostScanSource> scan(scan_shape(dev.params), &src);
    CHECK_EQ(scan.tasks(), host.params.tasks);
    for (uint32_t w = 0; w < dev.params.workers; ++w) {
      int64_t begin = -1, end = -1;
      scan.range(dev.params.workers, w, &begin, &end);
      CHECK_EQ(begin, host.params.task_start[w]);
      CHECK_EQ(end, host.params.task_start[w + 1]);
      CHECK(src.pending[0] == 0 && src.pending[1] == 0);
    }
  }
}

static void test_sabi_dims() {
  g_test = "sabi_dims";
  TilingRequest r = request("BNSD", 2, 4, 4, 1024, 4096, 64);  // 8 rows, 8 key blocks
  set_sabi(&r, nullptr, 2, 4, 8, 8);
  TilingPlan p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.has_sabi, 1);
  CHECK_EQ(p.params.sabi_length, 2 * 4 * 8 * 8);
  set_sabi(&r, nullptr, 1, 1, 8, 3);  // broadcast over batch and heads, narrow rows
  CHECK(plan_tiling(r).ok);
  set_sabi(&r, nullptr, 3, 4, 8, 8);
  CHECK_ERROR_HAS(plan_tiling(r), "sabi batch dim 3");
  set_sabi(&r, nullptr, 2, 2, 8, 8);
  CHECK_ERROR_HAS(plan_tiling(r), "sabi head dim 2");
  set_sabi(&r, nullptr, 2, 4, 7, 8);
  CHECK_ERROR_HAS(plan_tiling(r), "sabi has 7 rows");
  set_sabi(&r, nullptr, 2, 4, 8, 9);
  CHECK_ERROR_HAS(plan_tiling(r), "sabi width 9");
  // 3-d [N, rows, W] means batch 1.
  r.sabi_rank = 3;
  r.sabi_dims[0] = 4; r.sabi_dims[1] = 8; r.sabi_dims[2] = 8;
  p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.sabi_batch, 1);
  CHECK_EQ(p.params.sabi_heads, 4);
  // No sabi: dense.
  r.sabi_rank = 0;
  CHECK_EQ(plan_tiling(r).params.has_sabi, 0);
}

static void test_actual_lengths() {
  g_test = "actual_lengths";
  TilingRequest r = request("BNSD", 3, 1, 1, 256, 256, 64);
  const int64_t two[2] = {1, 2};
  r.actual_q = two; r.actual_q_count = 2;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths has 2 entries; expected 1 or at least");
  // More than B entries: the first B are used and checked, the rest ignored (the original's rule).
  const int64_t four[4] = {1, 2, 3, 9999};
  r.actual_q = four; r.actual_q_count = 4;
  CHECK(plan_tiling(r).ok);
  r = request("BNSD", 2, 1, 1, 256, 256, 64);
  const int64_t too_long[1] = {257};
  r.actual_q = nullptr; r.actual_q_count = 0;
  r.actual_kv = too_long; r.actual_kv_count = 1;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths_kv[0] = 257");
  const int64_t fine[2] = {100, 0};
  r.actual_kv = fine; r.actual_kv_count = 2;
  TilingPlan p = plan_tiling(r);
  CHECK(p.ok);
  CHECK_EQ(p.params.actual_kv_count, 2);
}

// TND (packed varlen): q [T, N, D], k / v [Tkv, Nkv, D], cumulative actual lengths. The batches
// below: query lengths 300, 0, 129 (T = 429), key lengths 500, 64, 1100 (Tkv = 1664).
static const int64_t kTndEndsQ[3] = {300, 300, 429};
static const int64_t kTndEndsKv[3] = {500, 564, 1664};

static TilingRequest tnd_request(int64_t n, int64_t nkv, int64_t t, int64_t tkv, int64_t d) {
  TilingRequest r = request("BNSD", 1, n, nkv, 1, 1, d);
  r.layout = "TND";
  r.q_rank = r.k_rank = r.v_rank = 3;
  r.q_dims[0] = t; r.q_dims[1] = n; r.q_dims[2] = d;
  for (int64_t *dims : {r.k_dims, r.v_dims}) { dims[0] = tkv; dims[1] = nkv; dims[2] = d; }
  r.actual_q = kTndEndsQ; r.actual_q_count = 3;
  r.actual_kv = kTndEndsKv; r.actual_kv_count = 3;
  return r;
}

static void test_tnd_plans() {
  g_test = "tnd_plans";
  const int64_t N = 4, NKV = 2, D = 64;
  TilingPlan p = plan_tiling(tnd_request(N, NKV, 429, 1664, D));
  CHECK(p.ok);
  CHECK_EQ(p.params.layout, kLayoutTND);
  CHECK_EQ(p.params.packed, 1);
  CHECK_EQ(p.params.batch, 3);        // one batch per cumulative entry
  CHECK_EQ(p.params.seq_q, 300);      // the longest batch, not T
  CHECK_EQ(p.params.seq_kv, 1100);
  CHECK_EQ(p.params.q_blocks, 3);     // ceil(300 / 128)
  CHECK_EQ(p.params.kv_blocks, 3);    // ceil(1100 / 512)
  CHECK_EQ(p.params.tasks, 3 * N * 3);
  CHECK_EQ(p.params.group, 2);
  CHECK_EQ(p.params.actual_q_count, 3);
  CHECK_EQ(p.params.actual_kv_count, 3);
  // A token row is N * D apart; batches are found by their first token, not by a stride.
  CHECK_EQ(p.params.q.b, 0); CHECK_EQ(p.params.q.h, D); CHECK_EQ(p.params.q.s, N * D);
  CHECK_EQ(p.params.out.b, 0); CHECK_EQ(p.params.out.h, D); CHECK_EQ(p.params.out.s, N * D);
  CHECK_EQ(p.params.k.b, 0); CHECK_EQ(p.params.k.h, D); CHECK_EQ(p.params.k.s, NKV * D);
  CHECK_EQ(p.params.v.s, NKV * D);
  // lse [N, T]: head h's row is T = 429 floats long.
  CHECK_EQ(p.params.lse_stride_b, 0);
  CHECK_EQ(p.params.lse_stride_h, 429);
  // The padded layouts keep [B, N, Sq].
  TilingPlan padded = plan_tiling(request("BNSD", 2, N, NKV, 300, 1100, D));
  CHECK_EQ(padded.params.packed, 0);
  CHECK_EQ(padded.params.lse_stride_b, N * 300);
  CHECK_EQ(padded.params.lse_stride_h, 300);

  // The host's weighted split reads each batch's own length (the cumulative ends' differences):
  // the same as BNSD padded to the longest batch with those lengths, 48 and 6 workers.
  for (uint32_t cube : {24u, 3u}) {
    TilingRequest tnd = tnd_request(N, NKV, 429, 1664, D);
    TilingRequest bnsd = request("BNSD", 3, N, NKV, 300, 1100, D);
    const int64_t lq[3] = {300, 0, 129}, lkv[3] = {500, 64, 1100};
    bnsd.actual_q = lq; bnsd.actual_q_count = 3;
    bnsd.actual_kv = lkv; bnsd.actual_kv_count = 3;
    for (TilingRequest *r : {&tnd, &bnsd}) { r->cores.cube_cores = cube; r->sparse_mode = 3; }
    const TilingPlan a = plan_tiling(tnd), b = plan_tiling(bnsd);
    CHECK(a.ok && b.ok);
    CHECK_EQ(a.params.workers, b.params.workers);
    for (uint32_t w = 0; w <= a.params.workers; ++w) CHECK_EQ(a.params.task_start[w], b.params.task_start[w]);
    check_cover(a.params);
  }
  // Zero-length batches are fine; every batch empty plans no task.
  const int64_t none[2] = {0, 0};
  TilingRequest empty = tnd_request(N, NKV, 0, 0, D);
  empty.actual_q = none; empty.actual_q_count = 2;
  empty.actual_kv = none; empty.actual_kv_count = 2;
  p = plan_tiling(empty);
  CHECK(p.ok);
  CHECK_EQ(p.params.batch, 2);
  CHECK_EQ(p.params.tasks, 0);
  // sabi rows follow the longest batch (3 here), not T (ceil(429 / 128) = 4).
  TilingRequest r = tnd_request(N, NKV, 429, 1664, D);
  set_sabi(&r, nullptr, 3, N, 3, 3);
  CHECK(plan_tiling(r).ok);
  set_sabi(&r, nullptr, 3, N, 4, 3);
  CHECK_ERROR_HAS(plan_tiling(r), "sabi has 4 rows; expected ceil(Sq / bq) = 3");
  // A token mask from indices is fine (modes 2-4, a mask tensor there is ignored).
  r = tnd_request(N, NKV, 429, 1664, D);
  r.sparse_mode = 3;
  set_mask(&r, {2048, 2048});
  CHECK(plan_tiling(r).ok);
}

static void test_tnd_refusals() {
  g_test = "tnd_refusals";
  const int64_t N = 4, NKV = 2, D = 64;
  TilingRequest r = tnd_request(N, NKV, 429, 1664, D);
  r.actual_q = nullptr; r.actual_q_count = 0;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths is required with input_layout TND");
  r = tnd_request(N, NKV, 429, 1664, D);
  r.actual_kv = nullptr; r.actual_kv_count = 0;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths_kv is required with input_layout TND");
  r = tnd_request(N, NKV, 429, 1664, D);
  r.actual_q = nullptr;  // a count without host values
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths must be readable on the host");
  const int64_t decreasing[3] = {300, 200, 429};
  r = tnd_request(N, NKV, 429, 1664, D);
  r.actual_q = decreasing;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths[1] = 200: TND lengths are cumulative");
  const int64_t past_t[3] = {300, 500, 429};
  r.actual_q = past_t;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths[1] = 500: TND lengths are cumulative, so each entry must "
                                  "lie in [the previous entry 300, T=429]");
  const int64_t negative[3] = {-1, 300, 429};
  r.actual_q = negative;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths[0] = -1");
  const int64_t short_end[3] = {300, 300, 400};
  r.actual_q = short_end;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths ends at 400 but the tensor holds T=429 tokens");
  const int64_t kv_short[3] = {500, 564, 1600};
  r = tnd_request(N, NKV, 429, 1664, D);
  r.actual_kv = kv_short;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths_kv ends at 1600 but the tensor holds T=1664");
  const int64_t kv_two[2] = {564, 1664};
  r.actual_kv = kv_two; r.actual_kv_count = 2;
  CHECK_ERROR_HAS(plan_tiling(r), "actual_seq_lengths_kv has 2 entries but actual_seq_lengths has 3");
  // An explicit mask (modes 0 / 1) is refused with TND, as on the CPU device.
  for (int64_t mode : {0, 1}) {
    r = tnd_request(N, NKV, 429, 1664, D);
    r.sparse_mode = mode;
    set_mask(&r, {429, 1664});
    CHECK_ERROR_HAS(plan_tiling(r), "is not supported with input_layout TND");
  }
  // The layout's rank: [T, N, D].
  r = tnd_request(N, NKV, 429, 1664, D);
  r.q_rank = 4; r.q_dims[3] = D;
  CHECK_ERROR_HAS(plan_tiling(r), "query must be 3-d [T, N, D] for layout TND, got [429, 4, 64, 64]");
  r = tnd_request(N, NKV, 429, 1664, D);
  r.k_dims[1] = 3; r.v_dims[1] = 3;
  CHECK_ERROR_HAS(plan_tiling(r), "key has 3 heads");
  // More batches than the kernel takes: the count of cumulative entries is the batch.
  std::vector<int64_t> many(size_t(blitz::limits::kNpuBatchMax) + 1, 0);
  r = tnd_request(N, NKV, 0, 0, D);
  r.actual_q = many.data(); r.actual_q_count = int64_t(many.size());
  r.actual_kv = many.data(); r.actual_kv_count = int64_t(many.size());
  CHECK_ERROR_HAS(plan_tiling(r), blitz::limits::refuse_npu_batch(blitz::limits::kNpuBatchMax + 1).c_str());
}

// request_from_values: the one reading of a call's plain values that the CANN glue and the
// npu_sim launcher share.
static void test_request_from_values() {
  g_test = "request_from_values";
  const int64_t qd[4] = {2, 4, 300, 64}, kd[4] = {2, 2, 700, 64}, lengths[2] = {300, 10};
  auto dims_of = [](const int64_t *d) { return [d](int i) { return d[i]; }; };
  CallValues v;
  v.query.assign(DataKind::kBFloat16, 4, dims_of(qd));
  v.key.assign(DataKind::kBFloat16, 4, dims_of(kd));
  v.value.assign(DataKind::kBFloat16, 4, dims_of(kd));
  v.num_heads = 4; v.num_key_value_heads = 2; v.scale_value = 0.125f; v.input_layout = "BNSD";
  v.sparse_mode = 3; v.pre_tokens = 7; v.next_tokens = 9; v.inner_precise = 1;
  v.actual_seq_lengths = IntListValues{lengths, 2};
  TilingRequest r;
  std::string error;
  CHECK(request_from_values(v, &r, &error));
  CHECK_EQ(r.q_rank, 4); CHECK_EQ(r.q_dims[2], 300); CHECK_EQ(r.k_dims[2], 700); CHECK_EQ(r.v_dims[1], 2);
  CHECK_EQ(r.sabi_rank, 0); CHECK_EQ(r.mask_rank, 0);
  CHECK(r.dtype_supported && r.dtype_size == 2 && r.mask_dtype_supported && !r.return_lse);
  CHECK(r.layout == "BNSD" && r.scale_value == 0.125);
  CHECK_EQ(r.num_kv_heads, 2); CHECK_EQ(r.sparse_mode, 3); CHECK_EQ(r.pre_tokens, 7); CHECK_EQ(r.next_tokens, 9);
  CHECK(r.actual_q == lengths && r.actual_q_count == 2 && r.actual_kv == nullptr && r.actual_kv_count == 0);
  // NULL and empty block_shape: the original's (128, 128); two values are read as (bq, bkv).
  CHECK_EQ(r.block_q, 128); CHECK_EQ(r.block_kv, 128);
  const int64_t shape[3] = {256, 1024, 1};
  v.block_shape = IntListValues{shape, 0};
  CHECK(request_from_values(v, &r, &error) && r.block_q == 128 && r.block_kv == 128);
  v.block_shape = IntListValues{shape, 2};
  CHECK(request_from_values(v, &r, &error) && r.block_q == 256 && r.block_kv == 1024);
  CHECK(plan_tiling(r).ok);
  v.block_shape = IntListValues{shape, 3};
  CHECK(!request_from_values(v, &r, &error) && error.find("block_shape must hold two values") != std::string::npos);
  v.block_shape = IntListValues{};
  // softmax_lse_flag needs the optional output.
  v.softmax_lse_flag = true;
  CHECK(!request_from_values(v, &r, &error) && error.find("softmax_lse output is absent") != std::string::npos);
  v.has_lse_output = true;
  CHECK(request_from_values(v, &r, &error) && r.return_lse);
  // Mixed or unsupported dtypes pass through as "unsupported" for the plan to name.
  v.value.kind = DataKind::kFloat16;
  CHECK(request_from_values(v, &r, &error) && !r.dtype_supported);
  CHECK_ERROR_HAS(plan_tiling(r), "float16 or bfloat16");
  v.value.kind = DataKind::kBFloat16;
  const int64_t md[2] = {300, 700};
  v.atten_mask.assign(DataKind::kOther, 2, dims_of(md));
  v.sparse_mode = 0;
  CHECK(request_from_values(v, &r, &error) && r.mask_rank == 2 && !r.mask_dtype_supported);
  CHECK_ERROR_HAS(plan_tiling(r), "atten_mask must be bool, int8 or uint8");
  v.atten_mask.kind = DataKind::kUint8;
  CHECK(request_from_values(v, &r, &error) && r.mask_dtype_supported && plan_tiling(r).ok);
  // A rank past kMaxRank is kept as kMaxRank dims, and the plan names the rank.
  const int64_t nine[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  v.query.assign(DataKind::kBFloat16, 9, dims_of(nine));
  CHECK(request_from_values(v, &r, &error) && r.q_rank == kMaxRank);
  CHECK_ERROR_HAS(plan_tiling(r), "query must be 4-d for layout BNSD, got [1, 2, 3, 4, 5, 6, 7, 8]");
  // sabi values are carried only with a sabi.
  const uint16_t sabi_values[1] = {0};
  v.sabi_values = sabi_values;
  CHECK(request_from_values(v, &r, &error) && r.sabi_values == nullptr);
}

// The readers InferShape shares with the tiling: a layout name's code (the spec's order), which
// layouts store the inputs head-major, and which dtypes the NPU takes for q / k / v and the mask.
static void test_layout_and_dtype_sets() {
  g_test = "layout_and_dtype_sets";
  CHECK_EQ(layout_of("BNSD"), kLayoutBNSD); CHECK_EQ(layout_of("BSND"), kLayoutBSND);
  CHECK_EQ(layout_of("BSH"), kLayoutBSH); CHECK_EQ(layout_of("BNSD_BSND"), kLayoutBNSD_BSND);
  CHECK_EQ(layout_of("TND"), kLayoutTND);
  CHECK_EQ(layout_of("bnsd"), kUnknownLayout); CHECK_EQ(layout_of(""), kUnknownLayout);
  CHECK(head_major(kLayoutBNSD) && head_major(kLayoutBNSD_BSND));
  CHECK(!head_major(kLayoutBSND) && !head_major(kLayoutBSH) && !head_major(kLayoutTND) && !head_major(kUnknownLayout));
  CHECK(npu_qkv_dtype(DataKind::kFloat16) && npu_qkv_dtype(DataKind::kBFloat16));
  for (DataKind k : {DataKind::kAbsent, DataKind::kBool, DataKind::kInt8, DataKind::kUint8, DataKind::kOther})
    CHECK(!npu_qkv_dtype(k));
  CHECK(npu_mask_dtype(DataKind::kBool) && npu_mask_dtype(DataKind::kInt8) && npu_mask_dtype(DataKind::kUint8));
  for (DataKind k : {DataKind::kAbsent, DataKind::kFloat16, DataKind::kBFloat16, DataKind::kOther})
    CHECK(!npu_mask_dtype(k));
}

// ColumnFill (op_kernel/column_fill.h): for every range in a 1024-column row, the head, middle
// and tail cover exactly [begin, end), each starting on an 8-column block, bits inside a block.
static void test_column_fill() {
  g_test = "column_fill";
  constexpr uint32_t kCols = 1024;
  int bad = 0;
  for (uint32_t begin = 0; begin <= kCols && bad < 5; ++begin) {
    for (uint32_t end = begin; end <= kCols && bad < 5; ++end) {
      const ColumnFill f = ColumnFill::plan(begin, end);
      bool set[kCols + 64] = {};
      bool ok = f.headBlock % 8 == 0 && f.midBegin % 8 == 0 && f.tailBlock % 8 == 0 &&
                f.headBits < 256 && f.tailBits < 256;
      for (uint32_t c = 0; c < 8; ++c) {
        if ((f.headBits >> c) & 1) set[f.headBlock + c] = true;
        if ((f.tailBits >> c) & 1) set[f.tailBlock + c] = true;
      }
      for (uint32_t c = 0; c < f.midCount; ++c) set[f.midBegin + c] = true;
      for (uint32_t c = 0; c < kCols + 64; ++c) ok = ok && set[c] == (c >= begin && c < end);
      if (!ok) {
        std::fprintf(stderr, "[column_fill] wrong cover of [%u, %u)\n", begin, end);
        ++bad;
      }
    }
  }
  CHECK_EQ(bad, 0);
  // Instruction counts: aligned ranges are one count-form Duplicate; [3, 5) is one head only.
  ColumnFill f = ColumnFill::plan(64, 512);
  CHECK(f.headBits == 0 && f.tailBits == 0 && f.midBegin == 64 && f.midCount == 448);
  f = ColumnFill::plan(3, 5);
  CHECK(f.headBits == 0x18 && f.midCount == 0 && f.tailBits == 0);
  f = ColumnFill::plan(3, 21);
  CHECK(f.headBlock == 0 && f.headBits == 0xF8 && f.midBegin == 8 && f.midCount == 8 && f.tailBlock == 16 &&
        f.tailBits == 0x1F);
}

// Issue 13: the first value past each of the spec's NPU limits is refused in the spec's words
// (op_limits.h / op_refusals.h, generated; blitz_acl/limits.py holds the same for Python).
static void test_spec_limits_refused_in_the_specs_words() {
  g_test = "spec_limits";
  using namespace blitz::limits;
  const int64_t S = 256, D = kNpuHeadDimMin;
  auto refused_with = [](const TilingRequest &r, const std::string &message) {
    const TilingPlan p = plan_tiling(r);
    if (p.ok || p.error != message) {
      std::fprintf(stderr, "[%s] expected '%s', got ok=%d '%s'\n", g_test, message.c_str(), (int)p.ok,
                   p.error.c_str());
      ++g_failures;
    }
  };
  CHECK(plan_tiling(request("BNSD", 1, kNpuGroupMax, 1, S, S, D)).ok);
  refused_with(request("BNSD", 1, kNpuHeadsMax + 1, kNpuHeadsMax + 1, S, S, D), refuse_npu_heads(kNpuHeadsMax + 1));
  refused_with(request("BNSD", 1, kNpuGroupMax + 1, 1, S, S, D), refuse_npu_group(kNpuGroupMax + 1));
  refused_with(request("BNSD", kNpuBatchMax + 1, 1, 1, S, S, D), refuse_npu_batch(kNpuBatchMax + 1));
  for (int64_t d : {kNpuHeadDimMax + kNpuHeadDimAlign, kNpuHeadDimMin - 1, kNpuHeadDimMin + 1})
    refused_with(request("BNSD", 1, 1, 1, S, S, d), refuse_npu_head_dim(d));
  TilingRequest r = request("BNSD", 1, 1, 1, S, S, D);
  for (int64_t mode : {kSparseModeMin - 1, kSparseModeMax + 1}) {
    r.sparse_mode = mode;
    refused_with(r, refuse_sparse_mode(mode));
  }
  r.sparse_mode = 0;
  const int64_t bq_max = kBlockQ[sizeof(kBlockQ) / sizeof(kBlockQ[0]) - 1];
  const int64_t shapes[][2] = {{bq_max * 2, kBlockKvStep}, {kBlockQ[0] / 2, kBlockKvStep},
                               {kBlockQ[0], kBlockKvMax + kBlockKvStep}, {kBlockQ[0], kBlockKvStep * 3 / 2}};
  for (const auto &shape : shapes) {
    r.block_q = shape[0];
    r.block_kv = shape[1];
    refused_with(r, refuse_block_shape(shape[0], shape[1], kNpuTitle));
  }
  r = request("BNSD", 1, 1, 1, 1, (int64_t(kSabiPad)) * kBlockKvStep, D);
  r.block_q = kBlockQ[0];
  r.block_kv = kBlockKvStep;
  refused_with(r, refuse_npu_kv_blocks(kSabiPad));
  r = request("BNSD", 1, 1, 1, S, S, D);
  r.dtype_supported = false;
  refused_with(r, refuse_npu_dtype());
  refused_with(request("BDNS", 1, 1, 1, S, S, D), refuse_layout("BDNS"));
}

int main() {
  test_spec_limits_refused_in_the_specs_words();
  test_geometry_and_tails();
  test_layout_strides();
  test_layout_and_dtype_sets();
  test_gqa();
  test_block_shape_and_dims();
  test_unsupported_features();
  test_unified_buffer();
  test_workspace();
  test_core_split();
  test_sabi_dims();
  test_actual_lengths();
  test_token_masks();
  test_masked_split();
  test_device_split();
  test_column_fill();
  test_tnd_plans();
  test_tnd_refusals();
  test_request_from_values();
  if (g_failures) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("npu tiling plan: all checks passed\n");
  return 0;
}
