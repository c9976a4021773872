// kernel_src/common: tile geometry, sabi walk and compaction, work split, token masks and the
// online softmax, each against a brute-force statement of its rule.
#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "common/online_softmax.h"
#include "common/sabi_walk.h"
#include "common/tile_geometry.h"
#include "common/token_mask.h"
#include "common/work_split.h"
#include "test_util.h"

using namespace blitz;

TEST(tile_geometry_tails) {
  const int64_t lengths[] = {0, 1, 127, 128, 129, 511, 512, 513, 8192, 8193};
  for (int64_t block : {64, 128, 512}) {
    for (int64_t len : lengths) {
      const BlockAxis a = BlockAxis::make(len, block);
      int64_t covered = 0;
      for (int64_t i = 0; i < a.count; ++i) {
        CHECK(a.begin(i) == covered);
        CHECK(a.size(i) > 0 && a.size(i) <= block);
        covered = a.end(i);
      }
      CHECK(covered == len);
      CHECK(a.count == (len + block - 1) / block);
      CHECK(a.count == 0 ? a.tail == 0 : a.tail == a.size(a.count - 1));
    }
  }
}

TEST(sequence_geometry_actual_lengths) {
  const int64_t q_lens[] = {100, 3000};
  const int64_t kv_one[] = {700};
  SequenceGeometry g0 = SequenceGeometry::make(0, 1000, 2000, 512, q_lens, 2, kv_one, 1);
  SequenceGeometry g1 = SequenceGeometry::make(1, 1000, 2000, 512, q_lens, 2, kv_one, 1);
  CHECK(g0.q_len == 100 && g1.q_len == 1000);  // clipped to the tensor length
  CHECK(g0.kv_len == 700 && g1.kv_len == 700);  // one entry applies to every batch
  CHECK(g0.kv_blocks == 4 && g0.kv_blocks_valid == 2);
  SequenceGeometry full = SequenceGeometry::make(0, 1000, 2000, 512, nullptr, 0, nullptr, 0);
  CHECK(full.q_len == 1000 && full.kv_len == 2000);
}

static std::vector<int64_t> walk(SabiRowCursor c) {
  std::vector<int64_t> out;
  int64_t kb;
  while (c.next(&kb)) out.push_back(kb);
  return out;
}

TEST(sabi_walk_skips_no_block_and_out_of_range) {
  const uint16_t row[] = {3, 0xFFFF, 0, 7, 9, 0xFFFF, 2, 65534};
  const auto got = walk(SabiRowCursor::over(row, 8, 8));
  CHECK((got == std::vector<int64_t>{3, 0, 7, 2}));
  CHECK(walk(SabiRowCursor::over(row, 0, 8)).empty());
  CHECK(walk(SabiRowCursor::over(nullptr, 8, 8)).empty());
  CHECK((walk(SabiRowCursor::dense(3)) == std::vector<int64_t>{0, 1, 2}));
  CHECK(walk(SabiRowCursor::dense(0)).empty());
}

TEST(sabi_broadcast_rows) {
  // [2, 1, 3, 2]: batch 2, one head broadcast over every head.
  const uint16_t data[] = {0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15};
  SabiShape s{data, 2, 1, 3, 2};
  CHECK(s.row(1, 5, 2) == data + 10);
  CHECK(s.row(0, 0, 1) == data + 2);
  CHECK(s.row(0, 0, 3) == nullptr);  // past sabi_rows
  CHECK(s.row(2, 0, 0) == nullptr);  // past a non-broadcast batch
  SabiShape b{data, 1, 2, 3, 2};     // batch broadcast
  CHECK(b.row(7, 1, 0) == data + 6);
  CHECK(b.row(7, 2, 0) == nullptr);
  SabiShape dense{nullptr, 0, 0, 0, 0};
  CHECK(walk(SabiRowCursor::for_row(dense, 0, 0, 5, 4)).size() == 4);
}

TEST(work_split_contiguous_and_balanced) {
  std::mt19937 rng(2);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = rng() % 200, workers = 1 + rng() % 9;
    std::vector<int64_t> prefix(n + 1, 0);
    int64_t max_cost = 0;
    for (int t = 0; t < n; ++t) {
      const int64_t tiles = (rng() % 4 == 0) ? 0 : rng() % 30;
      const int64_t c = task_cost(tiles);
      max_cost = std::max(max_cost, c);
      prefix[t + 1] = prefix[t] + c;
    }
    int64_t last = 0;
    const double share = (double)prefix[n] / workers;
    for (int w = 0; w < workers; ++w) {
      const int64_t b = split_point(prefix.data(), n, workers, w);
      const int64_t e = split_point(prefix.data(), n, workers, w + 1);
      CHECK(b == last && e >= b);
      last = e;
      CHECK(prefix[e] - prefix[b] <= share + max_cost);
    }
    CHECK(last == n);
  }
}

TEST(work_split_counts_tiles_not_rows) {
  // Causal mask over 4 query blocks x 4 key blocks of equal size: block i computes i + 1 tiles.
  const BlockAxis qa = BlockAxis::make(512, 128), ka = BlockAxis::make(512, 128);
  const SequenceGeometry seq = SequenceGeometry::make(0, 512, 512, 128, nullptr, 0, nullptr, 0);
  const TokenMask causal = TokenMask::make(kSparseCausal, 512, 512, 0, 0, nullptr, 0);
  const SabiShape dense{nullptr, 0, 0, 0, 0};
  for (int i = 0; i < 4; ++i) CHECK(task_tiles(dense, seq, causal, qa, ka, 0, 0, i) == i + 1);
  const uint16_t row[] = {0xFFFF, 2, 9};  // one valid block
  const SabiShape sabi{row, 1, 1, 1, 3};
  const TokenMask none = TokenMask::make(kSparseNone, 512, 512, 0, 0, nullptr, 0);
  CHECK(task_tiles(sabi, seq, none, qa, ka, 0, 3, 0) == 1);
  const SequenceGeometry short_kv = SequenceGeometry::make(0, 512, 512, 128, nullptr, 0,
                                                           (const int64_t[]){200}, 1);
  const TokenMask short_mask = TokenMask::make(kSparseNone, 512, 200, 0, 0, nullptr, 0);
  CHECK(task_tiles(sabi, short_kv, short_mask, qa, ka, 0, 0, 0) == 0);  // block 2 starts at 256 > 200
  CHECK(task_tiles(dense, short_kv, short_mask, qa, ka, 0, 0, 0) == 2);
}

// The rule of DESIGN.md, written out directly.
static bool rule_allows(int mode, int64_t q_len, int64_t kv_len, int64_t pre, int64_t next,
                        const uint8_t *mask, int64_t stride, int64_t i, int64_t j) {
  if (i >= q_len || j >= kv_len) return false;
  const int64_t o = kv_len - q_len;
  switch (mode) {
    case 2: return j <= i;
    case 3: return j <= i + o;
    case 4: return i + o - pre <= j && j <= i + o + next;
    default: return mask == nullptr || mask[i * stride + j] == 0;
  }
}

TEST(token_mask_predicates_and_tile_classes) {
  std::mt19937 rng(3);
  std::vector<uint8_t> mask(64 * 64);
  for (auto &m : mask) m = rng() % 3 == 0;
  for (int trial = 0; trial < 400; ++trial) {
    const int mode = rng() % 5;
    const int64_t q_len = 1 + rng() % 60, kv_len = rng() % 64;
    const int64_t pre = (int64_t)(rng() % 40) - 5, next = (int64_t)(rng() % 40) - 5;
    const bool explicit_mask = mode <= 1 && rng() % 2;
    const uint8_t *m = explicit_mask ? mask.data() : nullptr;
    const TokenMask tm = TokenMask::make(mode, q_len, kv_len, pre, next, m, 64);
    for (int64_t i = 0; i < 64; ++i)
      for (int64_t j = 0; j < 64; ++j)
        CHECK(tm.allowed(i, j) == rule_allows(mode, q_len, kv_len, pre, next, m, 64, i, j));
    for (int rect = 0; rect < 20; ++rect) {
      const int64_t r0 = rng() % 64, r1 = r0 + 1 + rng() % 20, c0 = rng() % 64, c1 = c0 + 1 + rng() % 30;
      int allowed = 0, total = 0;
      for (int64_t i = r0; i < std::min<int64_t>(r1, q_len); ++i)
        for (int64_t j = c0; j < std::min<int64_t>(c1, kv_len); ++j, ++total)
          allowed += rule_allows(mode, q_len, kv_len, pre, next, m, 64, i, j);
      const TileClass c = tm.classify(r0, r1, c0, c1);
      if (c == kTileAllMasked) CHECK(allowed == 0);
      if (c == kTileAllAllowed) CHECK(allowed == total && total > 0);
      // Without an explicit mask the classification is exact for the causal modes.
      if (!explicit_mask && (mode == 2 || mode == 3) && total > 0) {
        CHECK(c == (allowed == 0 ? kTileAllMasked : allowed == total ? kTileAllAllowed : kTileMixed));
      }
    }
  }
}

struct ExpD {
  float operator()(float x) const { return std::exp(x); }
};
struct LogD {
  float operator()(float x) const { return std::log(x); }
};

TEST(online_softmax_matches_two_pass) {
  std::mt19937 rng(4);
  std::normal_distribution<double> normal(0.0, 3.0);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = 1 + rng() % 300, dv = 4;
    std::vector<float> s(n), v(n * dv);
    for (auto &x : s) x = rng() % 5 == 0 ? -INFINITY : (float)normal(rng);
    if (trial % 10 == 0) std::fill(s.begin(), s.end(), -INFINITY);  // an empty row
    for (auto &x : v) x = (float)normal(rng);
    // two passes in double
    double m = -INFINITY;
    for (float x : s) m = std::max(m, (double)x);
    double denom = 0, num[dv] = {0, 0, 0, 0};
    for (int j = 0; j < n; ++j) {
      if (s[j] == -INFINITY) continue;
      const double w = std::exp(s[j] - m);
      denom += w;
      for (int d = 0; d < dv; ++d) num[d] += w * v[j * dv + d];
    }
    // online, in random chunks
    OnlineSoftmaxRow row = OnlineSoftmaxRow::start();
    float acc[dv] = {0, 0, 0, 0};
    for (int begin = 0; begin < n;) {
      const int end = std::min(n, begin + 1 + (int)(rng() % 64));
      float tile_max = -INFINITY;
      for (int j = begin; j < end; ++j) tile_max = std::max(tile_max, s[j]);
      rescale_row(acc, dv, row.update_max(tile_max, ExpD{}));
      float tile_sum = 0;
      for (int j = begin; j < end; ++j) {
        const float w = std::exp(s[j] - row.subtrahend());
        CHECK(!std::isnan(w));
        tile_sum += w;
        for (int d = 0; d < dv; ++d) acc[d] += w * v[j * dv + d];
      }
      row.accumulate(tile_sum);
      begin = end;
    }
    float inv, lse;
    row.finalize(LogD{}, &inv, &lse);
    if (denom == 0) {
      CHECK(inv == 0.0f && lse == -INFINITY);
      continue;
    }
    CHECK(std::fabs(lse - (m + std::log(denom))) < 1e-4 * (1 + std::fabs(lse)));
    for (int d = 0; d < dv; ++d) CHECK(std::fabs(acc[d] * inv - num[d] / denom) < 1e-4);
  }
}
