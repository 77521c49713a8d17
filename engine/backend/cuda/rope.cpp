// CudaBackend::rope and rope_qkv: dispatch to the kernels of rope.cu.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

void CudaBackend::rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                       const RopeParams& params, const Tensor& out) {
  if (x.numel() == 0) return;
  context_->make_current();
  check_launch(cuda::launch_rope(context_->stream, x.data(), x.stride(0), x.dtype(),
                                 static_cast<const int32_t*>(positions.data()),
                                 static_cast<const float*>(inv_freq.data()), params.layout, params.rotary_dim,
                                 params.attention_factor, x.dim(0), x.dim(1), x.dim(2), out.data()),
               "rope");
}

void CudaBackend::rope_qkv(const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                           const RopeParams& params, const Tensor& q, const Tensor& k, const Tensor& v) {
  if (qkv.numel() == 0) return;
  context_->make_current();
  check_launch(cuda::launch_rope_qkv(context_->stream, qkv.data(), qkv.stride(0), qkv.dtype(),
                                     static_cast<const int32_t*>(positions.data()),
                                     static_cast<const float*>(inv_freq.data()), params.layout,
                                     params.rotary_dim, params.attention_factor, qkv.dim(0), q.dim(1),
                                     k.dim(1), q.dim(2), q.data(), k.data(), v.data()),
               "rope_qkv");
}

}  // namespace dlm
