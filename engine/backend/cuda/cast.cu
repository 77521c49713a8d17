// cast: element conversion between f32, bf16 and f16 (kernels; the op is in cast.cpp).
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

template <DType From, DType To>
__global__ void cast_kernel(const typename Storage<From>::T* x, typename Storage<To>::T* out, int64_t n) {
  wait_for_previous_kernel();
  for (int64_t i = global_thread(); i < n; i += grid_threads())
    Storage<To>::store(out, i, Storage<From>::load(x, i));
}

template <DType From, DType To>
cudaError_t launch(cudaStream_t stream, const void* x, void* out, int64_t n) {
  launch_overlapping(cast_kernel<From, To>, element_blocks(n), kElementThreads, 0, stream,
                     static_cast<const typename Storage<From>::T*>(x),
                     static_cast<typename Storage<To>::T*>(out), n);
  return cudaGetLastError();
}

template <DType From>
cudaError_t launch_to(cudaStream_t stream, const void* x, DType to, void* out, int64_t n) {
  switch (to) {
    case DType::F32:
      return launch<From, DType::F32>(stream, x, out, n);
    case DType::BF16:
      return launch<From, DType::BF16>(stream, x, out, n);
    case DType::F16:
      return launch<From, DType::F16>(stream, x, out, n);
    default:
      return cudaErrorInvalidValue;
  }
}

size_t float_size(DType dtype) {
  return dtype == DType::F32 ? 4 : 2;
}

}  // namespace

cudaError_t launch_cast(cudaStream_t stream, const void* x, DType from, void* out, DType to, int64_t n) {
  if (n == 0) return cudaSuccess;
  if (from == to) {  // the bits as they are, like the CPU backend's memmove (a NaN payload included)
    if (from != DType::F32 && from != DType::BF16 && from != DType::F16) return cudaErrorInvalidValue;
    return cudaMemcpyAsync(out, x, static_cast<size_t>(n) * float_size(from), cudaMemcpyDeviceToDevice,
                           stream);
  }
  switch (from) {
    case DType::F32:
      return launch_to<DType::F32>(stream, x, to, out, n);
    case DType::BF16:
      return launch_to<DType::BF16>(stream, x, to, out, n);
    case DType::F16:
      return launch_to<DType::F16>(stream, x, to, out, n);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace dlm::cuda
