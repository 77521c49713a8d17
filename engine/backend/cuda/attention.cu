// attention: the launcher of the attention kernels (attention_device.cuh describes them; the op is in
// attention.cpp): the parameters, the grid, and the choice between the tensor-core and the SIMT kernel.
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "engine/backend/cuda/attention_device.cuh"
#include "engine/backend/cuda/attention_kernels.h"
#include "engine/backend/cuda/launch.cuh"

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
  launch_overlapping(kernel, grid, threads, shared_bytes, stream, p);
  return cudaGetLastError();
}

namespace {

// The query blocks of a problem: heads per block, the rows that go with them, and the grid's x and y.
struct BlockPlan {
  int heads_per_block = 0;
  int head_chunks = 0;
  int rows_per_tile = 0;
  int64_t grid_x = 0;
  int64_t grid_y = 0;
};

bool supported(const AttentionProblem& a) {
  const bool types_ok = (a.qkv_dtype == DType::F32 || a.qkv_dtype == DType::BF16) &&
                        (a.out_dtype == DType::F32 || a.out_dtype == DType::BF16);
  return types_ok && a.head_dim >= 1 && a.head_dim <= kMaxAttentionHeadDim && a.value_dim >= 1 &&
         a.value_dim <= kMaxAttentionHeadDim && a.kv_heads >= 1 && a.query_heads % a.kv_heads == 0 &&
         a.sequences >= 1 && a.query_rows <= INT_MAX && a.key_rows <= INT_MAX && a.sequences <= INT_MAX;
}

BlockPlan plan_blocks(const AttentionProblem& a) {
  BlockPlan plan;
  const int64_t group = a.query_heads / a.kv_heads;
  plan.heads_per_block = static_cast<int>(group < kVectors ? group : kVectors);
  plan.head_chunks = static_cast<int>((group + plan.heads_per_block - 1) / plan.heads_per_block);
  plan.rows_per_tile = kVectors / plan.heads_per_block;
  // Every sequence's tiles but its last are full, so the batch has at most rows / rows_per_tile + sequences
  // tiles, and never more than rows; blocks past the last tile find nothing and return.
  const int64_t tiles = a.query_rows / plan.rows_per_tile + a.sequences;
  plan.grid_x = tiles < a.query_rows ? tiles : a.query_rows;
  plan.grid_y = a.kv_heads * plan.head_chunks;
  return plan;
}

}  // namespace
}  // namespace attention_detail

// A decoding step (a query row or a few per sequence against a long cache) makes few query blocks, each of
// which would walk all its keys alone while most multiprocessors idle. Such calls split every block's key
// tiles into shares, one block each, aiming at about two blocks per multiprocessor; a share holds at least
// one tile of the longest possible sequence, and there are at most kMaxKeySplits.
int attention_key_splits(const AttentionProblem& a) {
  constexpr int64_t kMaxKeySplits = 16;
  if (a.multiprocessors <= 0 || a.query_rows == 0 || !attention_detail::supported(a)) return 1;
  const attention_detail::BlockPlan plan = attention_detail::plan_blocks(a);
  const int64_t blocks = plan.grid_x * plan.grid_y;
  if (blocks >= a.multiprocessors) return 1;
  const int64_t key_tiles = (a.key_rows + attention_detail::kKeys - 1) / attention_detail::kKeys;
  const int64_t wanted = (2 * a.multiprocessors + blocks - 1) / blocks;
  const int64_t splits = std::min({wanted, key_tiles, kMaxKeySplits});
  return splits >= 2 ? static_cast<int>(splits) : 1;
}

size_t attention_split_scratch_bytes(const AttentionProblem& a) {
  const int splits = attention_key_splits(a);
  if (splits == 1) return 0;
  const size_t slots = static_cast<size_t>(splits) * static_cast<size_t>(a.query_rows * a.query_heads);
  return slots * (sizeof(float4) + sizeof(float) * static_cast<size_t>(a.value_dim));
}

cudaError_t launch_attention(cudaStream_t stream, const AttentionProblem& a) {
  if (a.query_rows == 0) return cudaSuccess;
  if (!attention_detail::supported(a)) return cudaErrorInvalidValue;
  const attention_detail::BlockPlan plan = attention_detail::plan_blocks(a);
  if (plan.grid_x > INT_MAX || plan.grid_y > 65535) return cudaErrorInvalidConfiguration;
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
  p.heads_per_block = plan.heads_per_block;
  p.head_chunks = plan.head_chunks;
  p.rows_per_tile = plan.rows_per_tile;
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
  p.splits = a.split_scratch != nullptr ? attention_key_splits(a) : 1;
  if (p.splits > 1) {
    p.split_stats = static_cast<float4*>(a.split_scratch);
    p.split_acc = reinterpret_cast<float*>(p.split_stats +
                                           static_cast<int64_t>(p.splits) * a.query_rows * a.query_heads);
  }
  const dim3 grid(static_cast<unsigned>(plan.grid_x), static_cast<unsigned>(plan.grid_y),
                  static_cast<unsigned>(p.splits));

  const bool tensor_cores = a.qkv_dtype == DType::BF16 && a.head_dim % 16 == 0 && a.value_dim % 16 == 0 &&
                            aligned16(a.q) && aligned16(a.k) && aligned16(a.v) && aligned16(a.out);
  const cudaError_t status = tensor_cores ? attention_detail::launch_mma(stream, grid, p)
                                          : attention_detail::launch_simt(stream, grid, p, a.qkv_dtype);
  if (status != cudaSuccess || p.splits == 1) return status;
  return attention_detail::launch_combine(stream, p);
}

}  // namespace dlm::cuda
