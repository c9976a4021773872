// The cost rule (work_split.h task_tiles via task_key_blocks) against the rule written out with
// TokenMask::classify block by block, and the streaming split (split_scan.h) against
// split_point over the same costs.
#include <algorithm>
#include <random>
#include <vector>

#include "common/split_scan.h"
#include "common/work_split.h"
#include "test_util.h"

using namespace blitz;

namespace {

// Tiles as DESIGN.md states them: every valid sabi entry below the key-block count whose tile
// the token mask does not mask entirely for the block's rows below q_len.
int64_t tiles_by_classify(const uint16_t *row, int64_t width, const SequenceGeometry &seq,
                          const TokenMask &mask, const BlockAxis &qa, const BlockAxis &ka, int64_t i) {
  const int64_t r0 = qa.begin(i), r1 = std::min(qa.end(i), seq.q_len);
  if (r0 >= r1) return 0;
  int64_t tiles = 0;
  for (int64_t c = 0; c < (row ? width : seq.kv_blocks); ++c) {
    const int64_t kb = row ? row[c] : c;
    if (row && (row[c] == kSabiNoBlock || kb >= seq.kv_blocks)) continue;
    if (mask.classify(r0, r1, ka.begin(kb), ka.end(kb)) != kTileAllMasked) ++tiles;
  }
  return tiles;
}

struct Case {
  int64_t seq_q, seq_kv, bq, bkv, q_len, kv_len, pre, next;
  int mode;
};

Case random_case(std::mt19937 &rng) {
  Case c;
  c.bq = 1 + rng() % 40;
  c.bkv = 1 + rng() % 40;
  c.seq_q = rng() % 300;
  c.seq_kv = rng() % 300;
  c.q_len = rng() % 2 ? c.seq_q : rng() % (c.seq_q + 1);
  c.kv_len = rng() % 2 ? c.seq_kv : rng() % (c.seq_kv + 1);
  c.mode = rng() % 5;
  c.pre = (int64_t)(rng() % 400) - 100;
  c.next = (int64_t)(rng() % 400) - 100;
  return c;
}

// A Source over a host array, loading through copies like the device does (stale slot
// contents would show up as wrong counts).
struct ArraySource {
  const std::vector<uint16_t> *sabi = nullptr;
  const Case *c = nullptr;
  std::vector<uint16_t> slot[2];
  int pending[2] = {0, 0};
  int64_t loaded = 0;
  void Prefetch(int s, int64_t offset, int64_t count) {
    CHECK(pending[s] == 0);
    slot[s].assign(sabi->begin() + offset, sabi->begin() + offset + count);
    pending[s] = 1;
    loaded += count;
  }
  PlainRow Acquire(int s) {
    CHECK(pending[s] == 1);
    return PlainRow{slot[s].data()};
  }
  void Release(int s) {
    pending[s] = 0;
    std::fill(slot[s].begin(), slot[s].end(), 0);
  }
  SequenceGeometry Sequence(int64_t) const {
    const int64_t q[1] = {c->q_len}, kv[1] = {c->kv_len};
    return SequenceGeometry::make(0, c->seq_q, c->seq_kv, c->bkv, q, 1, kv, 1);
  }
};

}  // namespace

TEST(task_tiles_equals_classify_rule) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 3000; ++trial) {
    const Case c = random_case(rng);
    const BlockAxis qa = BlockAxis::make(c.seq_q, c.bq), ka = BlockAxis::make(c.seq_kv, c.bkv);
    const int64_t q[1] = {c.q_len}, kv[1] = {c.kv_len};
    const SequenceGeometry seq = SequenceGeometry::make(0, c.seq_q, c.seq_kv, c.bkv, q, 1, kv, 1);
    const TokenMask mask = TokenMask::make(c.mode, seq.q_len, seq.kv_len, c.pre, c.next, nullptr, 0);
    const int64_t width = 1 + rng() % 12;
    std::vector<uint16_t> row(width);
    for (auto &v : row) v = rng() % 5 == 0 ? kSabiNoBlock : rng() % (ka.count + 3);
    // Every row of the sabi is `row`.
    std::vector<uint16_t> rows((size_t)(qa.count * width));
    for (int64_t r = 0; r < qa.count; ++r) std::copy(row.begin(), row.end(), rows.begin() + r * width);
    const SabiShape full{rows.data(), 1, 1, qa.count, width};
    const SabiShape dense{nullptr, 0, 0, 0, 0};
    for (int64_t i = 0; i < qa.count; ++i) {
      CHECK(task_tiles(dense, seq, mask, qa, ka, 0, 0, i) == tiles_by_classify(nullptr, 0, seq, mask, qa, ka, i));
      CHECK(task_tiles(full, seq, mask, qa, ka, 0, 0, i) == tiles_by_classify(row.data(), width, seq, mask, qa, ka, i));
    }
  }
}

TEST(split_boundary_equals_split_point) {
  std::mt19937 rng(12);
  for (int trial = 0; trial < 500; ++trial) {
    const int64_t n = rng() % 60, workers = 1 + rng() % 12;
    std::vector<int64_t> prefix((size_t)n + 1, 0);
    for (int64_t t = 0; t < n; ++t) prefix[t + 1] = prefix[t] + task_cost(rng() % 3 ? rng() % 20 : 0);
    for (int64_t w = 0; w <= workers; ++w) {
      SplitBoundary s = SplitBoundary::make(prefix[n], n, workers, w);
      for (int64_t t = 1; t <= n; ++t) s.feed(prefix[t]);
      CHECK(s.done || n == 0);
      CHECK((s.done ? s.result : n) == split_point(prefix.data(), n, workers, w));
    }
  }
}

TEST(split_scan_equals_split_point_over_task_tiles) {
  std::mt19937 rng(13);
  for (int trial = 0; trial < 400; ++trial) {
    Case c = random_case(rng);
    c.seq_q = 1 + c.seq_q;
    c.seq_kv = 1 + c.seq_kv;
    const BlockAxis qa = BlockAxis::make(c.seq_q, c.bq), ka = BlockAxis::make(c.seq_kv, c.bkv);
    SplitScanShape shape{};
    shape.batch = 1 + rng() % 3;
    shape.heads = 1 + rng() % 3;
    shape.q_blocks = qa.count;
    shape.sabi_batch = rng() % 2 ? 1 : shape.batch;
    shape.sabi_heads = rng() % 2 ? 1 : shape.heads;
    shape.width = 1 + rng() % std::max<int64_t>(1, ka.count);
    shape.seq_q = c.seq_q;
    shape.seq_kv = c.seq_kv;
    shape.block_q = c.bq;
    shape.block_kv = c.bkv;
    shape.mask_mode = c.mode;
    shape.pre_tokens = c.pre;
    shape.next_tokens = c.next;
    shape.chunk = 1 + rng() % 50;  // chunks cut rows anywhere
    std::vector<uint16_t> sabi((size_t)(shape.sabi_batch * shape.sabi_heads * qa.count * shape.width));
    for (auto &v : sabi) v = rng() % 4 == 0 ? kSabiNoBlock : rng() % (ka.count + 2);
    // Reference: split_point over task_tiles' prefix sums.
    const SabiShape view{sabi.data(), shape.sabi_batch, shape.sabi_heads, qa.count, shape.width};
    const int64_t n = shape.batch * shape.heads * qa.count;
    std::vector<int64_t> prefix((size_t)n + 1, 0);
    const int64_t q[1] = {c.q_len}, kv[1] = {c.kv_len};
    const SequenceGeometry seq = SequenceGeometry::make(0, c.seq_q, c.seq_kv, c.bkv, q, 1, kv, 1);
    const TokenMask mask = TokenMask::make(c.mode, seq.q_len, seq.kv_len, c.pre, c.next, nullptr, 0);
    for (int64_t t = 0; t < n; ++t) {
      const TaskIndex x = TaskIndex::decode(t, shape.heads, qa.count);
      prefix[t + 1] = prefix[t] + task_cost(task_tiles(view, seq, mask, qa, ka, x.b, x.h, x.q_block));
    }
    const int64_t workers = 1 + rng() % 10;
    ArraySource src;
    src.sabi = &sabi;
    src.c = &c;
    SplitScan<ArraySource> scan(shape, &src);
    for (int64_t w = 0; w < workers; ++w) {
      int64_t b = -1, e = -1;
      scan.range(workers, w, &b, &e);
      CHECK(b == split_point(prefix.data(), n, workers, w));
      CHECK(e == split_point(prefix.data(), n, workers, w + 1));
      CHECK(src.pending[0] == 0 && src.pending[1] == 0);  // every load waited for
    }
  }
}
