// attention: the launcher of the attention kernels (attention_device.cuh describes them; the op is in
// attention.cpp): the parameters, the grid, and the choice between the tensor-core and the SIMT kernel.
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "engine/backend/cuda/attention_device.cuh"
#include "engine/backend/cuda/attention_kernels.h"

namespace dlm::cuda {
namespace attention_detail {
namespace {

// Raises `kernel`'s dynamic shared memory limit on the current device to `bytes` unless a launch raised it
// that far already: the attribute is a driver call, and every layer of every forward launches these kernels.
cudaError_t allow_shared_bytes(void (*kernel)(Params), size_t bytes) {
  static std::mutex mutex;
  static std::map<std::pair<void (*)(Params), int>, size_t> allowed;
  int device = 0;
  cudaError_t status = cudaGetDevice(&device);
  if (status != cudaSuccess) return status;
  const std::lock_guard<std::mutex> lock(mutex);
  size_t& limit = allowed[{kernel, device}];
  if (bytes <= limit) return cudaSuccess;
  status = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (status == cudaSuccess) limit = bytes;
  return status;
}

}  // namespace

cudaError_t launch_kernel(void (*kernel)(Params), dim3 grid, int threads, size_t shared_bytes,
                          cudaStream_t stream, const Params& p) {
  const cudaError_t status = allow_shared_bytes(kernel, shared_bytes);
  if (status != cudaSuccess) return status;
  kernel<<<grid, threads, shared_bytes, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace attention_detail

cudaError_t launch_attention(cudaStream_t stream, const AttentionProblem& a) {
  if (a.query_rows == 0) return cudaSuccess;
  const bool types_ok = (a.qkv_dtype == DType::F32 || a.qkv_dtype == DType::BF16) &&
                        (a.out_dtype == DType::F32 || a.out_dtype == DType::BF16);
  if (!types_ok || a.head_dim < 1 || a.head_dim > kMaxAttentionHeadDim || a.value_dim < 1 ||
      a.value_dim > kMaxAttentionHeadDim || a.kv_heads < 1 || a.query_heads % a.kv_heads != 0 ||
      a.sequences < 1 || a.query_rows > INT_MAX || a.key_rows > INT_MAX || a.sequences > INT_MAX) {
    return cudaErrorInvalidValue;
  }
  attention_detail::Params p{};
  p.q = a.q;
  p.k = a.k;
  p.v = a.v;
  p.out = a.out;
  p.query_offsets = a.query_offsets;
  p.key_offsets = a.key_offsets;
  p.query_positions = a.query_positions;
  p.key_positions = a.key_positions;
  p.sequences = static_cast<int>(a.sequences);
  p.query_rows = static_cast<int>(a.query_rows);
  p.key_rows = static_cast<int>(a.key_rows);
  p.query_heads = static_cast<int>(a.query_heads);
  p.kv_heads = static_cast<int>(a.kv_heads);
  p.group = static_cast<int>(a.query_heads / a.kv_heads);
  p.heads_per_block = p.group < attention_detail::kVectors ? p.group : attention_detail::kVectors;
  p.head_chunks = (p.group + p.heads_per_block - 1) / p.heads_per_block;
  p.rows_per_tile = attention_detail::kVectors / p.heads_per_block;
  p.head_dim = static_cast<int>(a.head_dim);
  p.value_dim = static_cast<int>(a.value_dim);
  p.scale = a.scale;
  p.softcap = a.softcap;
  p.visibility = a.visibility.kind;
  p.block_size = a.visibility.block_size;
  p.block_size32 = a.visibility.block_size > 0 && a.visibility.block_size <= INT_MAX
                       ? static_cast<int>(a.visibility.block_size)
                       : 0;
  p.window = a.visibility.window;
  p.out_bf16 = a.out_dtype == DType::BF16;

  // Every sequence's tiles but its last are full, so the batch has at most rows / rows_per_tile + sequences
  // tiles, and never more than rows; blocks past the last tile find nothing and return.
  const int64_t tiles = a.query_rows / p.rows_per_tile + a.sequences;
  const int64_t grid_x = tiles < a.query_rows ? tiles : a.query_rows;
  const int64_t grid_y = a.kv_heads * p.head_chunks;
  if (grid_x > INT_MAX || grid_y > 65535) return cudaErrorInvalidConfiguration;
  const dim3 grid(static_cast<unsigned>(grid_x), static_cast<unsigned>(grid_y));

  const bool tensor_cores = a.qkv_dtype == DType::BF16 && a.head_dim % 16 == 0 && a.value_dim % 16 == 0 &&
                            aligned16(a.q) && aligned16(a.k) && aligned16(a.v) && aligned16(a.out);
  if (tensor_cores) return attention_detail::launch_mma(stream, grid, p);
  return attention_detail::launch_simt(stream, grid, p, a.qkv_dtype);
}

}  // namespace dlm::cuda
