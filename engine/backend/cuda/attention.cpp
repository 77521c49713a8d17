// CudaBackend::attention: cuDNN's fused attention where the choice and the call allow it
// (cudnn_attention.h), else our kernels (attention_device.cuh describes them).
#include <algorithm>
#include <cmath>
#include <span>
#include <string>

#include "engine/backend/cuda/attention_kernels.h"
#include "engine/backend/cuda/cuda_context.h"

namespace dlm {
namespace {

// Whether every sequence has at most one query row: a decoding step, which dlm's kernels take faster than
// cuDNN's by splitting the keys across blocks (BENCHMARKS.md, "Attention").
bool one_query_a_sequence(std::span<const int32_t> query_offsets) {
  return std::ranges::adjacent_find(query_offsets, [](int32_t a, int32_t b) { return b - a > 1; }) ==
         query_offsets.end();
}

// Queues `problem` through cuDNN and returns true, or returns false for dlm's kernels to take it (Error
// instead under CudaAttention::Cudnn, naming why cuDNN cannot).
bool attend_with_cudnn(CudaBackend::Context& ctx, const cuda::AttentionProblem& problem,
                       const AttentionBatch& batch) {
  if (ctx.attention == CudaAttention::Kernel) return false;
  if (ctx.attention == CudaAttention::Auto && !batch.host_query_offsets.empty() &&
      one_query_a_sequence(batch.host_query_offsets)) {
    return false;
  }
  std::string why_not = ctx.cudnn_unusable;
  if (why_not.empty()) {
    why_not = cuda::sdpa_unsupported(problem, batch.host_query_offsets, batch.host_key_offsets, ctx.sm_major);
  }
  if (why_not.empty() && !ctx.cudnn_attention) {
    try {
      ctx.cudnn_attention = std::make_unique<cuda::CudnnAttention>(ctx.stream);
    } catch (const Error& error) {
      ctx.cudnn_unusable = why_not = error.what();
    }
  }
  if (why_not.empty()) {
    const cuda::SdpaShape shape = cuda::plan_shape(problem, batch.host_query_offsets, batch.host_key_offsets);
    const size_t workspace = ctx.cudnn_attention->workspace_bytes(shape, why_not);
    if (why_not.empty()) {
      void* scratch = ctx.reserve_scratch(cuda::CudnnAttention::length_array_bytes(shape) + workspace);
      ctx.cudnn_attention->run(problem, shape, batch.host_query_offsets, batch.host_key_offsets, scratch);
      return true;
    }
  }
  DLM_CHECK(ctx.attention != CudaAttention::Cudnn, "attention on CUDA: cuDNN was required but cannot take {}",
            why_not);
  return false;
}

}  // namespace

void CudaBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionBatch& batch,
                            const AttentionParams& params, const Tensor& out) {
  DLM_CHECK(q.dtype() == DType::F32 || q.dtype() == DType::BF16,
            "attention on CUDA: q must be f32 or bf16, got {}", q.describe());
  DLM_CHECK(k.dtype() == q.dtype() && v.dtype() == q.dtype(),
            "attention on CUDA: q, k and v must share one dtype, got q {}, k {}, v {}", q.describe(),
            k.describe(), v.describe());
  DLM_CHECK(out.dtype() == DType::F32 || out.dtype() == DType::BF16,
            "attention on CUDA: out must be f32 or bf16, got {}", out.describe());
  DLM_CHECK(q.dim(2) <= cuda::kMaxAttentionHeadDim && v.dim(2) <= cuda::kMaxAttentionHeadDim,
            "attention on CUDA: head_dim and value_dim must be at most {}, got q {}, v {}",
            cuda::kMaxAttentionHeadDim, q.describe(), v.describe());
  for (const Tensor* t :
       {&batch.query_offsets, &batch.key_offsets, &batch.query_positions, &batch.key_positions}) {
    DLM_CHECK(t->device() == device() && t->dtype() == DType::I32,
              "attention on CUDA: the batch's offsets and positions must be i32 on {}, got {}",
              device_name(device()), t->describe());
  }
  if (q.dim(0) == 0) return;

  cuda::AttentionProblem problem;
  problem.q = q.data();
  problem.k = k.data();
  problem.v = v.data();
  problem.qkv_dtype = q.dtype();
  problem.out = out.data();
  problem.out_dtype = out.dtype();
  problem.query_offsets = static_cast<const int32_t*>(batch.query_offsets.data());
  problem.key_offsets = static_cast<const int32_t*>(batch.key_offsets.data());
  problem.query_positions = static_cast<const int32_t*>(batch.query_positions.data());
  problem.key_positions = static_cast<const int32_t*>(batch.key_positions.data());
  problem.sequences = batch.query_offsets.dim(0) - 1;
  problem.query_rows = q.dim(0);
  problem.key_rows = k.dim(0);
  problem.query_heads = q.dim(1);
  problem.kv_heads = k.dim(1);
  problem.head_dim = q.dim(2);
  problem.value_dim = v.dim(2);
  // As the CPU backend resolves it, so both use the same f32 scale.
  problem.scale = params.scale != 0.0f ? params.scale : 1.0f / std::sqrt(static_cast<float>(q.dim(2)));
  problem.softcap = params.softcap;
  problem.visibility = params.visibility;
  context_->make_current();
  if (attend_with_cudnn(*context_, problem, batch)) return;
  if (context_->split_attention_keys) {
    problem.multiprocessors = context_->sm_count;
    const size_t scratch = cuda::attention_split_scratch_bytes(problem);
    if (scratch > 0) problem.split_scratch = context_->reserve_scratch(scratch);
  }
  check_launch(cuda::launch_attention(context_->stream, problem), "attention");
}

}  // namespace dlm
