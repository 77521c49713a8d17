// linear: the kernel that completes a cuBLASLt product, adding the bias and narrowing the f32 result where
// the epilogue cannot (the op is in linear.cpp).
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/launch.cuh"
#include "engine/backend/cuda/linear_kernels.h"

namespace dlm::cuda {
namespace {

template <DType Bias, DType Out>
__global__ void linear_finish_kernel(const float* acc, const typename Storage<Bias>::T* bias,
                                     typename Storage<Out>::T* out, int64_t m, int64_t n) {
  wait_for_previous_kernel();
  const int64_t total = m * n;
  for (int64_t i = global_thread(); i < total; i += grid_threads()) {
    float value;
    if (acc == nullptr) {  // K == 0: the bias as it is (a -0 stays -0, as the CPU's copy keeps it)
      value = bias != nullptr ? Storage<Bias>::load(bias, i % n) : 0.0f;
    } else {
      value = acc[i];
      if (bias != nullptr) value += Storage<Bias>::load(bias, i % n);
    }
    Storage<Out>::store(out, i, value);
  }
}

template <DType Bias, DType Out>
cudaError_t launch(cudaStream_t stream, const float* acc, const void* bias, void* out, int64_t m, int64_t n) {
  launch_overlapping(linear_finish_kernel<Bias, Out>, element_blocks(m * n), kElementThreads, 0, stream, acc,
                     static_cast<const typename Storage<Bias>::T*>(bias),
                     static_cast<typename Storage<Out>::T*>(out), m, n);
  return cudaGetLastError();
}

template <DType Bias>
cudaError_t launch_out(cudaStream_t stream, const float* acc, const void* bias, void* out, DType out_dtype,
                       int64_t m, int64_t n) {
  switch (out_dtype) {
    case DType::F32:
      return launch<Bias, DType::F32>(stream, acc, bias, out, m, n);
    case DType::BF16:
      return launch<Bias, DType::BF16>(stream, acc, bias, out, m, n);
    case DType::F16:
      return launch<Bias, DType::F16>(stream, acc, bias, out, m, n);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_linear_finish(cudaStream_t stream, const float* acc, const void* bias, DType bias_dtype,
                                 void* out, DType out_dtype, int64_t m, int64_t n) {
  if (m == 0 || n == 0) return cudaSuccess;
  if (bias == nullptr) return launch_out<DType::F32>(stream, acc, nullptr, out, out_dtype, m, n);
  switch (bias_dtype) {
    case DType::F32:
      return launch_out<DType::F32>(stream, acc, bias, out, out_dtype, m, n);
    case DType::BF16:
      return launch_out<DType::BF16>(stream, acc, bias, out, out_dtype, m, n);
    case DType::F16:
      return launch_out<DType::F16>(stream, acc, bias, out, out_dtype, m, n);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace dlm::cuda
