#pragma once
// Kernel launches that may overlap the kernel queued before them (programmatic dependent launch, sm_90 on):
// the GPU may launch a kernel queued through launch_overlapping() before the kernel ahead of it has
// finished (at the earliest once every block of that kernel has passed its own wait, where it is one of
// ours), and the new kernel's blocks wait at wait_for_previous_kernel() until it has finished and its writes
// are visible. This hides the launch where ops are queued one at a time (decoding steps, which no graph
// replays; BENCHMARKS.md has the figures). Every kernel launched through launch_overlapping() calls
// wait_for_previous_kernel() first, before it reads or writes device memory.
#include <cuda_runtime.h>

#include <utility>

namespace dlm::cuda {

// Waits for the kernel queued before this one, then lets the one queued after this one start placing its
// blocks (it waits in turn before touching memory). A no-op for a kernel launched without the overlap.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Queues `kernel` as <<<grid, block, shared_bytes, stream>>> would, with the overlap; a launch error shows in
// cudaGetLastError(), as after <<<...>>>.
template <typename... Params, typename... Args>
void launch_overlapping(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes,
                        cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute overlap{};
  overlap.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  overlap.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = shared_bytes;
  config.stream = stream;
  config.attrs = &overlap;
  config.numAttrs = 1;
  cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace dlm::cuda
