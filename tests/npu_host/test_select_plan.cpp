// Unit tests of BlitzSelectBlocks' host plan (kernel_src/npu/op_host/select_plan.*), compiled
// with plain g++ (no CANN) by tests/test_npu_tiling.py. Expected values are worked out by hand
// from the shapes, never read back from the code under test.
#include <cstdio>
#include <string>
#include <vector>

#include "select_plan.h"
#include "select_npu_limits.h"
#include "op_refusals.h"

using namespace blitz_npu;

static int g_failures = 0;
static const char *g_test = "";

#define CHECK(cond)                                                                                   \
  do {                                                                                                \
    if (!(cond)) {                                                                                    \
      std::fprintf(stderr, "%s:%d [%s] CHECK failed: %s\n", __FILE__, __LINE__, g_test, #cond);      \
      ++g_failures;                                                                                   \
    }                                                                                                 \
  } while (0)
#define CHECK_EQ(a, b)                                                                                \
  do {                                                                                                \
    const long long va_ = (long long)(a), vb_ = (long long)(b);                                       \
    if (va_ != vb_) {                                                                                 \
      std::fprintf(stderr, "%s:%d [%s] %s = %lld, expected %s = %lld\n", __FILE__, __LINE__, g_test, \
                   #a, va_, #b, vb_);                                                                 \
      ++g_failures;                                                                                   \
    }                                                                                                 \
  } while (0)
#define CHECK_REFUSED(plan, text)                                                                     \
  do {                                                                                                \
    if ((plan).ok || (plan).error != (text)) {                                                        \
      std::fprintf(stderr, "%s:%d [%s] expected the refusal '%s', got ok=%d '%s'\n", __FILE__,       \
                   __LINE__, g_test, std::string(text).c_str(), (int)(plan).ok, (plan).error.c_str()); \
      ++g_failures;                                                                                   \
    }                                                                                                 \
  } while (0)

static uint32_t tmp_8k(uint32_t, uint32_t, void *) { return 8 * 1024; }

// BNSD [B, N, Sq, D] / [B, Nkv, Skv, D], fp16, 64 x 128 tiles, mass 0.9, no refinement, a 910B's
// 24 + 48 cores.
static SelectRequest request(int64_t b, int64_t n, int64_t nkv, int64_t sq, int64_t skv, int64_t d) {
  SelectRequest r;
  r.q_rank = r.k_rank = 4;
  const int64_t q[4] = {b, n, sq, d}, k[4] = {b, nkv, skv, d};
  for (int i = 0; i < 4; ++i) r.q_dims[i] = q[i], r.k_dims[i] = k[i];
  r.layout = "BNSD";
  r.dtype_supported = true;
  r.num_heads = n;
  r.num_kv_heads = nkv;
  r.block_q = 64;
  r.block_kv = 128;
  r.mass = 0.9;
  r.refine_below = 0.0;  // no sub-block refinement unless a test turns it on
  r.cores = CoreInfo{24, 48, 192 * 1024, 512 * 1024, 128 * 1024};
  r.softmax_tmp_bytes = tmp_8k;
  return r;
}

static void test_geometry() {
  g_test = "geometry";
  const SelectPlan plan = plan_select(request(2, 4, 2, 700, 1100, 32));
  CHECK(plan.ok);
  const SelectTilingParams &p = plan.params;
  CHECK_EQ(p.group, 2);
  CHECK_EQ(p.rows, 11);          // ceil(700 / 64)
  CHECK_EQ(p.cols, 9);           // ceil(1100 / 128)
  CHECK_EQ(p.cols_aligned, 64);  // one vector repeat of float
  CHECK_EQ(p.sabi_row_aligned, 16);
  CHECK_EQ(p.units, 2 * 2 * 11);
  CHECK_EQ(p.q.b, 4 * 700 * 32);
  CHECK_EQ(p.q.h, 700 * 32);
  CHECK_EQ(p.q.s, 32);
  CHECK_EQ(p.k.h, 1100 * 32);
  CHECK(p.scale > 0.1767f && p.scale < 0.1768f);  // 1 / sqrt(32)
  CHECK(p.ub_total_bytes <= 192 * 1024 - kUbReserveBytes);
  // The kernel's buffers without the refinement (one unit a block): 2 token chunks (64 x 32
  // fp16), their float copy, the mean row (32 floats), the score row, the mass and group mass
  // rows (64 floats each), the partial block's count and log (32 B each), 3 statistics, the 8 KiB
  // stand-in scratch, the sabi row (16); no square sums, unit block masses nor block firsts.
  CHECK_EQ(p.sub_block, 0);
  CHECK_EQ(p.ub_tokens_bytes, 64 * 32 * 2);
  CHECK_EQ(p.ub_score_bytes, 64 * 4);
  CHECK_EQ(p.ub_sabi_bytes, 16 * 2);
  CHECK_EQ(p.ub_unit_row_bytes, 64 * 4);
  CHECK_EQ(p.ub_log_bytes, 32);
  CHECK_EQ(p.ub_first_bytes, 0);
  CHECK_EQ(p.ub_total_bytes, 2 * 4096 + 8192 + 128 + 256 + 2 * 32 + 2 * 256 + 3 * 32 + 8192 + 32);
  CHECK_EQ(p.chunk_rows, 64);
  // Workspace per worker: key means 9 x 32 floats, query means 2 x 32, logits 2 x 64, each to 512 B.
  CHECK_EQ(p.ws_key_bytes, 1536);
  CHECK_EQ(p.ws_query_bytes, 512);
  CHECK_EQ(p.ws_logit_bytes, 512);
}

static void test_layouts() {
  g_test = "layouts";
  SelectRequest r = request(2, 4, 2, 300, 500, 16);
  r.layout = "BSND";
  const int64_t q[4] = {2, 300, 4, 16}, k[4] = {2, 500, 2, 16};
  for (int i = 0; i < 4; ++i) r.q_dims[i] = q[i], r.k_dims[i] = k[i];
  SelectPlan plan = plan_select(r);
  CHECK(plan.ok);
  CHECK_EQ(plan.params.q.s, 4 * 16);
  CHECK_EQ(plan.params.q.h, 16);
  CHECK_EQ(plan.params.k.s, 2 * 16);
  // TND: [T, N, D] with cumulative lengths; rows / cols over the longest batch.
  SelectRequest t = request(1, 2, 1, 0, 0, 16);
  t.layout = "TND";
  t.q_rank = t.k_rank = 3;
  const int64_t tq[3] = {277, 2, 16}, tk[3] = {369, 1, 16};
  for (int i = 0; i < 3; ++i) t.q_dims[i] = tq[i], t.k_dims[i] = tk[i];
  const int64_t cq[3] = {200, 200, 277}, ckv[3] = {300, 364, 369};
  t.actual_q = cq, t.actual_q_count = 3, t.actual_kv = ckv, t.actual_kv_count = 3;
  plan = plan_select(t);
  CHECK(plan.ok);
  CHECK_EQ(plan.params.batch, 3);
  CHECK_EQ(plan.params.packed, 1);
  CHECK_EQ(plan.params.seq_q, 200);
  CHECK_EQ(plan.params.seq_kv, 300);
  CHECK_EQ(plan.params.rows, 4);  // ceil(200 / 64)
  CHECK_EQ(plan.params.cols, 3);  // ceil(300 / 128)
  CHECK_EQ(plan.params.q.b, 0);
  CHECK_EQ(plan.params.q.s, 2 * 16);
  const int64_t bad[3] = {200, 100, 277};
  t.actual_q = bad;
  CHECK(!plan_select(t).ok);
}

static void test_split() {
  g_test = "split";
  for (uint32_t vector : {2u, 8u, 48u}) {
    SelectRequest r = request(1, 2, 2, 640, 640, 16);  // 2 x 10 = 20 units
    r.cores.vector_cores = vector;
    r.cores.cube_cores = vector / 2;
    const SelectPlan plan = plan_select(r);
    CHECK(plan.ok);
    const SelectTilingParams &p = plan.params;
    CHECK_EQ(p.workers, vector < 20 ? vector : 20);
    CHECK_EQ(p.unit_start[0], 0);
    CHECK_EQ(p.unit_start[p.workers], 20);
    for (uint32_t w = 0; w < p.workers; ++w) {
      CHECK(p.unit_start[w + 1] - p.unit_start[w] >= 20 / int64_t(p.workers));
      CHECK(p.unit_start[w + 1] - p.unit_start[w] <= 20 / int64_t(p.workers) + 1);
    }
    CHECK_EQ(p.ws_user_bytes, p.ws_worker_bytes * p.workers);
  }
}

static void test_refusals() {
  g_test = "refusals";
  SelectRequest r = request(1, 2, 2, 256, 512, 32);
  r.method = "other";  // past the CPU op's checks only from a caller of the plan itself
  CHECK_REFUSED(plan_select(r), select_limits::refuse_select_npu_method("other"));
  r.method = "antidiagonal";
  CHECK(plan_select(r).ok);
  for (const int64_t stride : {0, 65}) {
    r.stride = stride;
    CHECK_REFUSED(plan_select(r), "stride = " + std::to_string(stride) +
                                      "; expected 1..64 (the antidiagonal cell side in tokens)");
  }
  r = request(1, 2, 2, 256, 512, 32);
  r.method = "antidiagonal";
  r.sparse_mode = 2;  // no mask on the NPU for either method yet
  CHECK_REFUSED(plan_select(r), select_limits::refuse_select_npu_mask(2));
  r = request(1, 2, 2, 256, 512, 32);
  r.refine_below = 0.5;  // the refinement: key units of sub_block tokens, the rows sized for them
  r.sub_block = 32;
  {
    const SelectPlan refined = plan_select(r);
    CHECK(refined.ok);
    CHECK_EQ(refined.params.k_units_max, 4 * (128 / 32));
    CHECK_EQ(refined.params.k_units_aligned, 64);
    CHECK_EQ(refined.params.q_units_max, 1 * (64 / 32));  // group 1, bq 64
    CHECK_EQ(refined.params.ws_logit_bytes, uint64_t(2 * 64 * 4));
    // Refining adds the square sums row (32 floats), a count and an ln n row over the key units
    // (64 floats each), one unit's block masses (64 floats) and block firsts (5 int32 -> 32 B).
    CHECK_EQ(refined.params.ub_log_bytes, 64 * 4);
    CHECK_EQ(refined.params.ub_first_bytes, 32);
    CHECK_EQ(refined.params.ub_total_bytes, 2 * 4096 + 8192 + 2 * 128 + 3 * 256 + 3 * 256 + 3 * 32 + 8192 + 32 + 32);
  }
  r.sub_block = 0;
  CHECK(!plan_select(r).ok);
  r.sub_block = 32;
  r.refine_below = 1.5;
  CHECK(!plan_select(r).ok);
  r = request(1, 2, 2, 256, 512, 32);
  r.dtype_supported = false;
  CHECK_REFUSED(plan_select(r), select_limits::refuse_select_npu_dtype());
  r = request(1, 2, 2, 256, 512, 24);
  CHECK_REFUSED(plan_select(r), blitz::limits::refuse_npu_head_dim(24));
  r = request(1, 2, 2, 256, 512, 32);
  r.block_q = 100;
  CHECK_REFUSED(plan_select(r), blitz::limits::refuse_block_shape(100, 128, blitz::limits::kNpuTitle));
  r = request(1, 2, 2, 256, 512, 32);
  r.mass = 0.0;
  CHECK(!plan_select(r).ok);
  r.top_k = 2;
  CHECK(plan_select(r).ok);
}

// Antidiagonal: key units are cells of stride keys (ceil(bkv / stride) a block), query units row
// groups of stride rows, each a cell vector of stride x D floats (the matmul's K).
static void test_antidiagonal_geometry() {
  g_test = "antidiagonal_geometry";
  SelectRequest r = request(2, 4, 2, 700, 1100, 32);
  r.method = "antidiagonal";
  r.stride = 8;
  r.refine_below = 0.5;  // mean_pool's refinement: not used by antidiagonal
  SelectPlan plan = plan_select(r);
  CHECK(plan.ok);
  const SelectTilingParams &p = plan.params;
  CHECK_EQ(p.sub_block, 0);
  CHECK_EQ(p.stride, 8);
  CHECK_EQ(p.cell_dim, 8 * 32);
  CHECK_EQ(p.k_units_max, 9 * (128 / 8));  // 144 cells
  CHECK_EQ(p.k_units_aligned, 192);
  CHECK_EQ(p.q_units_max, 2 * (64 / 8));   // group 2, bq 64
  CHECK_EQ(p.chunk_rows, 64);
  CHECK_EQ(p.ub_unit_row_bytes, 192 * 4);
  CHECK_EQ(p.ub_log_bytes, 64 * 4);  // the ln 1..64 table (and its counts)
  CHECK_EQ(p.ub_sum_bytes, 2 * 128);
  CHECK_EQ(p.ub_first_bytes, 64);  // 10 int32 -> 64 B
  // 2 token chunks (64 x 32 fp16), their float copy, the partial cell's sum row (32 floats), the
  // cell score row (192 floats: the only row per cell), the count and ln tables (64 floats
  // each), the mass, group mass and one row group's block masses (64 floats each), 3
  // statistics, the 8 KiB stand-in scratch, the sabi row, block firsts, the fallback's two sum rows.
  CHECK_EQ(p.ub_total_bytes, 2 * 4096 + 8192 + 128 + 768 + 2 * 256 + 3 * 256 + 3 * 32 + 8192 + 32 + 64 + 256);
  // Workspace per worker: key cells 144 x 256 floats, query row groups 16 x 256, logits 16 x 192,
  // the partial sums (9 blocks + 2 heads) x 32 floats = 1408 B -> 1536.
  CHECK_EQ(p.ws_key_bytes, 144 * 256 * 4);
  CHECK_EQ(p.ws_query_bytes, 16 * 256 * 4);
  CHECK_EQ(p.ws_logit_bytes, 16 * 192 * 4);
  CHECK_EQ(p.ws_sum_bytes, 1536);
  CHECK_EQ(p.ws_worker_bytes, 147456 + 16384 + 12288 + 1536);
  // An odd stride: 128 = 25 x 5 + 3, so 26 cells a key block, 13 row groups a query block.
  r.stride = 5;
  plan = plan_select(r);
  CHECK(plan.ok);
  CHECK_EQ(plan.params.k_units_max, 9 * 26);
  CHECK_EQ(plan.params.q_units_max, 2 * 13);
  CHECK_EQ(plan.params.cell_dim, 5 * 32);
  // mean_pool keeps its own geometry (no cells).
  r.method = "mean_pool";
  plan = plan_select(r);
  CHECK(plan.ok);
  CHECK_EQ(plan.params.stride, 0);
  CHECK_EQ(plan.params.cell_dim, 32);
  CHECK_EQ(plan.params.sub_block, 32);  // refine_below 0.5 refines mean_pool
  CHECK_EQ(plan.params.ws_sum_bytes, 0);
}

// The most key blocks one score row in UB holds, worked out by hand for D = 256, fp16, bkv 64,
// the 8 KiB stand-in scratch and 192 KiB - 8 KiB - 256 B = 188160 B of UB, at the smallest token
// chunk (8 rows): 2 x 8 x 256 x 2 + 8 x 256 x 4 = 16384 B of tokens, 96 of statistics, 8192 of
// scratch.
//   Without the refinement: + the mean row (1024) + the partial block's count and log (64) =
//   25760 B fixed; a key block 3 x 4 B (score, mass, group mass) + 2 B (sabi) = 14 B:
//   (188160 - 25760) / 14 = 11600 -> 11584 (a multiple of 64; 25760 + 11584 x 14 = 187936).
//   Sized for the refinement's rows too (as the plan did before), it was 5376.
//   sub_block 32 (2 units a block): + the mean and square sums rows (2048) = 26720 B fixed; a key
//   block 2 x 3 x 4 B (unit score, count, ln n) + 3 x 4 B (mass, group mass, a unit's block masses)
//   + 2 B (sabi) + 4 B (first unit) = 42 B: (188160 - 26720) / 42 = 3843 -> 3840 (26720 + 92160 +
//   46080 + 7680 + 15392 = 188032; 3841 blocks need rows for 3904: 189952 B).
//   Antidiagonal, stride 8 (8 cells a block): + the partial cell's sum row and the fallback's two
//   sum rows (3072) + the count and ln tables (2 x 256) + the block firsts' one int32 block (32)
//   = 28288 B fixed; a key block 8 x 4 B (its cells' score entries) + 3 x 4 B (mass, group mass,
//   a row group's block masses) + 2 B (sabi) + 4 B (first cell) = 50 B: (188160 - 28288) / 50 =
//   3197 -> 3136 (24672 + 6272 sabi + 3584 + 100352 + 37632 + 12576 firsts = 185088).
static void test_kv_block_limit() {
  g_test = "kv_block_limit";
  const uint64_t ub = 192 * 1024 - kUbReserveBytes;
  CHECK_EQ(ub, 188160);
  CHECK_EQ(select_max_cols(8, 256, 2, ub, 8 * 1024), 11584);
  CHECK_EQ(select_ub_bytes(8, 256, 2, 11584, 8 * 1024), 187936);
  CHECK_EQ(select_max_cols(8, 256, 2, ub, 8 * 1024, true, 2), 3840);
  CHECK_EQ(select_ub_bytes(8, 256, 2, 3840, 8 * 1024, true, 7680), 188032);
  for (const bool refine : {false, true}) {
    const int64_t most = refine ? 3840 : 11584;
    SelectRequest r = request(1, 1, 1, 64, 64 * most - 5, 256);  // a partial last block
    r.block_kv = 64;
    r.refine_below = refine ? 0.5 : 0.0;
    r.sub_block = 32;
    const SelectPlan at = plan_select(r);
    CHECK(at.ok);
    CHECK_EQ(at.params.cols, most);
    CHECK(at.params.ub_total_bytes <= ub);
    CHECK_EQ(at.params.chunk_rows, 8);
    // Workspace: key unit means [units, 256] floats, query unit means, unit logits (to 512 B).
    CHECK_EQ(at.params.ws_key_bytes, uint64_t(most * (refine ? 2 : 1) * 256 * 4));
    CHECK_EQ(at.params.ws_query_bytes, uint64_t((refine ? 2 : 1) * 256 * 4));
    CHECK_EQ(at.params.ws_logit_bytes, refine ? uint64_t(2 * 7680 * 4) : uint64_t(46592));  // 11584 x 4 -> 512 B
    r.k_dims[2] = 64 * most + 1;
    CHECK_REFUSED(plan_select(r), select_limits::refuse_select_npu_kv_blocks(most + 1, most));
  }
  CHECK_EQ(select_max_cols(8, 256, 2, ub, 8 * 1024, false, 8, true), 3136);
  CHECK_EQ(select_ub_bytes(8, 256, 2, 3136, 8 * 1024, false, 3136 * 8, true), 185088);
  CHECK_EQ(select_ub_bytes(8, 256, 2, 3200, 8 * 1024, false, 3200 * 8, true), 188288);  // > ub
  SelectRequest r = request(1, 1, 1, 64, 64 * 3136 - 5, 256);
  r.block_kv = 64;
  r.method = "antidiagonal";
  r.stride = 8;
  const SelectPlan at = plan_select(r);
  CHECK(at.ok);
  CHECK_EQ(at.params.cols, 3136);
  CHECK_EQ(at.params.k_units_max, 3136 * 8);
  CHECK(at.params.ub_total_bytes <= ub);
  CHECK_EQ(at.params.chunk_rows, 8);
  // 3137 blocks would fit (25096 cells: a 25152-float row, 186496 B at cols_aligned 3200), but
  // the plan refuses them at the limit its message names.
  CHECK_EQ(select_ub_bytes(8, 256, 2, 3200, 8 * 1024, false, 25152, true), 186496);
  r.k_dims[2] = 64 * 3136 + 1;
  CHECK_REFUSED(plan_select(r), select_limits::refuse_select_npu_kv_blocks(3137, 3136));
  // Stride 16 (4 cells a block, 34 B a block): (188160 - 28288) / 34 = 4702 -> 4672 (187136 B).
  r.stride = 16;
  CHECK_EQ(select_max_cols(8, 256, 2, ub, 8 * 1024, false, 4, true), 4672);
  CHECK_EQ(select_ub_bytes(8, 256, 2, 4672, 8 * 1024, false, 4672 * 4, true), 187136);
  r.k_dims[2] = 64 * 4672;
  CHECK(plan_select(r).ok);
  r.k_dims[2] = 64 * 4672 + 1;
  CHECK_REFUSED(plan_select(r), select_limits::refuse_select_npu_kv_blocks(4673, 4672));
}

int main() {
  test_geometry();
  test_layouts();
  test_split();
  test_refusals();
  test_antidiagonal_geometry();
  test_kv_block_limit();
  if (g_failures != 0) {
    std::fprintf(stderr, "%d select plan checks failed\n", g_failures);
    return 1;
  }
  std::printf("all checks passed\n");
  return 0;
}
