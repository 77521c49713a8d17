// CudaBackend::attention: dispatch to the kernels of attention.cu (which describes them).
#include <cmath>

#include "engine/backend/cuda/attention_kernels.h"
#include "engine/backend/cuda/cuda_context.h"

namespace dlm {

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
  check_launch(cuda::launch_attention(context_->stream, problem), "attention");
}

}  // namespace dlm
