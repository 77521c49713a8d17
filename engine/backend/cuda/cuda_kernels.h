#pragma once
// The launchers of the CUDA kernels, the bridge between the CudaBackend op files (C++20, <stem>.cpp) and the
// kernels (<stem>.cu). The .cu files are compiled as C++17 and cannot include tensor.h (C++20), so this
// header speaks in plain pointers, sizes and the C++17-clean enums of dtype.h and op_types.h only.
//
// Every launcher queues its work on `stream` and returns without waiting, with the launch status (or
// cudaErrorInvalidValue for a dtype it does not handle). Arguments are those the op front-ends validated:
// contiguous, in range, with the aliasing the front-end allows; sizes may be zero (nothing is launched).
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "engine/core/dtype.h"
#include "engine/ops/op_types.h"
#include "engine/ops/token_rule.h"

namespace dlm::cuda {

// out[i] = x[i] converted between f32, bf16 and f16, rounding to nearest even exactly as half.h does; the
// same dtype copies the bits. x and out do not overlap.
cudaError_t launch_cast(cudaStream_t stream, const void* x, DType from, void* out, DType to, int64_t n);

// Device-to-device copies, up to kMaxListedCopies in one launch: their addresses travel in the launch's
// parameters, so the launch needs no upload and records into a graph as it is. Copies do not overlap.
inline constexpr int kMaxListedCopies = 64;
struct CopyList {
  const void* source[kMaxListedCopies];
  void* destination[kMaxListedCopies];
  size_t bytes[kMaxListedCopies];
  int count = 0;
};
cudaError_t launch_copy_list(cudaStream_t stream, const CopyList& copies);

// Activations (an `out` of embedding, x and out of the norms, rope and the element-wise ops) are f32 or bf16:
// each result is computed in f32 (or double) from the widened inputs and rounded once, so a bf16 result is
// the f32 result rounded to nearest even.

// Device memory in which embedding launches record an id outside the table for the host to read later. Its
// value-initialized state is the one between launches with nothing recorded.
struct EmbeddingFault {
  unsigned long long row = ~0ull;  // a launch's first row with a bad id while it runs; ~0 between launches
  int64_t index = -1;              // the first such launch's row, or -1 while nothing is recorded
  int64_t id = 0;                  // and its id
  int64_t vocab = 0;               // and the table's size
};

// out[r, :] = table[ids[r], :] (table f32/bf16/f16 [vocab, width], ids i32/i64 [rows], out f32/bf16). A row
// whose id is outside [0, vocab) is zeroed; the first such row, its id and vocab are recorded in *fault
// unless a record is there already (a follow-up one-thread kernel, which also resets fault->row).
cudaError_t launch_embedding(cudaStream_t stream, const void* table, DType table_dtype, int64_t vocab,
                             int64_t width, const void* ids, DType id_dtype, int64_t rows, void* out,
                             DType out_dtype, EmbeddingFault* fault);

// Over rows of `width` elements; x and out in x_dtype; weight/bias f32/bf16/f16 [width]; out may be x.
cudaError_t launch_rms_norm(cudaStream_t stream, const void* x, DType x_dtype, const void* weight,
                            DType weight_dtype, float eps, NormWeight mode, int64_t rows, int64_t width,
                            void* out);
// sum_out = x + residual (rounded to x_dtype), out = rms_norm(sum_out), bit for bit as the two launches;
// either output may be x or residual.
cudaError_t launch_add_rms_norm(cudaStream_t stream, const void* x, const void* residual, DType x_dtype,
                                const void* weight, DType weight_dtype, float eps, NormWeight mode,
                                int64_t rows, int64_t width, void* sum_out, void* norm_out);
// bias may be null (then bias_dtype is ignored).
cudaError_t launch_layer_norm(cudaStream_t stream, const void* x, DType x_dtype, const void* weight,
                              DType weight_dtype, const void* bias, DType bias_dtype, float eps, int64_t rows,
                              int64_t width, void* out);

// x and out [tokens, heads, head_dim] in x_dtype, x's tokens x_stride elements apart (out's contiguous);
// positions i32 [tokens]; inv_freq f32 [rotary_dim / 2]; out may be x where x_stride is heads * head_dim.
cudaError_t launch_rope(cudaStream_t stream, const void* x, int64_t x_stride, DType x_dtype,
                        const int32_t* positions, const float* inv_freq, RopeLayout layout,
                        int64_t rotary_dim, float attention_factor, int64_t tokens, int64_t heads,
                        int64_t head_dim, void* out);
// qkv [tokens, (q_heads + 2 kv_heads) * head_dim] in dtype, tokens qkv_stride elements apart: q [tokens,
// q_heads, head_dim] = rope of its first q_heads heads, k [tokens, kv_heads, head_dim] = rope of the next
// kv_heads, v = the last kv_heads copied; q, k and v contiguous. Arguments otherwise as launch_rope's.
cudaError_t launch_rope_qkv(cudaStream_t stream, const void* qkv, int64_t qkv_stride, DType dtype,
                            const int32_t* positions, const float* inv_freq, RopeLayout layout,
                            int64_t rotary_dim, float attention_factor, int64_t tokens, int64_t q_heads,
                            int64_t kv_heads, int64_t head_dim, void* q, void* k, void* v);

// out[i] = a[i] + b[i % b_count] over n elements of `dtype` (b_count == n, or b_count the width of a's rows);
// out may be a or b.
cudaError_t launch_add(cudaStream_t stream, DType dtype, const void* a, const void* b, int64_t n,
                       int64_t b_count, void* out);

enum class Activation : uint8_t { Silu, GeluExact, GeluTanh };
// out[i] = f(x[i]), or f(x[i]) * up[i] when up is not null, all of `dtype`, over n elements in rows of
// `width`: x's and up's rows start x_stride and up_stride elements apart (column blocks of one matrix), out's
// are contiguous. out may be x or up where their strides are `width`.
cudaError_t launch_activation(cudaStream_t stream, Activation activation, DType dtype, const void* x,
                              const void* up, int64_t n, int64_t width, int64_t x_stride, int64_t up_stride,
                              void* out);

enum class SoftmaxKind : uint8_t { Probabilities, Log };
// Over rows of `width` elements; out may be x.
cudaError_t launch_softmax(cudaStream_t stream, SoftmaxKind kind, const float* x, int64_t rows, int64_t width,
                           float* out);

// logits f32 [rows, vocab] with 1 <= vocab < 2^31.
cudaError_t launch_argmax(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                          int32_t* out);
// Device scratch top_k needs for these sizes (0 when it sorts in shared memory).
size_t top_k_scratch_bytes(int64_t rows, int64_t k);
// values f32 / indices i32 [rows, k], 1 <= k <= vocab; scratch of top_k_scratch_bytes(rows, k) bytes.
cudaError_t launch_top_k(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab, int64_t k,
                         float* values, int32_t* indices, void* scratch);
cudaError_t launch_vocab_stats(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                               int32_t* argmax, float* max_prob, float* entropy, float* margin);
// out[r] = rules[r] applied to logits[r] (token_rule.h), rows with a repetition penalty penalized in place;
// rules and out are device arrays of `rows`, penalized_ids the device array the rules' penalties index.
cudaError_t launch_predict_tokens(cudaStream_t stream, float* logits, int64_t rows, int64_t vocab,
                                  const TokenRule* rules, const int32_t* penalized_ids, TokenPrediction* out);
// Rows too few to fill the device whose rules are plain argmax draws (no filter, penalty, temperature
// division or entropies) are split into parts, several blocks a row: the parts launch_predict_argmax_parts
// takes for the host `rules`, or 0 where the rows take launch_predict_tokens.
int argmax_parts(const TokenRule* rules, int64_t rows, int64_t vocab, int sm_count);
size_t argmax_parts_scratch_bytes(int64_t rows, int parts);
// launch_predict_tokens' results for such rows, through `scratch` of argmax_parts_scratch_bytes.
cudaError_t launch_predict_argmax_parts(cudaStream_t stream, const float* logits, int64_t rows, int64_t vocab,
                                        const TokenRule* rules, int parts, void* scratch,
                                        TokenPrediction* out);

}  // namespace dlm::cuda
