// CudaBackend::add, silu, gelu, swiglu, geglu: dispatch to the kernels of elementwise.cu.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

namespace {

cuda::Activation gelu_activation(GeluApproximation approximation) {
  return approximation == GeluApproximation::Tanh ? cuda::Activation::GeluTanh : cuda::Activation::GeluExact;
}

}  // namespace

void CudaBackend::add(const Tensor& a, const Tensor& b, const Tensor& out) {
  if (a.numel() == 0) return;
  context_->make_current();
  check_launch(
      cuda::launch_add(context_->stream, a.dtype(), a.data(), b.data(), a.numel(), b.numel(), out.data()),
      "add");
}

void CudaBackend::silu(const Tensor& x, const Tensor& out) {
  if (x.numel() == 0) return;
  context_->make_current();
  check_launch(cuda::launch_activation(context_->stream, cuda::Activation::Silu, x.dtype(), x.data(), nullptr,
                                       x.numel(), out.data()),
               "silu");
}

void CudaBackend::gelu(const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  if (x.numel() == 0) return;
  context_->make_current();
  check_launch(cuda::launch_activation(context_->stream, gelu_activation(approximation), x.dtype(), x.data(),
                                       nullptr, x.numel(), out.data()),
               "gelu");
}

void CudaBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  if (gate.numel() == 0) return;
  context_->make_current();
  check_launch(cuda::launch_activation(context_->stream, cuda::Activation::Silu, gate.dtype(), gate.data(),
                                       up.data(), gate.numel(), out.data()),
               "swiglu");
}

void CudaBackend::geglu(const Tensor& gate, const Tensor& up, GeluApproximation approximation,
                        const Tensor& out) {
  if (gate.numel() == 0) return;
  context_->make_current();
  check_launch(cuda::launch_activation(context_->stream, gelu_activation(approximation), gate.dtype(),
                                       gate.data(), up.data(), gate.numel(), out.data()),
               "geglu");
}

}  // namespace dlm
