// The sequence lengths and ragged offsets cuDNN's attention reads (attention_kernels.h), derived on the
// device from a batch's offsets, so a run needs no host-to-device copy.
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/backend/cuda/attention_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

constexpr int kThreads = 256;

struct RowElements {
  int32_t q, k, v, out;
};

__global__ void sdpa_lengths(const int32_t* query_offsets, const int32_t* key_offsets, int sequences,
                             RowElements row, SdpaLengthArrays arrays) {
  wait_for_previous_kernel();
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b > sequences) return;
  const int32_t first_query = query_offsets[b];
  const int32_t first_key = key_offsets[b];
  arrays.q_offsets[b] = first_query * row.q;
  arrays.out_offsets[b] = first_query * row.out;
  arrays.k_offsets[b] = first_key * row.k;
  arrays.v_offsets[b] = first_key * row.v;
  if (b == sequences) return;
  arrays.query_rows[b] = query_offsets[b + 1] - first_query;
  arrays.key_rows[b] = key_offsets[b + 1] - first_key;
}

}  // namespace

cudaError_t launch_sdpa_lengths(cudaStream_t stream, const AttentionProblem& problem,
                                const SdpaLengthArrays& arrays) {
  const int sequences = static_cast<int>(problem.sequences);
  const RowElements row{static_cast<int32_t>(problem.query_heads * problem.head_dim),
                        static_cast<int32_t>(problem.kv_heads * problem.head_dim),
                        static_cast<int32_t>(problem.kv_heads * problem.value_dim),
                        static_cast<int32_t>(problem.query_heads * problem.value_dim)};
  const int blocks = (sequences + 1 + kThreads - 1) / kThreads;
  launch_overlapping(sdpa_lengths, blocks, kThreads, 0, stream, problem.query_offsets, problem.key_offsets,
                     sequences, row, arrays);
  return cudaGetLastError();
}

}  // namespace dlm::cuda
