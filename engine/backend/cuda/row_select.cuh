#pragma once
// Block-wide selection over a row (.cu files only), shared by top_k and predict_tokens' filters: a radix
// select over 32-bit keys (the key of the k-th largest of n keys, four 8-bit digits at a time, most
// significant first; counts are integers, so the result does not depend on the order the threads add them
// in), a walk in index order that ranks the elements holding one key, and a bitonic sort.
#include <cstdint>

namespace dlm::cuda {

// The key of the k-th ranked element, and how many of the elements holding that key are among the first k
// (the others rank after them).
struct RadixSelection {
  uint32_t key;
  uint32_t remaining;
};

struct RadixSelectShared {
  unsigned int histogram[256];
  RadixSelection selected;
};

// 1 <= k <= n; key_of(i) is the key of element i in [0, n). Every thread of the block calls it, blockDim.x a
// multiple of 32, and every thread gets the result.
template <class KeyOf>
__device__ RadixSelection radix_select(KeyOf key_of, int64_t n, uint32_t k, RadixSelectShared& shared) {
  constexpr unsigned kAllLanes = 0xffffffffu;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int warp = static_cast<int>(threadIdx.x >> 5);
  // After the pass at `shift`, prefix holds the top digits of the selected key and remaining how many of the
  // elements matching that prefix are still to be taken (counting from the largest).
  uint32_t prefix = 0;
  uint32_t mask = 0;
  uint32_t remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = static_cast<int>(threadIdx.x); b < 256; b += static_cast<int>(blockDim.x))
      shared.histogram[b] = 0;
    __syncthreads();
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
      const uint32_t key = key_of(i);
      if ((key & mask) == prefix) atomicAdd(&shared.histogram[(key >> shift) & 255u], 1u);
    }
    __syncthreads();
    if (warp == 0) {
      // Lane l owns digits 255 - 8l down to 248 - 8l; an inclusive scan over lanes counts from the top.
      unsigned int counts[8];
      unsigned int lane_total = 0;
      for (int j = 0; j < 8; ++j) {
        counts[j] = shared.histogram[255 - 8 * lane - j];
        lane_total += counts[j];
      }
      unsigned int inclusive = lane_total;
      for (int offset = 1; offset < 32; offset <<= 1) {
        const unsigned int other = __shfl_up_sync(kAllLanes, inclusive, offset);
        if (lane >= offset) inclusive += other;
      }
      const unsigned int reached = __ballot_sync(kAllLanes, inclusive >= remaining);
      if (lane == __ffs(static_cast<int>(reached)) - 1) {
        unsigned int above = inclusive - lane_total;  // elements with a larger digit
        for (int j = 0; j < 8; ++j) {
          if (above + counts[j] >= remaining) {
            shared.selected = {prefix | (static_cast<uint32_t>(255 - 8 * lane - j) << shift),
                               remaining - above};
            break;
          }
          above += counts[j];
        }
      }
    }
    __syncthreads();
    prefix = shared.selected.key;
    remaining = shared.selected.remaining;
    mask |= 255u << shift;
  }
  return {prefix, remaining};
}

// Walks [0, n) in chunks of blockDim.x indices, in increasing order, calling visit(i, key, tie_rank) for
// each element: tie_rank is how many elements before i hold `tie_key` (the rank of i among them when it holds
// it too). Every thread of the block calls it; warp_counts holds 32 values.
template <class KeyOf, class Visit>
__device__ void walk_with_tie_ranks(KeyOf key_of, int64_t n, uint32_t tie_key, Visit visit,
                                    unsigned int* warp_counts) {
  constexpr unsigned kAllLanes = 0xffffffffu;
  const int lane = static_cast<int>(threadIdx.x & 31u);
  const int warp = static_cast<int>(threadIdx.x >> 5);
  const int warps = static_cast<int>(blockDim.x >> 5);
  uint32_t ties_before = 0;  // ties in earlier chunks
  for (int64_t chunk = 0; chunk < n; chunk += blockDim.x) {
    const int64_t i = chunk + threadIdx.x;
    const uint32_t key = i < n ? key_of(i) : 0u;
    const bool tie = i < n && key == tie_key;
    const uint32_t tie_ballot = __ballot_sync(kAllLanes, tie);
    if (lane == 0) warp_counts[warp] = static_cast<unsigned int>(__popc(tie_ballot));
    __syncthreads();
    uint32_t rank = ties_before + static_cast<uint32_t>(__popc(tie_ballot & ((1u << lane) - 1u)));
    uint32_t chunk_ties = 0;
    for (int w = 0; w < warps; ++w) {
      if (w < warp) rank += warp_counts[w];
      chunk_ties += warp_counts[w];
    }
    if (i < n) visit(i, key, rank);
    ties_before += chunk_ties;
    __syncthreads();  // warp_counts is rewritten by the next chunk
  }
}

// Descending bitonic sort of keys[0, p), p a power of two; every thread of the block calls it.
__device__ inline void bitonic_sort_descending(unsigned long long* keys, int64_t p) {
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

}  // namespace dlm::cuda
