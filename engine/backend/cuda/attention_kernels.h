#pragma once
// The launcher of the attention kernels (attention.cu), for CudaBackend::attention (attention.cpp);
// conventions as in cuda_kernels.h (plain pointers, dtype.h and op_types.h only, since the .cu files are
// C++17).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "engine/core/dtype.h"
#include "engine/ops/op_types.h"

namespace dlm::cuda {

// Scaled dot-product attention over a ragged batch, as Backend::attention: q [query_rows, query_heads,
// head_dim], k [key_rows, kv_heads, head_dim], v [key_rows, kv_heads, value_dim], out [query_rows,
// query_heads, value_dim]; q, k and v of one dtype (f32 or bf16), out f32 or bf16; the batch's four i32
// arrays on the device. query_heads is a multiple of kv_heads; head_dim and value_dim are in [1, 256]. scale
// is the one to use (already resolved from 0), softcap 0 for none.
struct AttentionProblem {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  DType qkv_dtype = DType::F32;
  void* out = nullptr;
  DType out_dtype = DType::F32;
  const int32_t* query_offsets = nullptr;  // [sequences + 1]
  const int32_t* key_offsets = nullptr;    // [sequences + 1]
  const int32_t* query_positions = nullptr;
  const int32_t* key_positions = nullptr;
  int64_t sequences = 0;
  int64_t query_rows = 0;
  int64_t key_rows = 0;
  int64_t query_heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t value_dim = 0;
  float scale = 0.0f;
  float softcap = 0.0f;
  Visibility visibility;
  // Splitting each block's keys across blocks (attention.cu says when): the device's multiprocessors (0:
  // never split) and device scratch of attention_split_scratch_bytes(*this) bytes.
  int multiprocessors = 0;
  void* split_scratch = nullptr;
};

// The largest head_dim / value_dim the kernels take.
inline constexpr int64_t kMaxAttentionHeadDim = 256;

cudaError_t launch_attention(cudaStream_t stream, const AttentionProblem& problem);

// How many blocks share the keys of each query block of `problem` (1: no split), and the scratch their
// partial results take (0 without a split). Host arithmetic only: no device is needed.
int attention_key_splits(const AttentionProblem& problem);
size_t attention_split_scratch_bytes(const AttentionProblem& problem);

// The device arrays cuDNN's attention (cudnn_attention.cpp) reads, derived from a batch's offsets: i32
// query and key rows per sequence [sequences], and the element offset of each sequence's first row of q, k,
// v and out [sequences + 1].
struct SdpaLengthArrays {
  int32_t* query_rows = nullptr;
  int32_t* key_rows = nullptr;
  int32_t* q_offsets = nullptr;
  int32_t* k_offsets = nullptr;
  int32_t* v_offsets = nullptr;
  int32_t* out_offsets = nullptr;
};

// Fills `arrays` from the device offsets of `problem` (the caller checked that every element offset fits
// in i32).
cudaError_t launch_sdpa_lengths(cudaStream_t stream, const AttentionProblem& problem,
                                const SdpaLengthArrays& arrays);

}  // namespace dlm::cuda
