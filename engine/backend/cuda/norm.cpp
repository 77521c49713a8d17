// CudaBackend::rms_norm, add_rms_norm and layer_norm: dispatch to the kernels of norm.cu.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

void CudaBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
                           const Tensor& out) {
  const int64_t width = weight.numel();
  const int64_t rows = width == 0 ? 0 : x.numel() / width;
  if (rows == 0) return;
  context_->make_current();
  check_launch(cuda::launch_rms_norm(context_->stream, x.data(), x.dtype(), weight.data(), weight.dtype(),
                                     eps, mode, rows, width, out.data()),
               "rms_norm");
}

void CudaBackend::add_rms_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, float eps,
                               NormWeight mode, const Tensor& sum_out, const Tensor& norm_out) {
  const int64_t width = weight.numel();
  const int64_t rows = width == 0 ? 0 : x.numel() / width;
  if (rows == 0) return;
  context_->make_current();
  check_launch(
      cuda::launch_add_rms_norm(context_->stream, x.data(), residual.data(), x.dtype(), weight.data(),
                                weight.dtype(), eps, mode, rows, width, sum_out.data(), norm_out.data()),
      "add_rms_norm");
}

void CudaBackend::layer_norm(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                             float eps, const Tensor& out) {
  const int64_t width = weight.numel();
  const int64_t rows = width == 0 ? 0 : x.numel() / width;
  if (rows == 0) return;
  context_->make_current();
  check_launch(cuda::launch_layer_norm(context_->stream, x.data(), x.dtype(), weight.data(), weight.dtype(),
                                       bias ? bias->data() : nullptr, bias ? bias->dtype() : DType::F32, eps,
                                       rows, width, out.data()),
               "layer_norm");
}

}  // namespace dlm
