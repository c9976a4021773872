// The selection rule, from one row's estimated block masses to its sabi row. Pure and small, so
// the test's float64 reference (tests/test_select_blocks.py) can state the same rule
// independently:
//   only visible blocks (some query row of the block sees some key of it under the attention's
//   sparse_mode; every block when there is none) are ever kept;
//   anchors A (the visible ones) are always kept; the other visible blocks are ranked by mass, highest first (equal
//   masses: the lower block index first); the row keeps A plus the first n ranked blocks, where
//   n = max(n_top_k, n_mass), n_top_k = max(0, top_k - |A|) (top_k counts the anchors) and
//   n_mass = the fewest ranked blocks with mass(A) + their mass >= mass (0 when mass is off).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "common/platform.h"
#include "select/select_problem.h"

namespace blitz::cpu::select {

// Scratch one worker reuses for every row it chooses (no allocation per row once grown).
struct ChoiceScratch {
  std::vector<uint8_t> kept;
  std::vector<int64_t> ranked;
};

// mass[0 .. valid_blocks): the row's estimated softmax mass per key block (summing to ~1).
// first_token / rows: the query block's token positions, for the diagonal anchor.
// visible: per block, nonzero if the row may keep it (nullptr: every block).
// Writes cols entries to out: the kept blocks ascending, then kSabiNoBlock.
inline void choose_blocks(const double *mass, int64_t valid_blocks, int64_t first_token, int64_t rows,
                          const uint8_t *visible, const SelectProblem &p, ChoiceScratch &scratch, uint16_t *out) {
  std::fill(out, out + p.cols, kSabiNoBlock);
  if (valid_blocks <= 0 || rows <= 0) return;  // nothing this row can attend: an empty row
  auto &kept = scratch.kept;
  kept.assign(static_cast<size_t>(valid_blocks), 0);
  for (int64_t j = 0; j < std::min(p.anchors.first, valid_blocks); ++j) kept[j] = 1;
  if (p.anchors.last) kept[valid_blocks - 1] = 1;
  if (p.anchors.diagonal) {
    const int64_t lo = first_token / p.block_kv, hi = (first_token + rows - 1) / p.block_kv;
    for (int64_t j = lo; j <= std::min(hi, valid_blocks - 1); ++j) kept[j] = 1;
  }
  if (visible != nullptr) {
    for (int64_t j = 0; j < valid_blocks; ++j) kept[j] = kept[j] && visible[j];
  }
  double reached = 0.0;
  int64_t anchored = 0;
  auto &ranked = scratch.ranked;
  ranked.clear();
  for (int64_t j = 0; j < valid_blocks; ++j) {
    if (kept[j]) {
      reached += mass[j];
      ++anchored;
    } else if (visible == nullptr || visible[j]) {
      ranked.push_back(j);
    }
  }
  // Highest mass first; equal masses keep the lower index first (stable on ascending j).
  std::stable_sort(ranked.begin(), ranked.end(), [mass](int64_t a, int64_t b) { return mass[a] > mass[b]; });
  const int64_t candidates = static_cast<int64_t>(ranked.size());
  int64_t take = p.top_k > 0 ? std::min(candidates, std::max<int64_t>(0, p.top_k - anchored)) : 0;
  if (p.mass > 0.0) {
    int64_t n = 0;
    while (n < candidates && reached < p.mass) reached += mass[ranked[n++]];
    take = std::max(take, n);
  }
  for (int64_t n = 0; n < take; ++n) kept[ranked[n]] = 1;
  int64_t w = 0;
  for (int64_t j = 0; j < valid_blocks; ++j) {
    if (kept[j]) out[w++] = static_cast<uint16_t>(j);
  }
}

}  // namespace blitz::cpu::select
