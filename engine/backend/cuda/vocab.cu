// Reductions over the vocabulary axis of logits [N, V]: one block per row (kernels; the ops are in
// vocab.cpp). predict_tokens, which follows the samplers' host code instead, is in predict_tokens.cu.
//
// Ranking follows the CPU backend (engine/backend/cpu/vocab.cpp): NaN above every number (the first NaN is
// the argmax, as in torch.argmax), ties to the lower index, -0 equal to +0. Statistics follow torch.softmax:
// a row with NaN or +inf, or of -inf only, gives NaN statistics.
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"
#include "engine/backend/cuda/row_select.cuh"

namespace dlm::cuda {
namespace {

// ------------------------------------------------------------------------------------------------- argmax

__global__ void argmax_kernel(const float* logits, int64_t rows, int64_t vocab, int32_t* out) {
  wait_for_previous_kernel();
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
  wait_for_previous_kernel();
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

__global__ void top_k_kernel(const float* logits, int64_t rows, int64_t vocab, int64_t k, int64_t p,
                             float* values, int32_t* indices, unsigned long long* scratch) {
  wait_for_previous_kernel();
  extern __shared__ unsigned long long shared_keys[];
  __shared__ RadixSelectShared select_shared;
  __shared__ unsigned int warp_counts[32];
  __shared__ unsigned int slots_used;
  unsigned long long* keys =
      scratch != nullptr ? scratch + static_cast<int64_t>(blockIdx.x) * p : shared_keys;

  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* x = logits + row * vocab;
    const auto key_of = [x](int64_t i) { return order_key(x[i]); };
    const RadixSelection selected = radix_select(key_of, vocab, static_cast<uint32_t>(k), select_shared);
    const uint32_t threshold = selected.key;  // the k-th ranked key; `remaining` keys equal to it are taken
    const uint32_t remaining = selected.remaining;

    // Collect, in index order so that the ties taken are those of the lowest indices.
    if (threadIdx.x == 0) slots_used = 0;
    walk_with_tie_ranks(
        key_of, vocab, threshold,
        [&](int64_t i, uint32_t key, uint32_t tie_rank) {
          if (key > threshold || (key == threshold && tie_rank < remaining)) {
            const unsigned int slot = atomicAdd(&slots_used, 1u);
            keys[slot] = (static_cast<unsigned long long>(key) << 32) |
                         static_cast<uint32_t>(~static_cast<uint32_t>(i));
          }
        },
        warp_counts);
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

}  // namespace

cudaError_t launch_argmax(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                          int32_t* out) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  launch_overlapping(argmax_kernel, row_blocks(rows), row_threads(vocab), 0, stream, logits, rows, vocab,
                     out);
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
  launch_overlapping(top_k_kernel, top_k_blocks(rows, k), kTopKThreads, shared_bytes, stream, logits, rows,
                     vocab, k, p, values, indices,
                     in_shared ? nullptr : static_cast<unsigned long long*>(scratch));
  return cudaGetLastError();
}

cudaError_t launch_vocab_stats(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                               int32_t* argmax, float* max_prob, float* entropy, float* margin) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  launch_overlapping(vocab_stats_kernel, row_blocks(rows), row_threads(vocab), 0, stream, logits, rows, vocab,
                     argmax, max_prob, entropy, margin);
  return cudaGetLastError();
}

}  // namespace dlm::cuda
