// Reductions over the vocabulary axis of logits [N, V]: one block per row (kernels; the ops are in
// vocab.cpp). predict_tokens follows the samplers' host code instead (samplers/token_rules.cpp), below.
//
// Ranking follows the CPU backend (engine/backend/cpu/vocab.cpp): NaN above every number (the first NaN is
// the argmax, as in torch.argmax), ties to the lower index, -0 equal to +0. Statistics follow torch.softmax:
// a row with NaN or +inf, or of -inf only, gives NaN statistics.
#include <math_constants.h>

#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/core/rng.h"

namespace dlm::cuda {
namespace {

constexpr uint32_t kFullMask = 0xffffffffu;

// ------------------------------------------------------------------------------------------------- argmax

__global__ void argmax_kernel(const float* logits, int64_t rows, int64_t vocab, int32_t* out) {
  __shared__ Best partials[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * vocab;
    Best best = no_best();
    // Each thread sees its indices in increasing order, so a later element replaces the best only by ranking
    // strictly before it.
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      best = better_of(best, Best{x[i], static_cast<int32_t>(i)});
    }
    best = block_reduce(best, BetterOp{}, no_best(), partials);
    if (threadIdx.x == 0) out[row] = best.index;
  }
}

// -------------------------------------------------------------------------------------------- vocab_stats

// The two first-ranked elements; second ranks after first.
struct Top2 {
  Best first;
  Best second;
};

__device__ __forceinline__ Top2 no_top2() {
  return {no_best(), no_best()};
}

__device__ __forceinline__ Top2 shfl_xor(Top2 v, int mask) {
  return {dlm::cuda::shfl_xor(v.first, mask), dlm::cuda::shfl_xor(v.second, mask)};
}

struct Top2Op {
  __device__ __forceinline__ Top2 operator()(Top2 a, Top2 b) const {
    if (ranks_before(b.first.value, b.first.index, a.first.value, a.first.index)) {
      return {b.first, better_of(a.first, b.second)};
    }
    return {a.first, better_of(b.first, a.second)};
  }
};

// With m the max logit, d_i = x_i - m (f32) and Z = sum exp(d_i): p_max = 1 / Z, entropy = log Z - sum
// exp(d_i) d_i / Z, margin = -expm1(second - m) / Z; sums in double, as on the CPU. Two passes: the top two,
// then the sums (the second pass over a row mostly hits L2).
__global__ void vocab_stats_kernel(const float* logits, int64_t rows, int64_t vocab, int32_t* argmax,
                                   float* max_prob, float* entropy, float* margin) {
  __shared__ Top2 top_partials[32];
  __shared__ double sum_partials[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * vocab;
    Top2 top = no_top2();
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const Best candidate{x[i], static_cast<int32_t>(i)};
      if (ranks_before(candidate.value, candidate.index, top.first.value, top.first.index)) {
        top.second = top.first;
        top.first = candidate;
      } else if (ranks_before(candidate.value, candidate.index, top.second.value, top.second.index)) {
        top.second = candidate;
      }
    }
    top = block_reduce(top, Top2Op{}, no_top2(), top_partials);
    // In a row without NaN the runner-up's value is the max of everything but the argmax (-inf when V = 1),
    // as the CPU computes it; with a NaN, m is NaN and every statistic is NaN whatever the runner-up.
    const float m = top.first.value;
    double z = 0.0;
    double weighted = 0.0;  // sum exp(d) d
    for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const float d = __fsub_rn(x[i], m);
      const float e = expf(d);
      z += static_cast<double>(e);
      if (e > 0.0f) weighted += static_cast<double>(e) * static_cast<double>(d);  // skips 0 * -inf
    }
    z = block_reduce(z, SumOp{}, 0.0, sum_partials);
    weighted = block_reduce(weighted, SumOp{}, 0.0, sum_partials);
    if (threadIdx.x == 0) {
      argmax[row] = top.first.index;
      max_prob[row] = static_cast<float>(1.0 / z);
      entropy[row] = static_cast<float>(log(z) - weighted / z);
      margin[row] =
          static_cast<float>(-expm1(static_cast<double>(top.second.value) - static_cast<double>(m)) / z);
    }
  }
}

// -------------------------------------------------------------------------------------------------- top_k
//
// Per row: a radix select over order_key (four 8-bit digits, most significant first) finds the key T of the
// k-th ranked element and how many elements with key T are needed (r); a pass in index order then collects
// every key above T and the first r keys equal to T. Each selected element becomes a unique 64-bit sort key
// (order_key << 32 | ~index: larger values first, then lower indices), and a bitonic sort orders the k keys,
// padded to a power of two P with zeros (below every real key, whose low word ~index is >= 2^31). Up to
// kSharedSortKeys keys sort in shared memory; more sort in a slice of device scratch per block.

constexpr int64_t kSharedSortKeys = 4096;  // 32 KiB of shared memory
constexpr int kTopKThreads = 1024;
constexpr int64_t kScratchBlocks = 64;  // blocks (rows in flight) when sorting in scratch

int64_t padded_keys(int64_t k) {
  int64_t p = 1;
  while (p < k) p <<= 1;
  return p;
}

unsigned int top_k_blocks(int64_t rows, int64_t k) {
  if (padded_keys(k) <= kSharedSortKeys) return row_blocks(rows);
  return static_cast<unsigned int>(rows < kScratchBlocks ? rows : kScratchBlocks);
}

// Descending bitonic sort of keys[0, p), p a power of two; every thread of the block calls it.
__device__ void bitonic_sort_descending(unsigned long long* keys, int64_t p) {
  for (int64_t size = 2; size <= p; size <<= 1) {
    for (int64_t stride = size >> 1; stride > 0; stride >>= 1) {
      for (int64_t t = threadIdx.x; t < p / 2; t += blockDim.x) {
        const int64_t i = 2 * t - (t & (stride - 1));  // (t / stride) * 2 * stride + t % stride
        const int64_t j = i + stride;
        const bool descending = (i & size) == 0;  // the final merge (size == p) is descending everywhere
        const unsigned long long a = keys[i];
        const unsigned long long b = keys[j];
        if (descending ? a < b : a > b) {
          keys[i] = b;
          keys[j] = a;
        }
      }
      __syncthreads();
    }
  }
}

__global__ void top_k_kernel(const float* logits, int64_t rows, int64_t vocab, int64_t k, int64_t p,
                             float* values, int32_t* indices, unsigned long long* scratch) {
  extern __shared__ unsigned long long shared_keys[];
  __shared__ unsigned int histogram[256];
  __shared__ unsigned int warp_counts[32];
  __shared__ unsigned int selected_prefix;
  __shared__ unsigned int selected_remaining;
  __shared__ unsigned int slots_used;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int warp = static_cast<int>(threadIdx.x >> 5);
  const int warps = static_cast<int>(blockDim.x >> 5);
  unsigned long long* keys =
      scratch != nullptr ? scratch + static_cast<int64_t>(blockIdx.x) * p : shared_keys;

  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * vocab;

    // Radix select: after the pass at `shift`, prefix holds the top digits of T and remaining how many of the
    // elements matching that prefix are still to be taken (counting from the largest).
    uint32_t prefix = 0;
    uint32_t mask = 0;
    uint32_t remaining = static_cast<uint32_t>(k);
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int b = static_cast<int>(threadIdx.x); b < 256; b += static_cast<int>(blockDim.x))
        histogram[b] = 0;
      __syncthreads();
      for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
        const uint32_t key = order_key(x[i]);
        if ((key & mask) == prefix) atomicAdd(&histogram[(key >> shift) & 255u], 1u);
      }
      __syncthreads();
      if (warp == 0) {
        // Lane l owns digits 255 - 8l down to 248 - 8l; an inclusive scan over lanes counts from the top.
        unsigned int counts[8];
        unsigned int lane_total = 0;
        for (int j = 0; j < 8; ++j) {
          counts[j] = histogram[255 - 8 * lane - j];
          lane_total += counts[j];
        }
        unsigned int inclusive = lane_total;
        for (int offset = 1; offset < 32; offset <<= 1) {
          const unsigned int other = __shfl_up_sync(kFullMask, inclusive, offset);
          if (lane >= offset) inclusive += other;
        }
        const unsigned int reached = __ballot_sync(kFullMask, inclusive >= remaining);
        if (lane == __ffs(static_cast<int>(reached)) - 1) {
          unsigned int above = inclusive - lane_total;  // elements with a larger digit
          for (int j = 0; j < 8; ++j) {
            if (above + counts[j] >= remaining) {
              selected_prefix = prefix | (static_cast<uint32_t>(255 - 8 * lane - j) << shift);
              selected_remaining = remaining - above;
              break;
            }
            above += counts[j];
          }
        }
      }
      __syncthreads();
      prefix = selected_prefix;
      remaining = selected_remaining;
      mask |= 255u << shift;
    }
    const uint32_t threshold = prefix;  // the k-th ranked key; `remaining` keys equal to it are taken

    // Collect, in index order so that the ties taken are those of the lowest indices.
    if (threadIdx.x == 0) slots_used = 0;
    uint32_t ties_before = 0;  // ties in earlier chunks
    for (int64_t chunk = 0; chunk < vocab; chunk += blockDim.x) {
      const int64_t i = chunk + threadIdx.x;
      const uint32_t key = i < vocab ? order_key(x[i]) : 0u;
      const bool above = i < vocab && key > threshold;
      const bool tie = i < vocab && key == threshold;
      const uint32_t tie_ballot = __ballot_sync(kFullMask, tie);
      if (lane == 0) warp_counts[warp] = static_cast<unsigned int>(__popc(tie_ballot));
      __syncthreads();
      uint32_t rank = ties_before + static_cast<uint32_t>(__popc(tie_ballot & ((1u << lane) - 1u)));
      uint32_t chunk_ties = 0;
      for (int w = 0; w < warps; ++w) {
        if (w < warp) rank += warp_counts[w];
        chunk_ties += warp_counts[w];
      }
      if (above || (tie && rank < remaining)) {
        const unsigned int slot = atomicAdd(&slots_used, 1u);
        keys[slot] =
            (static_cast<unsigned long long>(key) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(i));
      }
      ties_before += chunk_ties;
      __syncthreads();  // warp_counts is rewritten by the next chunk
    }
    for (int64_t j = k + threadIdx.x; j < p; j += blockDim.x) keys[j] = 0ull;
    __syncthreads();

    bitonic_sort_descending(keys, p);

    for (int64_t j = threadIdx.x; j < k; j += blockDim.x) {
      const auto index = static_cast<int32_t>(~static_cast<uint32_t>(keys[j]));
      values[row * k + j] = x[index];  // the stored value itself: -0 stays -0, a NaN keeps its payload
      indices[row * k + j] = index;
    }
    __syncthreads();  // keys and the shared counters are reused by the next row
  }
}

// ---------------------------------------------------------------------------------------- predict_tokens
//
// One block per row, in passes over the row (the later ones mostly hit L2): (1) the draw's winner and the
// score row's two largest values; (2) the softmax sum S; (3) the entropies; for a Categorical draw, (4) each
// thread's mass over a contiguous chunk, scanned across the block, then (5) a walk of each chunk from its
// prefix for the first id whose cumulative mass exceeds u. Everything mirrors samplers/token_rules.cpp: the
// same f32 operations on the logits (no contraction into FMA), float64 probabilities exp(l - max) / S, the
// same Philox draws; only the order of the float64 sums differs.

constexpr int32_t kNoIndex = 0x7fffffff;

__device__ __forceinline__ float minus_infinity() {
  return __uint_as_float(0xff800000u);
}

// The draw and score rows of one rule, element by element.
struct RuleRow {
  const float* x;
  const float* guide;  // null without guidance
  TokenRule rule;

  __device__ __forceinline__ float draw_value(int64_t v) const {
    float l = x[v];
    if (guide != nullptr) l = __fadd_rn(guide[v], __fmul_rn(rule.guidance_scale, __fsub_rn(l, guide[v])));
    if (rule.divide_by_temperature) l = static_cast<float>(static_cast<double>(l) / rule.temperature);
    return v == rule.suppress_before_draw ? minus_infinity() : l;
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

// Bounded so row_threads' 1024 threads always fit the register file.
__global__ void __launch_bounds__(1024)
    predict_tokens_kernel(const float* logits, int64_t rows, int64_t vocab, const TokenRule* rules,
                          TokenPrediction* out) {
  __shared__ Best best_partials[32];
  __shared__ ScoreBest score_partials[32];
  __shared__ TopValues top_partials[32];
  __shared__ double sum_partials[32];
  __shared__ int32_t categorical_token;
  __shared__ int32_t last_possible;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const TokenRule rule = rules[r];
    const RuleRow row{logits + r * vocab,
                      rule.guidance_row >= 0 ? logits + rule.guidance_row * vocab : nullptr, rule};
    const RngStream rng{rule.seed};
    const uint64_t gumbel_base = rule.position * static_cast<uint64_t>(vocab);

    // (1)
    Best arg{minus_infinity(), kNoIndex};
    ScoreBest gumbel{-CUDART_INF, kNoIndex};
    TopValues top{minus_infinity(), minus_infinity()};
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      const float d = row.draw_value(v);
      const auto index = static_cast<int32_t>(v);
      const bool drawable = index != rule.never_drawn;
      if (drawable && !isnan(d)) arg = first_max(arg, Best{d, index});
      if (drawable && rule.draw == TokenDraw::Gumbel) {
        const double u = rng.uniform_double_open(rule.counter, gumbel_base + static_cast<uint64_t>(v));
        const double score = exp(static_cast<double>(d)) / pow(-log(u), rule.temperature);
        if (!isnan(score)) gumbel = better_score(gumbel, ScoreBest{score, index});
      }
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
    arg = block_reduce(arg, FirstMaxOp{}, Best{minus_infinity(), kNoIndex}, best_partials);
    if (rule.draw == TokenDraw::Gumbel) {
      gumbel = block_reduce(gumbel, ScoreBestOp{}, ScoreBest{-CUDART_INF, kNoIndex}, score_partials);
    }
    top = block_reduce(top, TopValuesOp{}, TopValues{minus_infinity(), minus_infinity()}, top_partials);
    const double m = top.first;

    // (2)
    double sum = 0.0;
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      sum += exp(static_cast<double>(row.score_value(v)) - m);
    }
    sum = block_reduce(sum, SumOp{}, 0.0, sum_partials);

    // (3)
    double entropy = 0.0;
    double neg_entropy = 0.0;
    for (int64_t v = threadIdx.x; v < vocab; v += blockDim.x) {
      const double p = exp(static_cast<double>(row.score_value(v)) - m) / sum;
      if (p > 0.0) entropy -= p * log(p);
      neg_entropy += p * log(p + 1e-10);
    }
    entropy = block_reduce(entropy, SumOp{}, 0.0, sum_partials);
    neg_entropy = block_reduce(neg_entropy, SumOp{}, 0.0, sum_partials);

    // (4) and (5)
    if (rule.draw == TokenDraw::Categorical) {
      const int64_t chunk = (vocab + blockDim.x - 1) / blockDim.x;
      const int64_t begin = min(vocab, static_cast<int64_t>(threadIdx.x) * chunk);
      const int64_t end = min(vocab, begin + chunk);
      double mass = 0.0;
      for (int64_t v = begin; v < end; ++v) {
        const double p = exp(static_cast<double>(row.score_value(v)) - m) / sum;
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
      for (int64_t v = begin; v < end; ++v) {
        const double p = exp(static_cast<double>(row.score_value(v)) - m) / sum;
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
        case TokenDraw::Argmax: {
          // std::max_element over the drawable ids keeps a NaN first one: nothing compares above it.
          const int32_t first = rule.never_drawn == 0 && vocab > 1 ? 1 : 0;
          token = isnan(row.draw_value(first)) || arg.index == kNoIndex ? first : arg.index;
          break;
        }
        case TokenDraw::Gumbel:
          token = gumbel.index == kNoIndex ? 0 : gumbel.index;
          break;
        case TokenDraw::Categorical:
          token = categorical_token != kNoIndex ? categorical_token : last_possible;
          break;
      }
      TokenPrediction prediction;
      prediction.token = token;
      prediction.probability = exp(static_cast<double>(row.score_value(token)) - m) / sum;
      // The host ranks probabilities with `>`, which a NaN never passes: with a NaN sum every probability is
      // NaN and its margin stays 0.
      prediction.margin = isnan(sum) ? 0.0
                                     : exp(static_cast<double>(top.first) - m) / sum -
                                           exp(static_cast<double>(top.second) - m) / sum;
      prediction.neg_entropy = neg_entropy;
      prediction.entropy = entropy;
      out[r] = prediction;
    }
    __syncthreads();  // the shared results are rewritten by the next row
  }
}

}  // namespace

cudaError_t launch_argmax(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                          int32_t* out) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  argmax_kernel<<<row_blocks(rows), row_threads(vocab), 0, stream>>>(logits, rows, vocab, out);
  return cudaGetLastError();
}

size_t top_k_scratch_bytes(int64_t rows, int64_t k) {
  const int64_t p = padded_keys(k);
  if (rows == 0 || p <= kSharedSortKeys) return 0;
  return static_cast<size_t>(top_k_blocks(rows, k)) * static_cast<size_t>(p) * sizeof(unsigned long long);
}

cudaError_t launch_top_k(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab, int64_t k,
                         float* values, int32_t* indices, void* scratch) {
  if (rows == 0) return cudaSuccess;
  if (k < 1 || k > vocab) return cudaErrorInvalidValue;
  const int64_t p = padded_keys(k);
  const bool in_shared = p <= kSharedSortKeys;
  if (!in_shared && scratch == nullptr) return cudaErrorInvalidValue;
  const size_t shared_bytes = in_shared ? static_cast<size_t>(p) * sizeof(unsigned long long) : 0;
  top_k_kernel<<<top_k_blocks(rows, k), kTopKThreads, shared_bytes, stream>>>(
      logits, rows, vocab, k, p, values, indices,
      in_shared ? nullptr : static_cast<unsigned long long*>(scratch));
  return cudaGetLastError();
}

cudaError_t launch_vocab_stats(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                               int32_t* argmax, float* max_prob, float* entropy, float* margin) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  vocab_stats_kernel<<<row_blocks(rows), row_threads(vocab), 0, stream>>>(logits, rows, vocab, argmax,
                                                                          max_prob, entropy, margin);
  return cudaGetLastError();
}

cudaError_t launch_predict_tokens(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                                  const TokenRule* rules, TokenPrediction* out) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  predict_tokens_kernel<<<row_blocks(rows), row_threads(vocab), 0, stream>>>(logits, rows, vocab, rules, out);
  return cudaGetLastError();
}

}  // namespace dlm::cuda
