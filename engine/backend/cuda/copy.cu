// The listed device-to-device copies (CopyList): the grid's y picks the copy, its x blocks stride over the
// copy's bytes, 16 at a time where both ends are 16-byte aligned.
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

constexpr int kCopyThreads = 256;

__global__ void copy_list_kernel(const CopyList copies) {
  wait_for_previous_kernel();
  const int c = static_cast<int>(blockIdx.y);
  const auto* source = static_cast<const unsigned char*>(copies.source[c]);
  auto* destination = static_cast<unsigned char*>(copies.destination[c]);
  const auto bytes = static_cast<int64_t>(copies.bytes[c]);
  int64_t done = 0;
  if (reinterpret_cast<uintptr_t>(source) % 16 == 0 && reinterpret_cast<uintptr_t>(destination) % 16 == 0) {
    const int64_t words = bytes / 16;
    const auto* from = reinterpret_cast<const uint4*>(source);
    auto* to = reinterpret_cast<uint4*>(destination);
    for (int64_t i = global_thread(); i < words; i += grid_threads()) to[i] = from[i];
    done = words * 16;
  }
  for (int64_t i = done + global_thread(); i < bytes; i += grid_threads()) destination[i] = source[i];
}

}  // namespace

cudaError_t launch_copy_list(cudaStream_t stream, const CopyList& copies) {
  if (copies.count <= 0) return cudaSuccess;
  if (copies.count > kMaxListedCopies) return cudaErrorInvalidValue;
  size_t largest = 0;
  for (int c = 0; c < copies.count; ++c) largest = copies.bytes[c] > largest ? copies.bytes[c] : largest;
  // Enough blocks for one 16-byte word per thread of the largest copy, at most 1024 per copy.
  const size_t blocks = (largest / 16 + kCopyThreads - 1) / kCopyThreads;
  const dim3 grid(static_cast<unsigned int>(blocks < 1      ? 1
                                            : blocks > 1024 ? 1024
                                                            : blocks),
                  static_cast<unsigned int>(copies.count));
  launch_overlapping(copy_list_kernel, grid, kCopyThreads, 0, stream, copies);
  return cudaGetLastError();
}

}  // namespace dlm::cuda
