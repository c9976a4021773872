// The scoring methods: for one query block of one query head, the estimated share of its softmax
// mass that falls in each key block (a distribution over the batch's valid key blocks). mean_pool
// runs here one query block at a time; antidiagonal runs all query blocks of a key head at once
// (antidiagonal.h).
//
// mean_pool: a block is summarised by the mean of its tokens; a block whose tokens are not alike
//   (coherence ||sum x||^2 / (n sum ||x||^2) below refine_below; 1 when all tokens are equal) is
//   split into sub-blocks of sub_block tokens, each with its own mean (the sub-block refinement).
//   Query unit u, key unit t: logit scale * mean_u . mean_t + ln(n_t) (a unit of n_t keys holds
//   about n_t times one key's weight); the block's mass is the softmax over all key units summed
//   per block, averaged over the query units weighted by their rows. Under the attention's
//   sparse_mode a query unit's softmax runs over the key units it sees some pair of only; a
//   query unit that sees none adds nothing.
// antidiagonal (XAttention's idea): the block is cut into stride x stride cells; a cell's score
//   is the mean of q . k along its antidiagonal (query row u S + S-1-r with key t S + r, r = 0..S-1,
//   valid pairs only; a cell whose antidiagonal misses every valid pair, possible only when both
//   groups are partial tails, uses the mean over its valid pairs). Logit scale * score + ln(n_t);
//   per query row group a softmax over all key cells, summed per block, averaged over the row
//   groups weighted by their rows.
#pragma once

#include <cstdint>
#include <vector>

#include "select/select_problem.h"

namespace blitz::cpu::select {

// The key side of one (batch, key head), built once and read by every query block.
struct KeySummary {
  int64_t valid_blocks = 0;             // ceil(len_kv / block_kv)
  std::vector<int64_t> block_begin;     // units of block j: [block_begin[j], block_begin[j + 1])
  std::vector<double> log_count;        // per unit: ln(valid tokens)
  std::vector<int64_t> count;           // per unit: valid tokens
  std::vector<int64_t> first;           // per unit: its first key's position in the batch
  std::vector<double> means;            // unit x D
};

// Scratch of one worker, grown on first use.
struct QueryScratch {
  std::vector<float> tokens;      // mean_pool: the query block as float, rows x D
  std::vector<double> sum;        // mean_pool: the block's per-dimension sums of x and x^2, 2 D
  std::vector<double> unit_mean;  // mean_pool: units x D of the query block
  std::vector<int64_t> unit_rows;
  std::vector<double> logits;     // per key unit
};

// mean_pool's key units of (batch b, key head g).
void summarize_keys(const SelectProblem &p, int64_t b, int64_t g, KeySummary &keys);

// mean_pool: mass[0 .. keys.valid_blocks) of query block i of head h in batch b (its rows must be > 0).
void query_block_mass(const SelectProblem &p, const KeySummary &keys, int64_t b, int64_t h, int64_t i,
                      QueryScratch &scratch, double *mass);

}  // namespace blitz::cpu::select
