// softmax and log_softmax over the last axis: one block per row, three passes (max, sum, write) as on the CPU
// (kernels; the ops are in softmax.cpp). The max skips NaN, the sum of f32 exponentials runs in double, so a
// row with NaN or +inf, or of -inf only, becomes NaN as in torch. The last pass reads and writes each element
// in one thread after the row's reductions, so out may be x.
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

template <SoftmaxKind kKind>
__global__ void softmax_kernel(const float* x, int64_t rows, int64_t width, float* out) {
  wait_for_previous_kernel();
  __shared__ float max_partials[32];
  __shared__ double sum_partials[32];
  const float neg_inf = __uint_as_float(0xff800000u);
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* in = x + row * width;
    float* result = out + row * width;
    float m = neg_inf;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) m = MaxSkippingNaNOp{}(m, in[c]);
    m = block_reduce(m, MaxSkippingNaNOp{}, neg_inf, max_partials);
    double total = 0.0;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x)
      total += static_cast<double>(expf(__fsub_rn(in[c], m)));
    total = block_reduce(total, SumOp{}, 0.0, sum_partials);
    if (kKind == SoftmaxKind::Probabilities) {
      const auto inv_total = static_cast<float>(1.0 / total);
      for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
        result[c] = __fmul_rn(expf(__fsub_rn(in[c], m)), inv_total);
      }
    } else {
      const auto log_total = static_cast<float>(log(total));
      for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
        result[c] = __fsub_rn(__fsub_rn(in[c], m), log_total);
      }
    }
  }
}

}  // namespace

cudaError_t launch_softmax(cudaStream_t stream, SoftmaxKind kind, const float* x, int64_t rows, int64_t width,
                           float* out) {
  if (rows == 0 || width == 0) return cudaSuccess;
  if (kind == SoftmaxKind::Log) {
    launch_overlapping(softmax_kernel<SoftmaxKind::Log>, row_blocks(rows), row_threads(width), 0, stream, x,
                       rows, width, out);
  } else {
    launch_overlapping(softmax_kernel<SoftmaxKind::Probabilities>, row_blocks(rows), row_threads(width), 0,
                       stream, x, rows, width, out);
  }
  return cudaGetLastError();
}

}  // namespace dlm::cuda
