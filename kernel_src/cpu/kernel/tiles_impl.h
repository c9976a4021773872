// The vector paths' tile code, written once against a vector layer L (vec_avx512.h, vec_avx2.h)
// and compiled once per ISA by the file that includes it (tiles_avx512.cpp, tiles_avx2.cpp).
// Everything here is in an anonymous namespace and templated on L, so the copies the ISA files
// instantiate are distinct and never merged by the linker (an AVX2 machine must never run an
// AVX-512 instantiation).
//
// Per task (b, h, query block of `rows` <= block_q rows), D = head_dim, d_pad = D rounded up to
// kDimAlign, kv_pad = block_kv rounded up likewise, L = the layer's fp32 lanes (16 or 8);
// "E" is bf16 where the layer has a bf16 dot product (L::kBf16Dot), fp32 otherwise:
//   q_pack  [block_q][d_pad] E          query rows, zero-padded; read as A (bf16: 32-bit pairs)
//   K slot  [kv_pad/L][d_pad][L] E      (bf16: [kv_pad/L][d_pad/2][L][2]) L keys per vector
//   V slot  [d_pad/L][kv_pad][L] E      (bf16: [kv_pad/2][d_pad/L][L][2]) keys in a row, per lane group
//   scores  [chunk_rows][kv_pad] fp32   one chunk of rows at a time, so S and P stay in L1/L2
//   probs   [chunk_rows][kv_pad] E      P, rounded to the input dtype (bf16 / fp16 / fp32)
//   acc     [block_q][d_pad] fp32       running numerators; one OnlineSoftmaxRow per row
// Packed K/V blocks live in a per-thread direct-mapped cache tagged by (b, kv head, key block),
// so a block is packed once per thread and reused by every query block of the thread's range
// that selects it (tasks are ordered so a range walks the query blocks of one head in turn).
//
// fp16 is converted to fp32 and multiplied in fp32 (bf16's 8-bit mantissa would lose fp16's
// precision); where the layer has no bf16 dot product (AVX2), bf16 is widened to fp32 while
// packing (a 16-bit shift) and multiplied by FMA too.
#pragma once

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/online_softmax.h"
#include "kernel/amx_gemm.h"
#include "kernel/attention_plan.h"
#include "kernel/micro_gemm.h"

namespace blitz::cpu {
namespace {

constexpr int64_t kDimAlign = 32;       // d_pad / kv_pad multiple: 16-lane groups of bf16 pairs, AMX's 32-key tiles
// Query rows whose S / P are live at once. The vector products keep S in L1 with about 16,
// rounded up to whole micro-kernel row blocks (AVX2's 6-row kernel: 18 = 3 x 6, where 16 left a
// 4-row tail in every chunk: 2-4% less time dense on AVX2); AMX takes 32, two row tiles, so
// every K / V tile it reads from L2 feeds two products (amx_gemm.h).
constexpr int64_t kRowChunk = 16;
constexpr int64_t kRowChunkAmx = 2 * amx::kTileRows;
constexpr size_t kKvCacheBudget = 32u << 20;  // bytes of packed K/V blocks per thread
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

struct Exp2F {
  float operator()(float x) const { return std::exp2(x); }
};
struct Log2F {
  float operator()(float x) const { return std::log2(x); }
};

// Sizes shared by scratch sizing and carving.
struct Dims {
  int64_t bq, bkv, d, d_pad, kv_pad, elem;  // elem: bytes of a packed element
  // Rows of a chunk: row_chunk, and the last chunk of a task takes a remainder shorter than
  // tail_join too (so a 128-row task in 18-row chunks ends with one of 20, not a 2-row chunk
  // that runs latency-bound 2-row micro-kernels).
  int64_t row_chunk, tail_join;
  int64_t stages;  // copies of S / P / factors (AMX's pipeline keeps two)
  int64_t kv_blocks, slots;
  size_t slot_bytes;

  int64_t chunk_rows() const { return row_chunk + tail_join - 1; }  // the most rows a chunk holds

  static Dims make(const AttentionProblem &p, int64_t elem, int64_t row_chunk, int64_t tail_join, int64_t stages) {
    Dims x;
    x.row_chunk = row_chunk;
    x.tail_join = tail_join;
    x.stages = stages;
    x.bq = p.block_q;
    x.bkv = p.block_kv;
    x.d = p.head_dim;
    x.d_pad = round_up(p.head_dim > 0 ? p.head_dim : 1, kDimAlign);
    x.kv_pad = round_up(p.block_kv, kDimAlign);
    x.elem = elem;
    x.kv_blocks = p.block_kv > 0 ? (p.seq_kv + p.block_kv - 1) / p.block_kv : 0;
    x.slot_bytes = align_up((size_t)(x.kv_pad * x.d_pad * x.elem)) * 2;  // K and V
    const int64_t fit = (int64_t)(kKvCacheBudget / x.slot_bytes);
    x.slots = x.kv_blocks < fit ? x.kv_blocks : fit;
    if (x.slots < 1) x.slots = 1;
    return x;
  }
};

struct Scratch {
  char *q_pack;
  float *scores;
  char *probs;
  float *acc;
  float *factors;  // per row of a chunk: the accumulator rescale its softmax found (AMX)
  OnlineSoftmaxRow *rows;
  int64_t *slot_tag;  // which (key head, block) a slot holds, -1 = none
  char *slots;        // slot s: K at slots + s * slot_bytes, V half a slot later

  // The labelled sum workspace_size() relies on.
  static size_t bytes(const Dims &x) {
    return align_up(x.bq * x.d_pad * x.elem)                 // q_pack
           + align_up(x.stages * x.chunk_rows() * x.kv_pad * sizeof(float))  // scores
           + align_up(x.stages * x.chunk_rows() * x.kv_pad * x.elem)         // probs
           + align_up(x.bq * x.d_pad * sizeof(float))        // acc
           + align_up(x.stages * x.chunk_rows() * sizeof(float))  // factors
           + align_up(x.bq * sizeof(OnlineSoftmaxRow))       // rows
           + align_up(x.slots * sizeof(int64_t))             // slot_tag
           + x.slots * x.slot_bytes;                         // K/V slots
  }
  static Scratch carve(const Dims &x, void *memory) {
    ScratchCarver c{static_cast<char *>(memory)};
    Scratch s;
    s.q_pack = c.take<char>(x.bq * x.d_pad * x.elem);
    s.scores = c.take<float>(x.stages * x.chunk_rows() * x.kv_pad);
    s.probs = c.take<char>(x.stages * x.chunk_rows() * x.kv_pad * x.elem);
    s.acc = c.take<float>(x.bq * x.d_pad);
    s.factors = c.take<float>(x.stages * x.chunk_rows());
    s.rows = c.take<OnlineSoftmaxRow>(x.bq);
    s.slot_tag = c.take<int64_t>(x.slots);
    s.slots = c.take<char>(x.slots * x.slot_bytes);
    for (int64_t i = 0; i < x.slots; ++i) s.slot_tag[i] = -1;  // the workspace holds garbage
    return s;
  }
};

// ---- packing: from the caller's strided tensors into the layouts above ----

// Whether layer L has vector bf16 packing (pack_k_pairs16, interleave_rows, copy_xor16).
template <class L, class = void>
struct HasBf16Packing : std::false_type {};
template <class L>
struct HasBf16Packing<L, std::void_t<decltype(&L::pack_k_pairs16)>> : std::true_type {};

// bf16 inputs on a layer with a bf16 dot product: bf16 packed, bf16 pairs along the reduction.
// Whole groups (16 keys, 2 keys x D, a query row, D a multiple of 32) go through the layer's
// vector packing where it has one; edges (partial blocks, padded D) element by element.
template <class L>
struct PackingBf16 {
  using Ops = typename L::Bf16Ops;
  static constexpr int64_t kLanes = L::kLanes;
  static constexpr int64_t kPerStep = 2;  // elements of the reduction per A element
  static constexpr int64_t kElemBytes = 2;
  static constexpr bool kVectorPacking = HasBf16Packing<L>::value;

  static uint16_t at(const char *base, int64_t stride_s, int64_t row, int64_t col, int64_t d) {
    return col < d ? reinterpret_cast<const uint16_t *>(base)[row * stride_s + col] : 0;
  }
  static const uint16_t *row_of(const char *base, int64_t stride_s, int64_t row) {
    return reinterpret_cast<const uint16_t *>(base) + row * stride_s;
  }
  static bool whole_rows(const Dims &x) { return x.d == x.d_pad; }
  // negate: flip every sign (exact), for a negative scale (see TaskRunner::run).
  static void pack_q(const QueryBlockTask &task, int64_t rows, const Dims &x, bool negate, char *dst) {
    uint16_t *out = reinterpret_cast<uint16_t *>(dst);
    const uint16_t sign = negate ? 0x8000 : 0;
    for (int64_t r = 0; r < rows; ++r) {
      if constexpr (kVectorPacking) {
        if (whole_rows(x)) {
          L::copy_xor16(row_of(task.q, task.q_stride_s, task.row_begin + r), x.d, sign, out + r * x.d_pad);
          continue;
        }
      }
      for (int64_t j = 0; j < x.d_pad; ++j)
        out[r * x.d_pad + j] = at(task.q, task.q_stride_s, task.row_begin + r, j, x.d) ^ (j < x.d ? sign : 0);
    }
  }
  // K: vector (g, p) holds keys Lg .. Lg+L-1, each the pair (d = 2p, 2p+1).
  static void pack_k(const QueryBlockTask &task, int64_t c0, int64_t cols, const Dims &x, char *dst) {
    uint32_t *out = reinterpret_cast<uint32_t *>(dst);
    const int64_t pairs = x.d_pad / 2;
    int64_t c = 0;
    if constexpr (kVectorPacking) {
      if (whole_rows(x)) {
        for (; c + kLanes <= cols; c += kLanes)
          L::pack_k_pairs16(row_of(task.k, task.k_stride_s, c0 + c), task.k_stride_s, pairs,
                            out + (c / kLanes) * pairs * kLanes);
      }
    }
    for (; c < x.kv_pad; ++c) {
      uint32_t *col = out + (c / kLanes) * pairs * kLanes + c % kLanes;
      for (int64_t p = 0; p < pairs; ++p) {
        const uint32_t lo = c < cols ? at(task.k, task.k_stride_s, c0 + c, 2 * p, x.d) : 0;
        const uint32_t hi = c < cols ? at(task.k, task.k_stride_s, c0 + c, 2 * p + 1, x.d) : 0;
        col[p * kLanes] = lo | (hi << 16);
      }
    }
  }
  // V: vector (q, g) holds d = Lg .. Lg+L-1, each the pair (key 2q, key 2q+1).
  static void pack_v(const QueryBlockTask &task, int64_t c0, int64_t cols, const Dims &x, char *dst) {
    uint32_t *out = reinterpret_cast<uint32_t *>(dst);
    int64_t q = 0;
    if constexpr (kVectorPacking) {
      if (whole_rows(x)) {
        for (; 2 * q + 1 < cols; ++q)
          L::interleave_rows(row_of(task.v, task.v_stride_s, c0 + 2 * q), row_of(task.v, task.v_stride_s, c0 + 2 * q + 1),
                             x.d, out + q * x.d_pad);
      }
    }
    for (; q < x.kv_pad / 2; ++q) {
      for (int64_t j = 0; j < x.d_pad; ++j) {
        const uint32_t lo = 2 * q < cols ? at(task.v, task.v_stride_s, c0 + 2 * q, j, x.d) : 0;
        const uint32_t hi = 2 * q + 1 < cols ? at(task.v, task.v_stride_s, c0 + 2 * q + 1, j, x.d) : 0;
        out[q * x.d_pad + j] = lo | (hi << 16);  // (q, g = j/L, lane = j%L)
      }
    }
  }
  // L probabilities -> bf16 (round to nearest even, as the NPU's cast).
  static void store_probs(char *dst, int64_t c, typename L::F p) {
    L::store_bf16(reinterpret_cast<uint16_t *>(dst) + c, p);
  }
  static int64_t b_stride_g_k(const Dims &x) { return x.d_pad / 2 * L::kVecBytes; }
  static int64_t b_stride_k_k() { return L::kVecBytes; }
  static int64_t b_stride_g_v(const Dims &) { return L::kVecBytes; }
  static int64_t b_stride_k_v(const Dims &x) { return x.d_pad / kLanes * L::kVecBytes; }
};

// Whether layer L widens L elements to fp32 in one load (load_as_f32) / transposes L x L fp32.
template <class L, class = void>
struct HasF32Loads : std::false_type {};
template <class L>
struct HasF32Loads<L, std::void_t<decltype((void)L::template load_as_f32<ElementType::kFloat32>(nullptr))>>
    : std::true_type {};
template <class L, class = void>
struct HasF32Transpose : std::false_type {};
template <class L>
struct HasF32Transpose<L, std::void_t<decltype(L::transpose(static_cast<typename L::F *>(nullptr)))>>
    : std::true_type {};

// fp32 packed: fp32 inputs, fp16 inputs, and bf16 inputs where the layer has no bf16 dot
// product (load_element widens bf16 by a 16-bit shift, fp16 exactly). Runs of L elements inside
// the head dim (and, for K, groups of L keys inside the block) go through the layer's widening
// loads (and transpose) where it has them; the rest, and the zero padding, element by element.
template <class L, ElementType E>
struct PackingF32 {
  using Ops = typename L::F32Ops;
  using F = typename L::F;
  static constexpr int64_t kLanes = L::kLanes;
  static constexpr int64_t kPerStep = 1;
  static constexpr int64_t kElemBytes = 4;
  static constexpr bool kVectorLoads = HasF32Loads<L>::value;
  static constexpr bool kVectorTranspose = kVectorLoads && HasF32Transpose<L>::value;

  static float at(const char *base, int64_t stride_s, int64_t row, int64_t col, int64_t d) {
    return col < d ? load_element(base, row * stride_s + col, E) : 0.0f;
  }
  // L elements from (row, col) on, widened (only with kVectorLoads; col + L <= d).
  static F load_run(const char *base, int64_t stride_s, int64_t row, int64_t col) {
    return L::template load_as_f32<E>(base + (row * stride_s + col) * (int64_t)element_bytes(E));
  }
  // The head dims the vector loads cover: whole runs of L.
  static int64_t vector_dims(const Dims &x) { return kVectorLoads ? x.d / kLanes * kLanes : 0; }

  static void pack_q(const QueryBlockTask &task, int64_t rows, const Dims &x, bool negate, char *dst) {
    float *out = reinterpret_cast<float *>(dst);
    const float sign = negate ? -1.0f : 1.0f;
    const int64_t dv = vector_dims(x);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t row = task.row_begin + r;
      if constexpr (kVectorLoads) {
        for (int64_t j = 0; j < dv; j += kLanes)
          L::store(out + r * x.d_pad + j, L::mul(load_run(task.q, task.q_stride_s, row, j), L::set1(sign)));
      }
      for (int64_t j = dv; j < x.d_pad; ++j) out[r * x.d_pad + j] = sign * at(task.q, task.q_stride_s, row, j, x.d);
    }
  }
  // K: vector (g, d) holds keys Lg .. Lg+L-1 at dimension d: L keys' runs of L dims, transposed.
  static void pack_k(const QueryBlockTask &task, int64_t c0, int64_t cols, const Dims &x, char *dst) {
    float *out = reinterpret_cast<float *>(dst);
    const int64_t cv = kVectorTranspose ? cols / kLanes * kLanes : 0, dv = kVectorTranspose ? vector_dims(x) : 0;
    if constexpr (kVectorTranspose) {
      for (int64_t c = 0; c < cv; c += kLanes) {
        for (int64_t j = 0; j < dv; j += kLanes) {
          F run[kLanes];
          for (int64_t i = 0; i < kLanes; ++i) run[i] = load_run(task.k, task.k_stride_s, c0 + c + i, j);
          L::transpose(run);
          float *group = out + (c / kLanes) * x.d_pad * kLanes + j * kLanes;
          for (int64_t i = 0; i < kLanes; ++i) L::store(group + i * kLanes, run[i]);
        }
      }
    }
    for (int64_t c = 0; c < x.kv_pad; ++c) {
      float *col = out + (c / kLanes) * x.d_pad * kLanes + c % kLanes;
      for (int64_t j = c < cv ? dv : 0; j < x.d_pad; ++j)
        col[j * kLanes] = c < cols ? at(task.k, task.k_stride_s, c0 + c, j, x.d) : 0.0f;
    }
  }
  // V: vector (k, g) holds d = Lg .. Lg+L-1 of key k, group-major ([d_pad/L][kv_pad][L]), so a
  // micro-kernel's B streams are contiguous. Row-major V had the PV product read B at a stride
  // of d_pad floats (512 B at D = 128), which maps a k-block onto 8 of L1's 64 sets.
  static void pack_v(const QueryBlockTask &task, int64_t c0, int64_t cols, const Dims &x, char *dst) {
    float *out = reinterpret_cast<float *>(dst);
    const int64_t dv = vector_dims(x);
    for (int64_t c = 0; c < x.kv_pad; ++c) {
      int64_t j = 0;
      if constexpr (kVectorLoads) {
        if (c < cols) {
          for (; j < dv; j += kLanes)
            L::store(out + (j / kLanes) * x.kv_pad * kLanes + c * kLanes, load_run(task.v, task.v_stride_s, c0 + c, j));
        }
      }
      for (; j < x.d_pad; ++j)
        out[(j / kLanes) * x.kv_pad * kLanes + c * kLanes + j % kLanes] =
            c < cols ? at(task.v, task.v_stride_s, c0 + c, j, x.d) : 0.0f;
    }
  }
  // L probabilities, rounded to the input dtype and back for 16-bit inputs (as the NPU's P*V
  // takes them), stored as fp32.
  static void store_probs(char *dst, int64_t c, typename L::F p) {
    if constexpr (E == ElementType::kFloat16) p = L::round_fp16(p);
    if constexpr (E == ElementType::kBFloat16) p = L::round_bf16_no_nan(p);
    L::store(reinterpret_cast<float *>(dst) + c, p);
  }
  static int64_t b_stride_g_k(const Dims &x) { return x.d_pad * L::kVecBytes; }
  static int64_t b_stride_k_k() { return L::kVecBytes; }
  static int64_t b_stride_g_v(const Dims &x) { return x.kv_pad * L::kVecBytes; }
  static int64_t b_stride_k_v(const Dims &) { return L::kVecBytes; }
};

template <class L, ElementType E>
using Packing = std::conditional_t<E == ElementType::kBFloat16 && L::kBf16Dot, PackingBf16<L>, PackingF32<L, E>>;

// ---- the softmax of one score row of a tile ----

// Row of scores s[0 .. nl) (nl = columns rounded up to L) -> probabilities and the online
// softmax phases for the row; returns the factor its accumulator must be rescaled by before this
// tile's P*V is added (rescale_acc). Keys outside [lo, hi) (and explicitly masked ones) get
// probability 0; kMasked = false means every key < hi = n is allowed.
template <class L, class Pack, bool kMasked>
float softmax_row(float *s, int64_t nl, int64_t lo, int64_t hi, const uint8_t *mask_row, float scale2,
                  OnlineSoftmaxRow &row, char *probs) {
  using F = typename L::F;
  constexpr int64_t kLanes = L::kLanes;
  F vmax = L::set1(-INFINITY);
  for (int64_t c = 0; c < nl; c += kLanes) {
    F v = L::load(s + c);
    if (kMasked || c + kLanes > hi) {
      v = L::keep_allowed(v, c, lo, hi, mask_row);
      L::store(s + c, v);
    }
    vmax = L::max(vmax, v);
  }
  const float tile_max = L::reduce_max(vmax) * scale2;  // scale2 >= 0: max commutes
  const float factor = row.update_max(tile_max, Exp2F{});
  const F sub = L::set1(row.subtrahend());
  const F vscale = L::set1(scale2);
  F vsum = L::zero();
  for (int64_t c = 0; c < nl; c += kLanes) {
    const F p = L::exp2_nonpositive(L::fmsub(L::load(s + c), vscale, sub));
    vsum = L::add(vsum, p);
    Pack::store_probs(probs, c, p);
  }
  // Keys up to the next multiple of 32 get P = 0: AMX reads P in 16-pair (32-key) tiles.
  for (int64_t c = nl; c % kDimAlign != 0; c += kLanes) Pack::store_probs(probs, c, L::zero());
  row.accumulate(L::reduce_add(vsum));
  return factor;
}

template <class L>
void rescale_acc(float *acc, int64_t d_pad, float factor) {
  if (factor == 1.0f) return;
  const typename L::F f = L::set1(factor);
  for (int64_t j = 0; j < d_pad; j += L::kLanes) L::store(acc + j, L::mul(L::load(acc + j), f));
}

// ---- the task ----

// One chunk of rows of one tile: the unit that goes S = QK^T -> softmax -> O += PV.
struct Chunk {
  int64_t kb, c0, cols, nl;  // key block, its first key, its keys inside the kv length, cols rounded up to L
  int64_t r0, nr;            // rows r0 .. r0 + nr of the task
  TileClass cls;             // kTileAllAllowed or kTileMixed (all-masked chunks are skipped)
};

// The chunks of a task in order: its selected tiles, each cut into row chunks (Dims: row_chunk,
// tail_join).
struct ChunkWalk {
  const AttentionPlan &plan;
  const QueryBlockTask &task;
  int64_t rows, row_chunk, tail_join, lanes;
  SabiRowCursor cursor;
  Chunk tile{};
  bool in_tile = false;

  bool next(Chunk *out) {
    for (;;) {
      if (!in_tile) {
        int64_t kb;
        if (!cursor.next(&kb)) return false;
        const int64_t c0 = plan.kv_axis.begin(kb);
        const int64_t c1 = plan.kv_axis.end(kb) < task.seq.kv_len ? plan.kv_axis.end(kb) : task.seq.kv_len;
        if (task.mask.classify(task.row_begin, task.valid_end, c0, c1) == kTileAllMasked) continue;
        tile = Chunk{kb, c0, c1 - c0, round_up(c1 - c0, lanes), 0, 0, kTileMixed};
        in_tile = true;
      }
      tile.r0 += tile.nr;
      if (tile.r0 >= rows) {
        in_tile = false;
        continue;
      }
      const int64_t left = rows - tile.r0;
      tile.nr = left < row_chunk + tail_join ? left : row_chunk;
      const int64_t i0 = task.row_begin + tile.r0;
      tile.cls = task.mask.classify(i0, i0 + tile.nr, tile.c0, tile.c0 + tile.cols);
      if (tile.cls == kTileAllMasked) continue;
      *out = tile;
      return true;
    }
  }
};

// kAmx: the two products run on AMX tiles (bf16 only, block_q a multiple of 16); everything
// else is shared with the vector products.
template <class L, ElementType E, bool kAmx>
struct TaskRunner {
  using Pack = Packing<L, E>;
  using Ops = typename Pack::Ops;
  using AElem = typename Ops::AElem;
  static constexpr int64_t kLanes = L::kLanes;

  const AttentionPlan &plan;
  const Dims &x;
  const Scratch &s;

  int64_t slot_key(const QueryBlockTask &task, int64_t kb) const {
    return (task.index.b * plan.problem->heads_kv + task.index.h / plan.group) * x.kv_blocks + kb;
  }
  int64_t slot_of(int64_t kb) const { return kb % x.slots; }
  const char *slot_address(int64_t kb) const { return s.slots + slot_of(kb) * x.slot_bytes; }

  // The packed K/V slot for key block kb of this task's (b, kv head), packing it on a miss.
  const char *slot_for(const QueryBlockTask &task, int64_t kb) const {
    const int64_t key = slot_key(task, kb);
    const int64_t slot = slot_of(kb);
    char *k_pack = s.slots + slot * x.slot_bytes;
    if (s.slot_tag[slot] != key) {
      const int64_t c0 = plan.kv_axis.begin(kb);
      const int64_t cols = plan.kv_axis.size(kb);
      Pack::pack_k(task, c0, cols, x, k_pack);
      Pack::pack_v(task, c0, cols, x, k_pack + x.slot_bytes / 2);
      s.slot_tag[slot] = key;
    }
    return k_pack;
  }
  const char *v_of(const char *k_pack) const { return k_pack + x.slot_bytes / 2; }

  void run(const QueryBlockTask &task) const {
    const AttentionProblem &p = *plan.problem;
    const int64_t rows = task.valid_end - task.row_begin;
    if (rows <= 0) {
      write_zero_rows(plan, task, task.row_begin, task.row_end);
      return;
    }
    // Scores in base 2 (exp(x) = exp2(x * log2 e)), with a scale >= 0 so the row max of the
    // raw products is the max of the scaled ones; a negative scale negates Q instead.
    const bool negate_q = p.scale < 0.0f;
    const float scale2 = (negate_q ? -p.scale : p.scale) * kLog2e;
    Pack::pack_q(task, rows, x, negate_q, s.q_pack);
    for (int64_t r = 0; r < rows; ++r) s.rows[r] = OnlineSoftmaxRow::start();
    std::memset(s.acc, 0, sizeof(float) * rows * x.d_pad);
    ChunkWalk walk{plan, task, rows, x.row_chunk, x.tail_join, kLanes, task.blocks(plan)};
    if constexpr (kAmx) {
      run_pipelined(task, walk, scale2);
    } else {
      run_in_order(task, walk, scale2);
    }
    finalize(task, rows);
    write_zero_rows(plan, task, task.valid_end, task.row_end);
  }

  // The softmax of row r of chunk ch, whose scores are in `scores` and whose P goes to `probs`;
  // returns the row's accumulator factor.
  float softmax_chunk_row(const QueryBlockTask &task, const Chunk &ch, int64_t r, float scale2, float *scores,
                          char *probs) const {
    float *srow = scores + r * x.kv_pad;
    char *prow = probs + r * x.kv_pad * x.elem;
    OnlineSoftmaxRow &row = s.rows[ch.r0 + r];
    if (ch.cls == kTileAllAllowed) {
      return softmax_row<L, Pack, false>(srow, ch.nl, 0, ch.cols, nullptr, scale2, row, prow);
    }
    const int64_t i = task.row_begin + ch.r0 + r;
    int64_t lo, hi;
    task.mask.row_interval(i, &lo, &hi);
    lo = clamp_i64(lo - ch.c0, 0, ch.cols);  // relative to the tile; within [0, cols] so
    hi = clamp_i64(hi - ch.c0, 0, ch.cols);  // the 32-bit lane compares cannot wrap
    const uint8_t *mrow = task.mask.mask ? task.mask.mask + i * task.mask.mask_stride_q + ch.c0 : nullptr;
    return softmax_row<L, Pack, true>(srow, ch.nl, lo, hi, mrow, scale2, row, prow);
  }

  // Vector products: each chunk's S, softmax and PV in turn.
  void run_in_order(const QueryBlockTask &task, ChunkWalk &walk, float scale2) const {
    const AElem *q = reinterpret_cast<const AElem *>(s.q_pack);
    // fp32 P overwrites S in place (each score is read before its probability is stored), so
    // a chunk's S / P take half the cache; bf16 P is packed at another stride.
    char *const probs_buf = Pack::kElemBytes == sizeof(float) ? reinterpret_cast<char *>(s.scores) : s.probs;
    const AElem *probs = reinterpret_cast<const AElem *>(probs_buf);
    const int64_t q_steps = (x.d + Pack::kPerStep - 1) / Pack::kPerStep;
    const int64_t a_stride_q = x.d_pad / Pack::kPerStep, a_stride_p = x.kv_pad / Pack::kPerStep;
    const int64_t d_groups = (x.d + kLanes - 1) / kLanes;
    Chunk ch;
    while (walk.next(&ch)) {
      const char *k_pack = slot_for(task, ch.kb);
      gemm::gemm<Ops, /*kAccumulate=*/false>(q + ch.r0 * a_stride_q, a_stride_q, k_pack, Pack::b_stride_g_k(x),
                                             Pack::b_stride_k_k(), q_steps, s.scores, x.kv_pad, ch.nr,
                                             ch.nl / kLanes);
      for (int64_t r = 0; r < ch.nr; ++r) {
        const float factor = softmax_chunk_row(task, ch, r, scale2, s.scores, probs_buf);
        rescale_acc<L>(s.acc + (ch.r0 + r) * x.d_pad, x.d_pad, factor);
      }
      gemm::gemm<Ops, /*kAccumulate=*/true>(probs, a_stride_p, v_of(k_pack), Pack::b_stride_g_v(x),
                                            Pack::b_stride_k_v(x), (ch.cols + Pack::kPerStep - 1) / Pack::kPerStep,
                                            s.acc + ch.r0 * x.d_pad, x.d_pad, ch.nr, d_groups);
    }
  }

  // ---- AMX: the tile unit and the vector units busy at once ----
  //
  // The tile products and the softmax take similar time, and the core can run AMX and AVX-512
  // instructions side by side only if they are close together in the instruction stream (the
  // out-of-order window is a few hundred instructions). So while chunk n's softmax runs row by
  // row, chunk n-1's PV and chunk n+1's QK^T run a step (a few tile products) between rows, with
  // S, P and the rows' rescale factors double-buffered by chunk parity. The rescale of a chunk's
  // accumulators is applied right before its own PV, so the softmax never touches them.

  struct Stage {
    Chunk ch{};
    const char *k_pack = nullptr;
    int64_t buf = 0;  // which half of scores / probs / factors
  };

  float *scores_of(int64_t buf) const { return s.scores + buf * x.chunk_rows() * x.kv_pad; }
  char *probs_of(int64_t buf) const { return s.probs + buf * x.chunk_rows() * x.kv_pad * x.elem; }
  float *factors_of(int64_t buf) const { return s.factors + buf * x.chunk_rows(); }

  amx::Product qk_product(const Stage &st) const {
    const int64_t row_tiles = (st.ch.nr + amx::kTileRows - 1) / amx::kTileRows;
    return amx::Product{s.q_pack + st.ch.r0 * x.d_pad * x.elem, x.d_pad * x.elem, st.k_pack,
                        Pack::b_stride_g_k(x), Pack::b_stride_k_k(), x.d_pad / kDimAlign, scores_of(st.buf),
                        x.kv_pad * (int64_t)sizeof(float), st.ch.nl / kLanes, row_tiles, /*accumulate=*/false};
  }
  amx::Product pv_product(const Stage &st) const {
    const int64_t row_tiles = (st.ch.nr + amx::kTileRows - 1) / amx::kTileRows;
    return amx::Product{probs_of(st.buf), x.kv_pad * x.elem, v_of(st.k_pack), Pack::b_stride_g_v(x),
                        Pack::b_stride_k_v(x), round_up(st.ch.cols, kDimAlign) / kDimAlign,
                        s.acc + st.ch.r0 * x.d_pad, x.d_pad * (int64_t)sizeof(float),
                        (x.d + kLanes - 1) / kLanes, row_tiles, /*accumulate=*/true};
  }
  void rescale_chunk(const Stage &st) const {
    const float *f = factors_of(st.buf);
    for (int64_t r = 0; r < st.ch.nr; ++r) rescale_acc<L>(s.acc + (st.ch.r0 + r) * x.d_pad, x.d_pad, f[r]);
  }
  void pv_now(const Stage &st) const {
    rescale_chunk(st);
    pv_product(st).run();
  }

  void run_pipelined(const QueryBlockTask &task, ChunkWalk &walk, float scale2) const {
    Stage cur{}, next{}, pending{};  // softmax now; QK^T now; PV now
    bool has_cur = walk.next(&cur.ch), has_pending = false;
    if (!has_cur) return;
    cur.k_pack = slot_for(task, cur.ch.kb);
    qk_product(cur).run();
    while (has_cur) {
      const bool has_next = walk.next(&next.ch);
      next.buf = cur.buf ^ 1;
      if (has_next) next.k_pack = slot_address(next.ch.kb);
      // Packing next's block must not evict cur's V, which cur's PV still needs: if they share a
      // slot, next waits until the pipeline has drained.
      const bool overlap_next =
          has_next && !(next.ch.kb != cur.ch.kb && slot_of(next.ch.kb) == slot_of(cur.ch.kb));
      const amx::Product pv = has_pending ? pv_product(pending) : amx::Product{};
      const amx::Product qk = overlap_next ? qk_product(next) : amx::Product{};
      const int64_t pv_steps = has_pending ? pv.steps() : 0, qk_steps = overlap_next ? qk.steps() : 0;
      const int64_t total = pv_steps + qk_steps;
      float *factors = factors_of(cur.buf), *scores = scores_of(cur.buf);
      char *probs = probs_of(cur.buf);
      int64_t r = 0;  // cur's softmax rows done, kept in proportion to the tile steps issued
      const auto softmax_until = [&](int64_t steps_issued) {
        const int64_t target = total > 0 ? cur.ch.nr * steps_issued / total : cur.ch.nr;
        for (; r < target; ++r) factors[r] = softmax_chunk_row(task, cur.ch, r, scale2, scores, probs);
      };
      if (has_pending) rescale_chunk(pending);
      for (int64_t i = 0; i < pv_steps; ++i) {
        pv.run_step(i * pv.step_groups());
        softmax_until(i + 1);
      }
      if (overlap_next) slot_for(task, next.ch.kb);  // after pending's PV: its V may share the slot
      for (int64_t i = 0; i < qk_steps; ++i) {
        qk.run_step(i * qk.step_groups());
        softmax_until(pv_steps + i + 1);
      }
      softmax_until(total);
      pending = cur;
      has_pending = true;
      if (has_next && !overlap_next) {  // drain, then start next
        pv_now(pending);
        has_pending = false;
        slot_for(task, next.ch.kb);
        qk_product(next).run();
      }
      cur = next;
      has_cur = has_next;
    }
    if (has_pending) pv_now(pending);
  }

  void finalize(const QueryBlockTask &task, int64_t rows) const {
    const int64_t es = (int64_t)element_bytes(E);
    for (int64_t r = 0; r < rows; ++r) {
      float inv, lse2;
      s.rows[r].finalize(Log2F{}, &inv, &lse2);
      if (task.lse != nullptr) task.lse[task.row_begin + r] = lse2 * kLn2;  // base 2 -> natural
      const float *acc = s.acc + r * x.d_pad;
      char *out = task.out + (task.row_begin + r) * task.out_stride_s * es;
      const typename L::F vinv = L::set1(inv);
      for (int64_t j = 0; j < x.d; j += kLanes) {
        L::template store_out<E>(out + j * es, x.d - j, L::mul(L::load(acc + j), vinv));
      }
    }
  }
};

template <class L, ElementType E, bool kAmx>
Dims dims_for(const AttentionProblem &p) {
  // AMX takes no longer chunk than its two row tiles; the vector products join a remainder
  // shorter than one micro-kernel row block to the chunk before it.
  constexpr int64_t kMicroRows = Packing<L, E>::Ops::kMicroRows;
  return kAmx ? Dims::make(p, Packing<L, E>::kElemBytes, kRowChunkAmx, /*tail_join=*/1, /*stages=*/2)
              : Dims::make(p, Packing<L, E>::kElemBytes, round_up(kRowChunk, kMicroRows), kMicroRows,
                           /*stages=*/1);
}

template <class L, ElementType E, bool kAmx>
size_t scratch_bytes(const AttentionProblem &p) {
  return Scratch::bytes(dims_for<L, E, kAmx>(p));
}

template <class L, ElementType E, bool kAmx>
void run_tasks(const AttentionPlan &plan, TaskSource &tasks, void *memory) {
  const Dims x = dims_for<L, E, kAmx>(*plan.problem);
  const Scratch s = Scratch::carve(x, memory);
  const TaskRunner<L, E, kAmx> runner{plan, x, s};
  if constexpr (kAmx) amx::begin();
  for (int64_t begin, end; tasks.next(&begin, &end);)
    for (int64_t t = begin; t < end; ++t) runner.run(QueryBlockTask::make(plan, t));
  if constexpr (kAmx) amx::end();
}

// The layer's kernel for `dtype` (fp32, fp16, bf16).
template <class L>
const PathKernel *vector_kernel(ElementType dtype) {
  static const PathKernel bf16{scratch_bytes<L, ElementType::kBFloat16, /*kAmx=*/false>,
                               run_tasks<L, ElementType::kBFloat16, /*kAmx=*/false>};
  static const PathKernel fp16{scratch_bytes<L, ElementType::kFloat16, /*kAmx=*/false>,
                               run_tasks<L, ElementType::kFloat16, /*kAmx=*/false>};
  static const PathKernel fp32{scratch_bytes<L, ElementType::kFloat32, /*kAmx=*/false>,
                               run_tasks<L, ElementType::kFloat32, /*kAmx=*/false>};
  switch (dtype) {
    case ElementType::kBFloat16: return &bf16;
    case ElementType::kFloat16: return &fp16;
    case ElementType::kFloat32: return &fp32;
  }
  return nullptr;
}

}  // namespace
}  // namespace blitz::cpu
