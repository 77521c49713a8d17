// CudaBackend::add, silu, gelu, swiglu, geglu: dispatch to the kernels of elementwise.cu.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

namespace {

cuda::Activation gelu_activation(GeluApproximation approximation) {
  return approximation == GeluApproximation::Tanh ? cuda::Activation::GeluTanh : cuda::Activation::GeluExact;
}

void launch_unary(CudaBackend::Context& ctx, cuda::Activation activation, const Tensor& x, const Tensor& out,
                  const char* name) {
  if (x.numel() == 0) return;
  ctx.make_current();
  const int64_t n = x.numel();
  check_launch(
      cuda::launch_activation(ctx.stream, activation, x.dtype(), x.data(), nullptr, n, n, n, n, out.data()),
      name);
}

// gate and up may be column blocks of one matrix (Backend::swiglu).
void launch_gated(CudaBackend::Context& ctx, cuda::Activation activation, const Tensor& gate,
                  const Tensor& up, const Tensor& out, const char* name) {
  if (gate.numel() == 0) return;
  ctx.make_current();
  const int64_t n = gate.numel();
  const bool flat = gate.is_contiguous() && up.is_contiguous();
  const int64_t width = flat ? n : gate.dim(-1);
  check_launch(cuda::launch_activation(ctx.stream, activation, gate.dtype(), gate.data(), up.data(), n, width,
                                       flat ? n : gate.row_stride(), flat ? n : up.row_stride(), out.data()),
               name);
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
  launch_unary(*context_, cuda::Activation::Silu, x, out, "silu");
}

void CudaBackend::gelu(const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  launch_unary(*context_, gelu_activation(approximation), x, out, "gelu");
}

void CudaBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  launch_gated(*context_, cuda::Activation::Silu, gate, up, out, "swiglu");
}

void CudaBackend::geglu(const Tensor& gate, const Tensor& up, GeluApproximation approximation,
                        const Tensor& out) {
  launch_gated(*context_, gelu_activation(approximation), gate, up, out, "geglu");
}

}  // namespace dlm
