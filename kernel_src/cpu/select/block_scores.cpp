// The scoring methods of block_scores.h. Key and query tokens are read through the problem's
// strided views (every layout), converted to float; mean_pool works in double (its cost is a few
// dot products per block pair), antidiagonal accumulates its cell dot products in float (it
// reads every token pair of one antidiagonal per cell: 1/stride of Q K^T's work).
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

// Eight independent partial sums, so the compiler vectorises the loop without reassociating.
constexpr int kLanes = 8;
float dot_f32(const float *a, const float *b, int64_t n) {
  float acc[kLanes] = {};
  int64_t x = 0;
  for (; x + kLanes <= n; x += kLanes) {
    for (int l = 0; l < kLanes; ++l) acc[l] += a[x + l] * b[x + l];
  }
  float total = 0.0f;
  for (int l = 0; l < kLanes; ++l) total += acc[l];
  for (; x < n; ++x) total += a[x] * b[x];
  return total;
}

double dot_f64(const double *a, const double *b, int64_t n) {
  double total = 0.0;
  for (int64_t x = 0; x < n; ++x) total += a[x] * b[x];
  return total;
}

// Units of a block of n tokens [first, first + n): one unit, or sub-blocks of sub_block tokens
// when the block's coherence is below refine_below. Appends each unit's mean and token count.
// tokens: the block's tokens as float, n x D.
// sum: scratch of D doubles.
void pool_block(const std::vector<float> &tokens, int64_t n, const SelectProblem &p, std::vector<double> &sum,
                std::vector<double> &means, std::vector<int64_t> &counts) {
  const int64_t d = p.head_dim;
  sum.assign(static_cast<size_t>(d), 0.0);
  double sum_sq = 0.0;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t x = 0; x < d; ++x) {
      const double v = tokens[t * d + x];
      sum[x] += v;
      sum_sq += v * v;
    }
  }
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
  for (size_t u = 0; u < s.unit_rows.size(); ++u) {
    const double *qm = &s.unit_mean[u * d];
    for (int64_t t = 0; t < units; ++t) s.logits[t] = p.scale * dot_f64(qm, &keys.means[t * d], d) + keys.log_count[t];
    accumulate_softmax(s.logits, keys, static_cast<double>(s.unit_rows[u]) / static_cast<double>(rows), mass);
  }
}

void antidiagonal_mass(const SelectProblem &p, const KeySummary &keys, int64_t b, int64_t h, int64_t i,
                       CellDotsFn cell_dots, QueryScratch &s, double *mass) {
  const int64_t d = p.head_dim, stride = p.stride, cell = stride * d;
  const int64_t rows = std::min(p.block_q, p.len_q[b] - i * p.block_q), groups = ceil_div(rows, stride);
  const int64_t units = static_cast<int64_t>(keys.count.size());
  // Row group u's slot r holds row u stride + stride-1-r (the antidiagonal's order); missing rows stay 0.
  s.packed.assign(static_cast<size_t>(groups * cell), 0.0f);
  s.unit_sum.assign(static_cast<size_t>(groups * d), 0.0f);
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t u = row / stride, local = row % stride;
    float *slot = &s.packed[u * cell + (stride - 1 - local) * d];
    load_token(p, p.q, b, p.q_start[b], h, i * p.block_q + row, slot);
    for (int64_t x = 0; x < d; ++x) s.unit_sum[u * d + x] += slot[x];
  }
  s.dots.resize(static_cast<size_t>(groups * units));
  cell_dots(s.packed.data(), groups, keys.packed.data(), units, cell, s.dots.data());
  s.logits.resize(static_cast<size_t>(units));
  for (int64_t u = 0; u < groups; ++u) {
    const int64_t n_u = std::min(stride, rows - u * stride);
    for (int64_t t = 0; t < units; ++t) {
      const int64_t n_t = keys.count[t];
      // Valid pairs: query slot r is a row iff r >= stride - n_u, key slot r a key iff r < n_t.
      const int64_t pairs = n_t + n_u - stride;
      const double score = pairs > 0 ? s.dots[u * units + t] / static_cast<double>(pairs)
                                     : dot_f32(&s.unit_sum[u * d], &keys.sums[t * d], d) / static_cast<double>(n_u * n_t);
      s.logits[t] = p.scale * score + keys.log_count[t];
    }
    accumulate_softmax(s.logits, keys, static_cast<double>(n_u) / static_cast<double>(rows), mass);
  }
}

}  // namespace

void summarize_keys(const SelectProblem &p, int64_t b, int64_t g, KeySummary &keys) {
  const int64_t d = p.head_dim, len = p.len_kv[b];
  keys.valid_blocks = ceil_div(len, p.block_kv);
  keys.block_begin.assign(1, 0);
  keys.count.clear();
  keys.means.clear();
  keys.packed.clear();
  keys.sums.clear();
  const bool pooled = p.method == Method::kMeanPool;
  const int64_t stride = p.stride, cell = stride * d;
  std::vector<float> tokens;
  std::vector<double> sum;
  for (int64_t j = 0; j < keys.valid_blocks; ++j) {
    const int64_t n = std::min(p.block_kv, len - j * p.block_kv);
    tokens.resize(static_cast<size_t>(n * d));
    for (int64_t t = 0; t < n; ++t) load_token(p, p.k, b, p.kv_start[b], g, j * p.block_kv + t, &tokens[t * d]);
    if (pooled) {
      pool_block(tokens, n, p, sum, keys.means, keys.count);
    } else {
      for (int64_t t0 = 0; t0 < n; t0 += stride) {
        const int64_t m = std::min(stride, n - t0);
        keys.packed.resize(keys.packed.size() + static_cast<size_t>(cell), 0.0f);
        keys.sums.resize(keys.sums.size() + static_cast<size_t>(d), 0.0f);
        float *slots = &keys.packed[keys.packed.size() - cell];
        float *sum = &keys.sums[keys.sums.size() - d];
        std::memcpy(slots, &tokens[t0 * d], sizeof(float) * m * d);  // slot r = key t0 + r
        for (int64_t r = 0; r < m; ++r) {
          for (int64_t x = 0; x < d; ++x) sum[x] += tokens[(t0 + r) * d + x];
        }
        keys.count.push_back(m);
      }
    }
    keys.block_begin.push_back(static_cast<int64_t>(keys.count.size()));
  }
  keys.log_count.resize(keys.count.size());
  for (size_t t = 0; t < keys.count.size(); ++t) keys.log_count[t] = std::log(static_cast<double>(keys.count[t]));
}

void query_block_mass(const SelectProblem &p, const KeySummary &keys, int64_t b, int64_t h, int64_t i,
                      CellDotsFn cell_dots, QueryScratch &scratch, double *mass) {
  std::fill(mass, mass + keys.valid_blocks, 0.0);
  if (p.method == Method::kMeanPool) {
    mean_pool_mass(p, keys, b, h, i, scratch, mass);
  } else {
    antidiagonal_mass(p, keys, b, h, i, cell_dots, scratch, mass);
  }
}

}  // namespace blitz::cpu::select
