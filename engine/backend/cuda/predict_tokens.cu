// predict_tokens: each row's TokenRule (engine/ops/token_rule.h) applied next to the logits, one block per
// row, in passes over the row (the later ones mostly hit L2); plain argmax rows too few to fill the device
// take several blocks each (argmax_parts). Everything mirrors samplers/token_rules.cpp:
// the same f32 operations on the logits (no contraction into FMA), float64 probabilities exp(l - max) / S,
// the same Philox draws; only the order of the float64 sums differs.
//
// A row first takes its repetition penalty and division by the temperature (in place, once) and its
// filters, each filter a bound on the draw row that the next ones and the prediction passes apply as they
// read it (RowFilters):
//   top-k  the key of the k-th largest value (radix select); values below it go. A row holding NaN is left
//          as it is, as on the host. Where it keeps at most kKeptIds ids, they are gathered (ascending) in
//          shared memory and every later pass walks them only (RowIds): the others are -inf from then on.
//   top-p  the first id in the host's order (descending value, ties by the lower id) whose mass before it
//          exceeds p, and all after it, go: a bisection over the 32-bit order keys finds the largest key T
//          whose mass from T up exceeds p; the cut falls among T's equal values at the first whose mass
//          before it, A + i * p_T (A the mass above T), exceeds p. Ids of probability 0 come last, as on the
//          host.
//   min-p  ids whose probability is below min_p times the largest go.
// Then: (1) the draw's winner and the score row's two largest values; (2) the softmax sum S; (3) the
// entropies, where the rule wants them; for a Categorical draw, (4) each thread's mass over a contiguous
// chunk, scanned across the block, then (5) a walk of each chunk from its prefix for the first id whose
// cumulative mass exceeds u.
#include <math_constants.h>

#include <algorithm>

#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"
#include "engine/backend/cuda/row_select.cuh"
#include "engine/core/rng.h"

namespace dlm::cuda {
namespace {

constexpr uint32_t kFullMask = 0xffffffffu;
constexpr int32_t kNoIndex = 0x7fffffff;

__device__ __forceinline__ float minus_infinity() {
  return __uint_as_float(0xff800000u);
}

// The host's order as one integer: larger values first, then lower ids (the low word ~id is >= 2^31 for
// every id, so 0 ranks after every element).
__device__ __forceinline__ unsigned long long sort_key(uint32_t key, int64_t v) {
  return (static_cast<unsigned long long>(key) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(v));
}

// The float whose order_key is `key` (+0 for the key of both zeros).
__device__ __forceinline__ float key_value(uint32_t key) {
  return __uint_as_float((key & 0x80000000u) ? (key & 0x7fffffffu) : ~key);
}

// exp(l - m) in float64, exactly 0 without the exponential where l is -inf and m is not: after top-k or
// top-p nearly the whole row is -inf, and the float64 exponential is what a pass over a row costs.
__device__ __forceinline__ double exp_shifted(float l, double m) {
  return l == minus_infinity() && m > -CUDART_INF ? 0.0 : exp(static_cast<double>(l) - m);
}

// The filters computed so far: an id whose value fails one is -inf in the draw row.
struct RowFilters {
  uint32_t key_floor = 0;           // top-k: order_key(l) >= key_floor stays (0 keeps every id)
  unsigned long long sort_cut = 0;  // top-p: sort_key(order_key(l), v) > sort_cut stays
  bool min_p = false;               // min-p: exp(l - min_p_max) / min_p_sum >= min_p_floor stays
  double min_p_max = 0.0;
  double min_p_sum = 0.0;
  double min_p_floor = 0.0;
};

// The ids a pass walks: the whole row, or the ids top-k kept where they are few (ascending, in shared
// memory). Every id outside them is -inf in the draw and score rows, so its softmax terms are exactly 0 and
// no draw picks it (a Gumbel draw whose kept scores are all 0 excepted: the kernel's pass (1) says why).
struct RowIds {
  const int32_t* kept;  // null: every id of [0, count)
  int64_t count;
  __device__ __forceinline__ int64_t operator[](int64_t j) const { return kept != nullptr ? kept[j] : j; }
};

// The draw and score rows of one rule, element by element.
struct RuleRow {
  const float* x;
  const float* guide;  // null without guidance
  TokenRule rule;
  RowFilters filters;
  RowIds ids;

  // The row before the filters.
  __device__ __forceinline__ float base_value(int64_t v) const {
    float l = x[v];
    if (guide != nullptr) l = __fadd_rn(guide[v], __fmul_rn(rule.guidance_scale, __fsub_rn(l, guide[v])));
    if (rule.divide_by_temperature) l = static_cast<float>(static_cast<double>(l) / rule.temperature);
    return v == rule.suppress_before_draw ? minus_infinity() : l;
  }
  __device__ __forceinline__ float draw_value(int64_t v) const {
    const float l = base_value(v);
    const uint32_t key = order_key(l);
    if (key < filters.key_floor || sort_key(key, v) <= filters.sort_cut) return minus_infinity();
    if (filters.min_p &&
        exp(static_cast<double>(l) - filters.min_p_max) / filters.min_p_sum < filters.min_p_floor) {
      return minus_infinity();
    }
    return l;
  }
  __device__ __forceinline__ float score_value(int64_t v) const {
    float l = draw_value(v);
    for (int j = 0; j < kMaxScoreSuppressions; ++j) {
      if (v == rule.suppress_before_scores[j]) l = minus_infinity();
    }
    return l;
  }
};

// A candidate with a float64 key (the Gumbel score) ranked larger first, ties to the lower index, NaN never.
struct ScoreBest {
  double value;
  int32_t index;
};

__device__ __forceinline__ ScoreBest better_score(ScoreBest a, ScoreBest b) {
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

__device__ __forceinline__ ScoreBest shfl_xor(ScoreBest v, int mask) {
  return {__shfl_xor_sync(kFullMask, v.value, mask), __shfl_xor_sync(kFullMask, v.index, mask)};
}

struct ScoreBestOp {
  __device__ __forceinline__ ScoreBest operator()(ScoreBest a, ScoreBest b) const {
    return better_score(a, b);
  }
};

// The first maximum as std::max_element finds it when the first element is a number: NaN never wins.
__device__ __forceinline__ Best first_max(Best a, Best b) {
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

struct FirstMaxOp {
  __device__ __forceinline__ Best operator()(Best a, Best b) const { return first_max(a, b); }
};

// The two largest values of a multiset (a repeated maximum is also the second), NaN skipped.
struct TopValues {
  float first;
  float second;
};

__device__ __forceinline__ TopValues shfl_xor(TopValues v, int mask) {
  return {__shfl_xor_sync(kFullMask, v.first, mask), __shfl_xor_sync(kFullMask, v.second, mask)};
}

struct TopValuesOp {
  __device__ __forceinline__ TopValues operator()(TopValues a, TopValues b) const {
    const float high = fmaxf(a.first, b.first);
    const float low = fminf(a.first, b.first);
    return {high, fmaxf(low, fmaxf(a.second, b.second))};
  }
};

// Inclusive prefix sum over the block (blockDim.x a multiple of 32); `warp_totals` holds 32 values.
__device__ double block_inclusive_scan(double v, double* warp_totals) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int warp = static_cast<int>(threadIdx.x >> 5);
  for (int offset = 1; offset < 32; offset <<= 1) {
    const double other = __shfl_up_sync(kFullMask, v, offset);
    if (lane >= offset) v += other;
  }
  if (lane == 31) warp_totals[warp] = v;
  __syncthreads();
  if (warp == 0) {
    const int warps = static_cast<int>(blockDim.x >> 5);
    double total = lane < warps ? warp_totals[lane] : 0.0;
    for (int offset = 1; offset < 32; offset <<= 1) {
      const double other = __shfl_up_sync(kFullMask, total, offset);
      if (lane >= offset) total += other;
    }
    if (lane < warps) warp_totals[lane] = total;
  }
  __syncthreads();
  const double before = warp == 0 ? 0.0 : warp_totals[warp - 1];
  __syncthreads();  // warp_totals may be reused once every thread has read it
  return v + before;
}

// ----------------------------------------------------------------------------------------------- filters

// The ids with a key in top-p's search range are sorted in shared memory once there are at most this many.
constexpr unsigned int kTopPCandidates = 2048;
// Top-k's kept ids are gathered in shared memory (RowIds) where there are at most this many.
constexpr unsigned int kKeptIds = 2048;

struct FilterShared {
  RadixSelectShared select;
  unsigned int warp_counts[32];
  double sums[32];
  float maxima[32];
  int32_t index;
  unsigned int slots;
  unsigned long long candidates[kTopPCandidates];  // top-p's, as sort keys
  int32_t kept[kKeptIds];                          // top-k's, ascending (RowIds)
};

struct Census {
  double mass;
  unsigned int count;
};

// The draw row's max (NaN skipped, as the host's row_max) and sum of exp(l - max): the host's softmax.
struct Softmax {
  double max;
  double sum;
};

__device__ Softmax draw_softmax(const RuleRow& row, FilterShared& shared) {
  float m = minus_infinity();
  for (int64_t j = threadIdx.x; j < row.ids.count; j += blockDim.x) {
    m = MaxSkippingNaNOp{}(m, row.draw_value(row.ids[j]));
  }
  m = block_reduce(m, MaxSkippingNaNOp{}, minus_infinity(), shared.maxima);
  double sum = 0.0;
  for (int64_t j = threadIdx.x; j < row.ids.count; j += blockDim.x) {
    sum += exp_shifted(row.draw_value(row.ids[j]), m);
  }
  return {static_cast<double>(m), block_reduce(sum, SumOp{}, 0.0, shared.sums)};
}

// Gathers the ids top-k keeps (their key at least key_floor) into shared.kept, ascending, and makes them the
// row's ids, where they are at most kKeptIds: each thread counts, then writes, the kept ids of one
// contiguous stretch of the row, from the count of the stretches before it.
__device__ void gather_kept_ids(RuleRow& row, int64_t vocab, FilterShared& shared) {
  const int64_t stretch = (vocab + blockDim.x - 1) / blockDim.x;
  const int64_t begin = min(vocab, static_cast<int64_t>(threadIdx.x) * stretch);
  const int64_t end = min(vocab, begin + stretch);
  const auto kept = [&](int64_t v) { return order_key(row.draw_value(v)) >= row.filters.key_floor; };
  unsigned int count = 0;
  for (int64_t v = begin; v < end; ++v) count += kept(v);
  // Counts are below 2^53, so the float64 scan is exact.
  const auto through =
      static_cast<unsigned int>(block_inclusive_scan(static_cast<double>(count), shared.sums));
  const unsigned int total = block_reduce(count, SumOp{}, 0u, shared.warp_counts);
  if (total > kKeptIds) return;
  unsigned int at = through - count;
  for (int64_t v = begin; v < end && at < through; ++v) {
    if (kept(v)) shared.kept[at++] = static_cast<int32_t>(v);
  }
  __syncthreads();
  row.ids = RowIds{shared.kept, total};
}

__device__ void filter_top_k(RuleRow& row, int64_t vocab, int64_t k, FilterShared& shared) {
  if (k <= 0 || k >= vocab) return;
  bool nan = false;
  for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) nan = nan || isnan(row.draw_value(v));
  if (__syncthreads_or(nan)) return;
  const RadixSelection kth = radix_select([&](int64_t v) { return order_key(row.draw_value(v)); }, vocab,
                                          static_cast<uint32_t>(k), shared.select);
  row.filters.key_floor = kth.key;
  gather_kept_ids(row, vocab, shared);
}

// Among the ids of one key t, held by `ties` ids (more than fit the candidates): the first in id order
// whose mass before it exceeds p goes, with all after it; the i-th has above + i * p_t before it.
__device__ void cut_among_ties(RuleRow& row, int64_t vocab, double p, uint32_t t, unsigned int ties,
                               double above, double p_t, FilterShared& shared) {
  unsigned int first_cut = static_cast<unsigned int>(fmin((p - above) / p_t, static_cast<double>(ties))) + 1u;
  while (first_cut > 1u && above + (first_cut - 1u) * p_t > p) --first_cut;
  while (first_cut < ties && !(above + first_cut * p_t > p)) ++first_cut;
  if (first_cut >= ties) {  // all of t's ids stay, everything below goes
    row.filters.sort_cut = static_cast<unsigned long long>(t) << 32;
    return;
  }
  if (threadIdx.x == 0) shared.index = kNoIndex;
  walk_with_tie_ranks([&](int64_t v) { return order_key(row.draw_value(v)); }, vocab, t,
                      [&](int64_t v, uint32_t key, uint32_t tie_rank) {
                        if (key == t && tie_rank == first_cut) shared.index = static_cast<int32_t>(v);
                      },
                      shared.warp_counts);
  row.filters.sort_cut = sort_key(t, shared.index);
  __syncthreads();  // shared.index is rewritten by the next row
}

// The search narrows a key range [low, high] holding the cut, keeping mass_from(low) > p and
// mass_from(high + 1) = above <= p (mass_from(k): the mass of the ids whose key is at least k, a block sum):
// first by widening it down from the max, then by halving it in value, until its ids fit the candidates;
// they are then sorted in the host's order and their masses scanned from `above` for the first whose mass
// before it exceeds p.
__device__ void filter_top_p(RuleRow& row, int64_t vocab, double p, FilterShared& shared) {
  if (p >= 1.0) return;
  const Softmax softmax = draw_softmax(row, shared);
  // A NaN or +inf value, or a row of -inf, makes every probability NaN: no mass exceeds p.
  if (isnan(softmax.sum)) return;
  const auto probability = [&](float l) { return exp(static_cast<double>(l) - softmax.max) / softmax.sum; };
  // mass_from(floor), and how many ids have a key in [low, high].
  const auto census = [&](uint32_t floor, uint32_t low, uint32_t high) {
    double mass = 0.0;
    unsigned int count = 0;
    for (int64_t j = threadIdx.x; j < row.ids.count; j += blockDim.x) {
      const float l = row.draw_value(row.ids[j]);
      const uint32_t key = order_key(l);
      if (key >= floor) mass += probability(l);
      count += key >= low && key <= high;
    }
    return Census{block_reduce(mass, SumOp{}, 0.0, shared.sums),
                  block_reduce(count, SumOp{}, 0u, shared.warp_counts)};
  };
  // Down from the max by 1, 2, 4, ... until the mass from there exceeds p (each pass takes the exponent of
  // the few ids above its floor); ids below max - 800 have probability 0, so past that nothing is cut.
  uint32_t high = order_key(static_cast<float>(softmax.max));
  double above = 0.0;
  uint32_t low = 0;
  unsigned int in_range = 0;
  for (double drop = 1.0;; drop *= 2.0) {
    float floor = static_cast<float>(softmax.max - drop);
    if (static_cast<double>(floor) > softmax.max - drop) floor = nextafterf(floor, minus_infinity());
    const uint32_t floor_key = min(order_key(floor), high);
    const Census from_floor = census(floor_key, floor_key, high);
    if (from_floor.mass > p) {
      low = floor_key;
      in_range = from_floor.count;
      break;
    }
    if (drop > 800.0) return;  // the whole mass is at most p: nothing is cut
    high = floor_key - 1;
    above = from_floor.mass;
  }
  while (in_range > kTopPCandidates && low < high) {
    uint32_t middle = order_key(0.5f * key_value(low) + 0.5f * key_value(high));
    middle = min(max(middle, low + 1), high);
    const Census lower = census(middle, low, middle - 1);
    if (lower.mass > p) {
      low = middle;
      in_range -= lower.count;
    } else {
      high = middle - 1;
      above = lower.mass;
      in_range = lower.count;
    }
  }
  if (in_range > kTopPCandidates) {  // one key held by more ids than the candidates hold
    cut_among_ties(row, vocab, p, low, in_range, above, probability(key_value(low)), shared);
    return;
  }

  // The candidates, in the host's order (zeros pad them to a power of two, after every real key).
  if (threadIdx.x == 0) shared.slots = 0;
  __syncthreads();
  for (int64_t j = threadIdx.x; j < row.ids.count; j += blockDim.x) {
    const int64_t v = row.ids[j];
    const uint32_t key = order_key(row.draw_value(v));
    if (key >= low && key <= high) shared.candidates[atomicAdd(&shared.slots, 1u)] = sort_key(key, v);
  }
  unsigned int padded = 1;
  while (padded < in_range) padded <<= 1;
  for (unsigned int j = in_range + threadIdx.x; j < padded; j += blockDim.x) shared.candidates[j] = 0ull;
  __syncthreads();
  bitonic_sort_descending(shared.candidates, padded);

  // Each thread scans a contiguous chunk from the mass before it.
  const unsigned int chunk = (padded + blockDim.x - 1) / blockDim.x;
  const unsigned int begin = min(in_range, threadIdx.x * chunk);
  const unsigned int end = min(in_range, begin + chunk);
  double mass = 0.0;
  for (unsigned int j = begin; j < end; ++j) {
    mass += probability(key_value(static_cast<uint32_t>(shared.candidates[j] >> 32)));
  }
  if (threadIdx.x == 0) shared.index = kNoIndex;
  mass = above + block_inclusive_scan(mass, shared.sums) - mass;  // the mass before the chunk
  for (unsigned int j = begin; j < end; ++j) {
    if (mass > p) {
      atomicMin(&shared.index, static_cast<int32_t>(j));
      break;
    }
    mass += probability(key_value(static_cast<uint32_t>(shared.candidates[j] >> 32)));
  }
  __syncthreads();
  // Without a cut among the candidates (their scanned mass stayed at p, where the block sums exceeded it),
  // it falls right after them.
  row.filters.sort_cut =
      shared.index == kNoIndex ? static_cast<unsigned long long>(low) << 32 : shared.candidates[shared.index];
  __syncthreads();  // the shared candidates and index are rewritten by the next row
}

__device__ void filter_min_p(RuleRow& row, int64_t vocab, double min_p, FilterShared& shared) {
  if (min_p <= 0.0) return;
  const Softmax softmax = draw_softmax(row, shared);
  // The host's largest probability is exp(0) / sum; with a NaN sum the floor is NaN and nothing goes.
  row.filters.min_p = true;
  row.filters.min_p_max = softmax.max;
  row.filters.min_p_sum = softmax.sum;
  row.filters.min_p_floor = min_p * (1.0 / softmax.sum);
}

// The repetition penalty and the division by the temperature, in place, so that the passes over the row
// read it instead of dividing in float64 each time; the rule then divides no more. The penalized ids are
// distinct, so no two threads write one value.
__device__ void scale_in_place(float* x, int64_t vocab, TokenRule& rule, const int32_t* penalized_ids) {
  if (rule.repetition_penalty != 1.0) {
    for (int32_t j = static_cast<int32_t>(threadIdx.x); j < rule.penalized_count; j += blockDim.x) {
      float& l = x[penalized_ids[rule.penalized_begin + j]];
      l = l < 0.0f ? static_cast<float>(static_cast<double>(l) * rule.repetition_penalty)
                   : static_cast<float>(static_cast<double>(l) / rule.repetition_penalty);
    }
    __syncthreads();
  }
  if (rule.divide_by_temperature) {
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      x[v] = static_cast<float>(static_cast<double>(x[v]) / rule.temperature);
    }
    rule.divide_by_temperature = false;
    __syncthreads();
  }
}

__device__ void apply_filters(RuleRow& row, int64_t vocab, FilterShared& shared) {
  const TokenRule& rule = row.rule;
  if (rule.filter_order == FilterOrder::TopPFirst) {
    filter_top_p(row, vocab, rule.top_p, shared);
    filter_top_k(row, vocab, rule.top_k, shared);
  } else {
    filter_top_k(row, vocab, rule.top_k, shared);
    filter_top_p(row, vocab, rule.top_p, shared);
  }
  filter_min_p(row, vocab, rule.min_p, shared);
}

// ------------------------------------------------------------------------------------------ the results

// The Argmax draw's token from the first maximum among the drawable ids: std::max_element over them keeps a
// NaN first one, which nothing compares above.
__device__ int32_t argmax_token(const RuleRow& row, int64_t vocab, Best arg) {
  const int32_t first = row.rule.never_drawn == 0 && vocab > 1 ? 1 : 0;
  return isnan(row.draw_value(first)) || arg.index == kNoIndex ? first : arg.index;
}

// The prediction of `token` from the score row's two largest values and its softmax sum about the largest.
__device__ TokenPrediction prediction_of(const RuleRow& row, int32_t token, TopValues top, double sum,
                                         double neg_entropy, double entropy) {
  const double m = top.first;
  TokenPrediction prediction;
  prediction.token = token;
  prediction.probability = exp_shifted(row.score_value(token), m) / sum;
  // The host ranks probabilities with `>`, which a NaN never passes: with a NaN sum every probability is
  // NaN and its margin stays 0.
  prediction.margin = isnan(sum) ? 0.0
                                 : exp(static_cast<double>(top.first) - m) / sum -
                                       exp(static_cast<double>(top.second) - m) / sum;
  prediction.neg_entropy = neg_entropy;
  prediction.entropy = entropy;
  return prediction;
}

// The draw row's candidates for pass (1) at id v: the first maximum among drawable numbers, and the score
// row's two largest numbers.
__device__ __forceinline__ void take_candidates(const RuleRow& row, int64_t v, Best& arg, TopValues& top) {
  const float d = row.draw_value(v);
  const auto index = static_cast<int32_t>(v);
  if (index != row.rule.never_drawn && !isnan(d)) arg = first_max(arg, Best{d, index});
  const float s = row.score_value(v);
  if (!isnan(s)) {
    if (s > top.first) {
      top.second = top.first;
      top.first = s;
    } else if (s > top.second) {
      top.second = s;
    }
  }
}

// ---------------------------------------------------------------------------------------------- the kernel

// Bounded so row_threads' 1024 threads always fit the register file.
__global__ void __launch_bounds__(1024)
    predict_tokens_kernel(float* logits, int64_t rows, int64_t vocab, const TokenRule* rules,
                          const int32_t* penalized_ids, TokenPrediction* out) {
  wait_for_previous_kernel();
  __shared__ FilterShared filter_shared;
  __shared__ Best best_partials[32];
  __shared__ ScoreBest score_partials[32];
  __shared__ TopValues top_partials[32];
  __shared__ double sum_partials[32];
  __shared__ int32_t categorical_token;
  __shared__ int32_t last_possible;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    TokenRule rule = rules[r];
    scale_in_place(logits + r * vocab, vocab, rule, penalized_ids);
    RuleRow row{logits + r * vocab, rule.guidance_row >= 0 ? logits + rule.guidance_row * vocab : nullptr,
                rule, RowFilters{}, RowIds{nullptr, vocab}};
    apply_filters(row, vocab, filter_shared);
    const RngStream rng{rule.seed};
    const uint64_t gumbel_base = rule.position * static_cast<uint64_t>(vocab);

    // (1)
    Best arg{minus_infinity(), kNoIndex};
    ScoreBest gumbel{-CUDART_INF, kNoIndex};
    TopValues top{minus_infinity(), minus_infinity()};
    for (int64_t j = threadIdx.x; j < row.ids.count; j += blockDim.x) {
      const int64_t v = row.ids[j];
      take_candidates(row, v, arg, top);
      const auto index = static_cast<int32_t>(v);
      if (index != rule.never_drawn && rule.draw == TokenDraw::Gumbel) {
        // exp(-inf) / (-log u)^T is 0 for every u in (0, 1): filtered ids skip the draw and the exponentials.
        const float d = row.draw_value(v);
        double score = 0.0;
        if (d != minus_infinity()) {
          const double u = rng.uniform_double_open(rule.counter, gumbel_base + static_cast<uint64_t>(v));
          score = exp(static_cast<double>(d)) / pow(-log(u), rule.temperature);
        }
        if (!isnan(score)) gumbel = better_score(gumbel, ScoreBest{score, index});
      }
    }
    arg = block_reduce(arg, FirstMaxOp{}, Best{minus_infinity(), kNoIndex}, best_partials);
    if (rule.draw == TokenDraw::Gumbel) {
      gumbel = block_reduce(gumbel, ScoreBestOp{}, ScoreBest{-CUDART_INF, kNoIndex}, score_partials);
      // The ids outside top-k's gathered ones score 0. Where no gathered id scores more, the host's first
      // maximum is the first drawable id of the row (all score 0 but NaNs, which never win).
      if (row.ids.kept != nullptr && !(gumbel.value > 0.0)) {
        gumbel = ScoreBest{0.0, rule.never_drawn == 0 ? 1 : 0};
      }
    }
    top = block_reduce(top, TopValuesOp{}, TopValues{minus_infinity(), minus_infinity()}, top_partials);
    const double m = top.first;

    // (2)
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < row.ids.count; j += blockDim.x) {
      sum += exp_shifted(row.score_value(row.ids[j]), m);
    }
    sum = block_reduce(sum, SumOp{}, 0.0, sum_partials);

    // (3), where the rule wants the entropies (uniform over the block, so every thread skips it or none)
    double entropy = 0.0;
    double neg_entropy = 0.0;
    if (rule.entropies) {
      for (int64_t j = threadIdx.x; j < row.ids.count; j += blockDim.x) {
        const double p = exp_shifted(row.score_value(row.ids[j]), m) / sum;
        if (p > 0.0) entropy -= p * log(p);
        neg_entropy += p * log(p + 1e-10);
      }
      entropy = block_reduce(entropy, SumOp{}, 0.0, sum_partials);
      neg_entropy = block_reduce(neg_entropy, SumOp{}, 0.0, sum_partials);
    }

    // (4) and (5)
    if (rule.draw == TokenDraw::Categorical) {
      // Each thread walks a contiguous stretch of the row's ids, in id order.
      const int64_t count = row.ids.count;
      const int64_t chunk = (count + blockDim.x - 1) / blockDim.x;
      const int64_t begin = min(count, static_cast<int64_t>(threadIdx.x) * chunk);
      const int64_t end = min(count, begin + chunk);
      double mass = 0.0;
      for (int64_t j = begin; j < end; ++j) {
        const int64_t v = row.ids[j];
        const double p = exp_shifted(row.score_value(v), m) / sum;
        if (v != rule.never_drawn && !(p <= 0.0)) mass += p;
      }
      if (threadIdx.x == 0) {
        categorical_token = kNoIndex;
        last_possible = 0;
      }
      double u = rng.uniform_double_open(rule.counter, rule.position);
      // As the host does: u spans the drawable mass, summed (1 - p[never] would lose digits).
      if (rule.never_drawn >= 0) u *= block_reduce(mass, SumOp{}, 0.0, sum_partials);
      mass = block_inclusive_scan(mass, sum_partials) - mass;  // exclusive: the mass before the chunk
      int32_t crossing = kNoIndex;
      int32_t last = -1;
      for (int64_t j = begin; j < end; ++j) {
        const int64_t v = row.ids[j];
        const double p = exp_shifted(row.score_value(v), m) / sum;
        if (v == rule.never_drawn || p <= 0.0) continue;
        last = static_cast<int32_t>(v);
        mass += p;
        if (crossing == kNoIndex && u < mass) crossing = static_cast<int32_t>(v);
      }
      if (crossing != kNoIndex) atomicMin(&categorical_token, crossing);
      if (last >= 0) atomicMax(&last_possible, last);
      __syncthreads();
    }

    if (threadIdx.x == 0) {
      int32_t token = 0;
      switch (rule.draw) {
        case TokenDraw::Argmax:
          token = argmax_token(row, vocab, arg);
          break;
        case TokenDraw::Gumbel:
          token = gumbel.index == kNoIndex ? 0 : gumbel.index;
          break;
        case TokenDraw::Categorical:
          token = categorical_token != kNoIndex ? categorical_token : last_possible;
          // With a NaN sum every probability is NaN, those of the ids outside top-k's gathered ones too: the
          // host's walk then ends on the row's last drawable id.
          if (categorical_token == kNoIndex && row.ids.kept != nullptr && isnan(sum)) {
            token = static_cast<int32_t>(rule.never_drawn == vocab - 1 ? vocab - 2 : vocab - 1);
          }
          break;
      }
      out[r] = prediction_of(row, token, top, sum, neg_entropy, entropy);
    }
    __syncthreads();  // the shared results are rewritten by the next row
  }
}

// ------------------------------------------------------------------- plain argmax rows, several blocks each

// The argmax_parts split (launch_predict_argmax_parts): each row's ids in `parts` contiguous ranges, one
// block each. The first kernel finds each range's candidates (pass (1)); the second combines a row's
// candidates in every block, sums its range's softmax terms (pass (2)), and the row's last block to finish
// adds the ranges' sums in range order and writes the prediction.
constexpr int kPartThreads = 256;
constexpr int64_t kMinPartIds = 2048;  // ids a part takes at least

struct PartScratch {
  Best* arg;           // [rows * parts]
  TopValues* top;      // [rows * parts]
  double* sum;         // [rows * parts]
  unsigned int* done;  // [rows]: the row's blocks finished in the second kernel
};

PartScratch part_scratch(void* scratch, int64_t rows, int parts) {
  const auto n = static_cast<size_t>(rows) * static_cast<size_t>(parts);
  char* at = static_cast<char*>(scratch);
  PartScratch s{};
  s.sum = reinterpret_cast<double*>(at);
  s.arg = reinterpret_cast<Best*>(at + n * sizeof(double));
  s.top = reinterpret_cast<TopValues*>(at + n * (sizeof(double) + sizeof(Best)));
  s.done = reinterpret_cast<unsigned int*>(at + n * (sizeof(double) + sizeof(Best) + sizeof(TopValues)));
  return s;
}

__device__ RuleRow plain_row(const float* logits, int64_t vocab, const TokenRule& rule, int64_t r) {
  return RuleRow{logits + r * vocab, rule.guidance_row >= 0 ? logits + rule.guidance_row * vocab : nullptr,
                 rule, RowFilters{}, RowIds{nullptr, vocab}};
}

__global__ void __launch_bounds__(kPartThreads)
    argmax_part_candidates_kernel(const float* logits, int64_t vocab, const TokenRule* rules, int parts,
                                  PartScratch scratch) {
  wait_for_previous_kernel();
  __shared__ Best best_partials[32];
  __shared__ TopValues top_partials[32];
  const int64_t r = blockIdx.y;
  const int64_t slot = r * parts + blockIdx.x;
  const RuleRow row = plain_row(logits, vocab, rules[r], r);
  Best arg{minus_infinity(), kNoIndex};
  TopValues top{minus_infinity(), minus_infinity()};
  const int64_t end = vocab * (blockIdx.x + 1) / parts;
  for (int64_t v = vocab * blockIdx.x / parts + threadIdx.x; v < end; v += blockDim.x) {
    take_candidates(row, v, arg, top);
  }
  arg = block_reduce(arg, FirstMaxOp{}, Best{minus_infinity(), kNoIndex}, best_partials);
  top = block_reduce(top, TopValuesOp{}, TopValues{minus_infinity(), minus_infinity()}, top_partials);
  if (threadIdx.x == 0) {
    scratch.arg[slot] = arg;
    scratch.top[slot] = top;
    if (blockIdx.x == 0) scratch.done[r] = 0;  // the second kernel starts after this one ends
  }
}

__global__ void __launch_bounds__(kPartThreads)
    argmax_part_sums_kernel(const float* logits, int64_t vocab, const TokenRule* rules, int parts,
                            PartScratch scratch, TokenPrediction* out) {
  wait_for_previous_kernel();
  __shared__ Best best_partials[32];
  __shared__ TopValues top_partials[32];
  __shared__ double sum_partials[32];
  __shared__ bool finishes_row;
  const int64_t r = blockIdx.y;
  const RuleRow row = plain_row(logits, vocab, rules[r], r);
  // The row's candidates, combined alike in every block (both reductions are independent of order).
  Best arg{minus_infinity(), kNoIndex};
  TopValues top{minus_infinity(), minus_infinity()};
  for (int q = static_cast<int>(threadIdx.x); q < parts; q += blockDim.x) {
    arg = first_max(arg, scratch.arg[r * parts + q]);
    top = TopValuesOp{}(top, scratch.top[r * parts + q]);
  }
  arg = block_reduce(arg, FirstMaxOp{}, Best{minus_infinity(), kNoIndex}, best_partials);
  top = block_reduce(top, TopValuesOp{}, TopValues{minus_infinity(), minus_infinity()}, top_partials);
  const double m = top.first;
  double sum = 0.0;
  const int64_t end = vocab * (blockIdx.x + 1) / parts;
  for (int64_t v = vocab * blockIdx.x / parts + threadIdx.x; v < end; v += blockDim.x) {
    sum += exp_shifted(row.score_value(v), m);
  }
  sum = block_reduce(sum, SumOp{}, 0.0, sum_partials);
  if (threadIdx.x == 0) {
    scratch.sum[r * parts + blockIdx.x] = sum;
    __threadfence();  // the sum is visible before the count says so
    finishes_row = atomicAdd(&scratch.done[r], 1u) == static_cast<unsigned int>(parts - 1);
  }
  __syncthreads();
  if (!finishes_row || threadIdx.x != 0) return;
  __threadfence();
  double total = 0.0;
  for (int q = 0; q < parts; ++q) total += __ldcg(&scratch.sum[r * parts + q]);
  out[r] = prediction_of(row, argmax_token(row, vocab, arg), top, total, 0.0, 0.0);
}

// A plain argmax rule: pass (1) and (2) alone, on the logits as they are.
bool plain_argmax(const TokenRule& rule, int64_t vocab) {
  return rule.draw == TokenDraw::Argmax && !rule.entropies && !rule.divide_by_temperature &&
         (rule.repetition_penalty == 1.0 || rule.penalized_count == 0) &&
         (rule.top_k <= 0 || rule.top_k >= vocab) && rule.top_p >= 1.0 && rule.min_p <= 0.0;
}

}  // namespace

cudaError_t launch_predict_tokens(cudaStream_t stream, float* logits, int64_t rows, int64_t vocab,
                                  const TokenRule* rules, const int32_t* penalized_ids,
                                  TokenPrediction* out) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  launch_overlapping(predict_tokens_kernel, row_blocks(rows), row_threads(vocab), 0, stream, logits, rows,
                     vocab, rules, penalized_ids, out);
  return cudaGetLastError();
}

int argmax_parts(const TokenRule* rules, int64_t rows, int64_t vocab, int sm_count) {
  if (rows == 0 || vocab == 0 || rows >= sm_count) return 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (!plain_argmax(rules[r], vocab)) return 0;
  }
  // About two blocks a multiprocessor.
  const int64_t wanted = 2 * static_cast<int64_t>(sm_count) / rows;
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, vocab / kMinPartIds)));
}

size_t argmax_parts_scratch_bytes(int64_t rows, int parts) {
  return static_cast<size_t>(rows) *
         (static_cast<size_t>(parts) * (sizeof(double) + sizeof(Best) + sizeof(TopValues)) +
          sizeof(unsigned int));
}

cudaError_t launch_predict_argmax_parts(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                                        const TokenRule* rules, int parts, void* scratch,
                                        TokenPrediction* out) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  const PartScratch s = part_scratch(scratch, rows, parts);
  const dim3 grid(static_cast<unsigned int>(parts), static_cast<unsigned int>(rows));
  launch_overlapping(argmax_part_candidates_kernel, grid, kPartThreads, 0, stream, logits, vocab, rules,
                     parts, s);
  launch_overlapping(argmax_part_sums_kernel, grid, kPartThreads, 0, stream, logits, vocab, rules, parts, s,
                     out);
  return cudaGetLastError();
}

}  // namespace dlm::cuda
