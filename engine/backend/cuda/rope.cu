// rope: one block per token (kernels; the op is in rope.cpp). The block first puts cos and sin of the token's
// angles in shared memory, computed as the CPU does (the angle rounded to f32 as HF computes
// position * inv_freq, then cos and sin in double, times attention_factor, rounded to f32), then rotates
// every head's pairs. Each pair is read and written by one thread, so out may be x. x and out are f32 or bf16
// (widened on load, each result rounded once); x's tokens may lie further apart than out's.
#include <algorithm>

#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm::cuda {
namespace {

// Frequencies handled per round of the shared cos/sin table (16 KiB); larger rotary dims take several rounds.
constexpr int kTableFrequencies = 2048;

template <RopeLayout kLayout, DType A>
__global__ void rope_kernel(const typename Storage<A>::T* x, int64_t x_stride, const int32_t* positions,
                            const float* inv_freq, int64_t half, double factor, int64_t tokens, int64_t heads,
                            int64_t head_dim, typename Storage<A>::T* out) {
  __shared__ float cos_table[kTableFrequencies];
  __shared__ float sin_table[kTableFrequencies];
  for (int64_t t = blockIdx.x; t < tokens; t += gridDim.x) {
    const typename Storage<A>::T* in = x + t * x_stride;
    typename Storage<A>::T* result = out + t * heads * head_dim;
    const float position = static_cast<float>(positions[t]);
    for (int64_t first = 0; first < half; first += kTableFrequencies) {
      const int64_t count = half - first < kTableFrequencies ? half - first : kTableFrequencies;
      __syncthreads();  // the previous round's table is no longer read
      for (int64_t i = threadIdx.x; i < count; i += blockDim.x) {
        const double angle = __fmul_rn(position, inv_freq[first + i]);
        cos_table[i] = static_cast<float>(cos(angle) * factor);
        sin_table[i] = static_cast<float>(sin(angle) * factor);
      }
      __syncthreads();
      const int pairs = static_cast<int>(heads * count);  // 32-bit: a 64-bit division costs far more
      const int row_pairs = static_cast<int>(count);
      for (int p = static_cast<int>(threadIdx.x); p < pairs; p += static_cast<int>(blockDim.x)) {
        const int h = p / row_pairs;
        const int j = p - h * row_pairs;
        const int64_t i = first + j;
        const int64_t a_at = h * head_dim + (kLayout == RopeLayout::Interleaved ? 2 * i : i);
        const int64_t b_at = a_at + (kLayout == RopeLayout::Interleaved ? 1 : half);
        const float a = Storage<A>::load(in, a_at);
        const float b = Storage<A>::load(in, b_at);
        const float c = cos_table[j];
        const float s = sin_table[j];
        Storage<A>::store(result, a_at, __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s)));
        Storage<A>::store(result, b_at, __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s)));
      }
    }
    const int64_t rest = head_dim - 2 * half;  // features past rotary_dim pass through
    if (result != in && rest > 0) {
      for (int64_t p = threadIdx.x; p < heads * rest; p += blockDim.x) {
        const int64_t h = p / rest;
        const int64_t at = h * head_dim + 2 * half + (p - h * rest);
        result[at] = in[at];
      }
    }
  }
}

template <RopeLayout kLayout, DType A>
cudaError_t launch(cudaStream_t stream, const void* x, int64_t x_stride, const int32_t* positions,
                   const float* inv_freq, int64_t half, double factor, int64_t tokens, int64_t heads,
                   int64_t head_dim, void* out) {
  // At most 256 threads a token: a block waits for its cos/sin table, so several blocks per multiprocessor
  // keep it busy meanwhile.
  const int threads = std::min(row_threads(heads * head_dim / 2), 256);
  rope_kernel<kLayout, A><<<row_blocks(tokens), threads, 0, stream>>>(
      static_cast<const typename Storage<A>::T*>(x), x_stride, positions, inv_freq, half, factor, tokens,
      heads, head_dim, static_cast<typename Storage<A>::T*>(out));
  return cudaGetLastError();
}

template <DType A>
cudaError_t launch_for_layout(cudaStream_t stream, const void* x, int64_t x_stride, const int32_t* positions,
                              const float* inv_freq, RopeLayout layout, int64_t half, double factor,
                              int64_t tokens, int64_t heads, int64_t head_dim, void* out) {
  if (layout == RopeLayout::Interleaved) {
    return launch<RopeLayout::Interleaved, A>(stream, x, x_stride, positions, inv_freq, half, factor, tokens,
                                              heads, head_dim, out);
  }
  return launch<RopeLayout::HalfSplit, A>(stream, x, x_stride, positions, inv_freq, half, factor, tokens,
                                          heads, head_dim, out);
}

}  // namespace

cudaError_t launch_rope(cudaStream_t stream, const void* x, int64_t x_stride, DType x_dtype,
                        const int32_t* positions, const float* inv_freq, RopeLayout layout,
                        int64_t rotary_dim, float attention_factor, int64_t tokens, int64_t heads,
                        int64_t head_dim, void* out) {
  if (tokens == 0 || heads == 0 || head_dim == 0) return cudaSuccess;
  const int64_t half = rotary_dim / 2;
  const double factor = attention_factor;
  switch (x_dtype) {
    case DType::F32:
      return launch_for_layout<DType::F32>(stream, x, x_stride, positions, inv_freq, layout, half, factor,
                                           tokens, heads, head_dim, out);
    case DType::BF16:
      return launch_for_layout<DType::BF16>(stream, x, x_stride, positions, inv_freq, layout, half, factor,
                                            tokens, heads, head_dim, out);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace dlm::cuda
