// The NPU kernel run through the launcher (kernel_src/npu/sim/launcher): the real tiling plans a
// small GQA call with a shuffled sabi (holes anywhere), partial tiles, a causal bottom-right mask
// and lse, the real kernel entry runs on 8 vector cores through the execution model, and every
// output row and lse value is compared with a double computation written here.
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernel_operator.h"
#include "launcher.h"

namespace {

constexpr int64_t B = 1, N = 2, NKV = 1, SQ = 100, SKV = 300, D = 64, BQ = 64, BKV = 128;
constexpr int64_t ROWS = (SQ + BQ - 1) / BQ, KV_BLOCKS = (SKV + BKV - 1) / BKV, W = KV_BLOCKS;
constexpr uint16_t kPad = 0xFFFF;
constexpr double kAtol = 2e-3;  // fp16 inputs and P rounded to fp16 before P*V

// Double reference for BNSD inputs: tiles from sabi, then mode 3 (j <= i + SKV - SQ).
void reference(const std::vector<half> &q, const std::vector<half> &k, const std::vector<half> &v,
               const std::vector<uint16_t> &sabi, float scale, std::vector<double> &out, std::vector<double> &lse)
{
  out.assign(B * N * SQ * D, 0.0);
  lse.assign(B * N * SQ, -INFINITY);
  for (int64_t h = 0; h < N; ++h) {
    const int64_t hk = h / (N / NKV);
    for (int64_t i = 0; i < SQ; ++i) {
      std::vector<bool> allowed(SKV, false);
      for (int64_t c = 0; c < W; ++c) {
        const uint16_t blk = sabi[(h * ROWS + i / BQ) * W + c];
        if (blk == kPad) continue;
        for (int64_t j = blk * BKV; j < std::min(SKV, (blk + 1) * BKV); ++j) allowed[j] = j <= i + SKV - SQ;
      }
      std::vector<double> s(SKV, -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j < SKV; ++j) {
        if (!allowed[j]) continue;
        double dot = 0;
        for (int64_t d = 0; d < D; ++d) dot += double(float(q[(h * SQ + i) * D + d])) * double(float(k[(hk * SKV + j) * D + d]));
        s[j] = dot * scale;
        m = std::max(m, s[j]);
      }
      if (m == -INFINITY) continue;
      double sum = 0;
      for (int64_t j = 0; j < SKV; ++j) sum += allowed[j] ? std::exp(s[j] - m) : 0.0;
      for (int64_t j = 0; j < SKV; ++j) {
        if (!allowed[j]) continue;
        const double p = std::exp(s[j] - m) / sum;
        for (int64_t d = 0; d < D; ++d) out[(h * SQ + i) * D + d] += p * double(float(v[(hk * SKV + j) * D + d]));
      }
      lse[h * SQ + i] = m + std::log(sum);
    }
  }
}

}  // namespace

int main()
{
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<half> q(B * N * SQ * D), k(B * NKV * SKV * D), v(B * NKV * SKV * D), out(B * N * SQ * D);
  for (auto *t : {&q, &k, &v}) for (half &x : *t) x = half(normal(rng));
  // sabi [B, N, ROWS, W]: each row a shuffled subset of the key blocks, holes anywhere.
  std::vector<uint16_t> sabi(B * N * ROWS * W, kPad);
  for (int64_t r = 0; r < N * ROWS; ++r) {
    for (int64_t c = 0; c < W; ++c) {
      if (rng() % 3 != 0) sabi[r * W + c] = uint16_t((c + r) % KV_BLOCKS);
    }
  }
  std::vector<float> lse(B * N * SQ, 0.0f);

  blitz_npu_sim::SimCall call;
  blitz_npu::TilingRequest &r = call.request;
  const int64_t qd[4] = {B, N, SQ, D}, kd[4] = {B, NKV, SKV, D}, sd[4] = {B, N, ROWS, W};
  for (int i = 0; i < 4; ++i) r.q_dims[i] = qd[i], r.k_dims[i] = kd[i], r.v_dims[i] = kd[i], r.sabi_dims[i] = sd[i];
  r.q_rank = r.k_rank = r.v_rank = r.sabi_rank = 4;
  r.layout = "BNSD";
  r.dtype_supported = true;
  r.dtype_size = 2;
  r.num_heads = N;
  r.num_kv_heads = NKV;
  r.scale_value = 1.0 / std::sqrt(double(D));
  r.sparse_mode = 3;
  r.block_q = BQ;
  r.block_kv = BKV;
  r.return_lse = true;
  call.query = {q.data(), q.size() * sizeof(half)};
  call.key = {k.data(), k.size() * sizeof(half)};
  call.value = {v.data(), v.size() * sizeof(half)};
  call.sabi = {sabi.data(), sabi.size() * sizeof(uint16_t)};
  call.attention_out = {out.data(), out.size() * sizeof(half)};
  call.softmax_lse = {lse.data(), lse.size() * sizeof(float)};

  const blitz_npu_sim::SimPlan plan = blitz_npu_sim::plan(call, blitz_npu_sim::core_info(8));
  if (!plan.ok) {
    std::fprintf(stderr, "tiling rejected the call: %s\n", plan.error.c_str());
    return 1;
  }
  std::vector<uint8_t> workspace(plan.workspace_bytes);
  const blitz_sim::LaunchReport report = blitz_npu_sim::launch(call, plan, workspace.data());
  if (!report.ok) {
    std::fprintf(stderr, "model violation: %s\n", report.error.c_str());
    return 1;
  }
  std::vector<double> ref_out, ref_lse;
  reference(q, k, v, sabi, float(r.scale_value), ref_out, ref_lse);
  double worst = 0, worst_lse = 0;
  for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::fabs(double(float(out[i])) - ref_out[i]));
  for (size_t i = 0; i < lse.size(); ++i) {
    if (std::isinf(ref_lse[i])) {
      if (!(std::isinf(lse[i]) && lse[i] < 0)) worst_lse = INFINITY;
      continue;
    }
    worst_lse = std::max(worst_lse, std::fabs(double(lse[i]) - ref_lse[i]));
  }
  std::printf("launcher: block_dim %u, vector cores %zu, max |out - ref| = %.3g, max |lse - ref| = %.3g\n",
              plan.block_dim, report.vector.size(), worst, worst_lse);
  return worst <= kAtol && worst_lse <= kAtol ? 0 : 1;
}
