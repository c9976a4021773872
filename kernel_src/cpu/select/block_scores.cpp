// mean_pool (block_scores.h). Key and query tokens are read through the problem's strided views
// (every layout), converted to float; the pooling works in double (its cost is a few dot products
// per block pair).
#include "select/block_scores.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/platform.h"
#include "kernel/element_convert.h"

namespace blitz::cpu::select {
namespace {

// Token t of batch b, head h of view v (t counted from the batch's first token), as float.
void load_token(const SelectProblem &p, const TensorView &v, int64_t b, int64_t start, int64_t h, int64_t t,
                float *dst) {
  const int64_t element = b * v.stride_b + (start + t) * v.stride_s + h * v.stride_h;
  const int64_t d = p.head_dim;
  switch (p.dtype) {
    case ElementType::kFloat32: {
      const float *src = static_cast<const float *>(v.data) + element;
      std::memcpy(dst, src, sizeof(float) * d);
      return;
    }
    case ElementType::kFloat16: {
      const uint16_t *src = static_cast<const uint16_t *>(v.data) + element;
      for (int64_t x = 0; x < d; ++x) dst[x] = fp16_to_float(src[x]);
      return;
    }
    case ElementType::kBFloat16: {
      const uint16_t *src = static_cast<const uint16_t *>(v.data) + element;
      for (int64_t x = 0; x < d; ++x) dst[x] = bf16_to_float(src[x]);
      return;
    }
  }
}

// Independent partial sums (no reassociation needed to vectorise, and no single dependency chain).
constexpr int kLanes = 8;
double dot_f64(const double *a, const double *b, int64_t n) {
  double acc[kLanes] = {};
  int64_t x = 0;
  for (; x + kLanes <= n; x += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[x + l] * b[x + l];
  }
  double total = 0.0;
  for (int l = 0; l < kLanes; ++l) total += acc[l];
  for (; x < n; ++x) total += a[x] * b[x];
  return total;
}

// Units of a block of n tokens [first, first + n): one unit, or sub-blocks of sub_block tokens
// when the block's coherence is below refine_below. Appends each unit's mean and token count.
// tokens: the block's tokens as float, n x D.
// sum: scratch of 2 D doubles.
void pool_block(const std::vector<float> &tokens, int64_t n, const SelectProblem &p, std::vector<double> &sum,
                std::vector<double> &means, std::vector<int64_t> &counts) {
  const int64_t d = p.head_dim;
  // Per-dimension sums of x and x^2 (one accumulator each per dimension, so the loop vectorises).
  sum.assign(static_cast<size_t>(2 * d), 0.0);
  double *sq = sum.data() + d;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t x = 0; x < d; ++x) {
      const double v = tokens[t * d + x];
      sum[x] += v;
      sq[x] += v * v;
    }
  }
  double sum_sq = 0.0;
  for (int64_t x = 0; x < d; ++x) sum_sq += sq[x];
  // coherence = ||sum x||^2 / (n sum ||x||^2) in [0, 1]; all-zero tokens are alike (1).
  const double coherence = sum_sq > 0.0 ? dot_f64(sum.data(), sum.data(), d) / (static_cast<double>(n) * sum_sq) : 1.0;
  const int64_t unit = coherence < p.refine_below ? p.sub_block : n;
  for (int64_t u0 = 0; u0 < n; u0 += unit) {
    const int64_t m = std::min(unit, n - u0);
    const size_t at = means.size();
    means.resize(at + static_cast<size_t>(d), 0.0);
    for (int64_t t = u0; t < u0 + m; ++t) {
      for (int64_t x = 0; x < d; ++x) means[at + x] += tokens[t * d + x];
    }
    for (int64_t x = 0; x < d; ++x) means[at + x] /= static_cast<double>(m);
    counts.push_back(m);
  }
}

// Softmax over the key units of logits (in place), summed into mass per block with weight w.
void accumulate_softmax(std::vector<double> &logits, const KeySummary &keys, double w, double *mass) {
  double top = -INFINITY;
  for (double l : logits) top = std::max(top, l);
  if (top == -INFINITY) return;  // every key unit masked for this query unit
  double total = 0.0;
  for (double &l : logits) total += (l = std::exp(l - top));
  for (int64_t j = 0; j < keys.valid_blocks; ++j) {
    double block = 0.0;
    for (int64_t t = keys.block_begin[j]; t < keys.block_begin[j + 1]; ++t) block += logits[t];
    mass[j] += w * block / total;
  }
}

void mean_pool_mass(const SelectProblem &p, const KeySummary &keys, int64_t b, int64_t h, int64_t i,
                    QueryScratch &s, double *mass) {
  const int64_t d = p.head_dim, rows = std::min(p.block_q, p.len_q[b] - i * p.block_q);
  s.tokens.resize(static_cast<size_t>(rows * d));
  for (int64_t r = 0; r < rows; ++r) load_token(p, p.q, b, p.q_start[b], h, i * p.block_q + r, &s.tokens[r * d]);
  s.unit_mean.clear();
  s.unit_rows.clear();
  pool_block(s.tokens, rows, p, s.sum, s.unit_mean, s.unit_rows);
  const int64_t units = static_cast<int64_t>(keys.count.size());
  s.logits.resize(static_cast<size_t>(units));
  const Visibility vis = Visibility::of(p, b);
  int64_t r0 = i * p.block_q;
  for (size_t u = 0; u < s.unit_rows.size(); r0 += s.unit_rows[u], ++u) {
    const double *qm = &s.unit_mean[u * d];
    for (int64_t t = 0; t < units; ++t) {
      s.logits[t] = vis.any(r0, r0 + s.unit_rows[u], keys.first[t], keys.first[t] + keys.count[t])
                        ? p.scale * dot_f64(qm, &keys.means[t * d], d) + keys.log_count[t]
                        : -INFINITY;
    }
    accumulate_softmax(s.logits, keys, static_cast<double>(s.unit_rows[u]) / static_cast<double>(rows), mass);
  }
}

}  // namespace

void summarize_keys(const SelectProblem &p, int64_t b, int64_t g, KeySummary &keys) {
  const int64_t d = p.head_dim, len = p.len_kv[b];
  keys.valid_blocks = ceil_div(len, p.block_kv);
  keys.block_begin.assign(1, 0);
  keys.count.clear();
  keys.first.clear();
  keys.means.clear();
  std::vector<float> tokens;
  std::vector<double> sum;
  for (int64_t j = 0; j < keys.valid_blocks; ++j) {
    const int64_t n = std::min(p.block_kv, len - j * p.block_kv);
    tokens.resize(static_cast<size_t>(n * d));
    for (int64_t t = 0; t < n; ++t) load_token(p, p.k, b, p.kv_start[b], g, j * p.block_kv + t, &tokens[t * d]);
    pool_block(tokens, n, p, sum, keys.means, keys.count);
    for (int64_t t = keys.block_begin.back(), at = j * p.block_kv; t < static_cast<int64_t>(keys.count.size()); ++t) {
      keys.first.push_back(at);
      at += keys.count[t];
    }
    keys.block_begin.push_back(static_cast<int64_t>(keys.count.size()));
  }
  keys.log_count.resize(keys.count.size());
  for (size_t t = 0; t < keys.count.size(); ++t) keys.log_count[t] = std::log(static_cast<double>(keys.count[t]));
}

void query_block_mass(const SelectProblem &p, const KeySummary &keys, int64_t b, int64_t h, int64_t i,
                      QueryScratch &scratch, double *mass) {
  std::fill(mass, mass + keys.valid_blocks, 0.0);
  mean_pool_mass(p, keys, b, h, i, scratch, mass);
}

}  // namespace blitz::cpu::select
