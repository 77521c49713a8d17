// CudaBackend::softmax and log_softmax: dispatch to the kernels of softmax.cu.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

namespace {

void launch(CudaBackend::Context& ctx, cuda::SoftmaxKind kind, const Tensor& x, const Tensor& out,
            const char* op) {
  const int64_t width = x.dim(-1);
  const int64_t rows = width == 0 ? 0 : x.numel() / width;
  if (rows == 0) return;
  ctx.make_current();
  check_launch(cuda::launch_softmax(ctx.stream, kind, static_cast<const float*>(x.data()), rows, width,
                                    static_cast<float*>(out.data())),
               op);
}

}  // namespace

void CudaBackend::softmax(const Tensor& x, const Tensor& out) {
  launch(*context_, cuda::SoftmaxKind::Probabilities, x, out, "softmax");
}

void CudaBackend::log_softmax(const Tensor& x, const Tensor& out) {
  launch(*context_, cuda::SoftmaxKind::Log, x, out, "log_softmax");
}

}  // namespace dlm
