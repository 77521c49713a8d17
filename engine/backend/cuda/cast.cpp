// CudaBackend::cast: dispatch to the kernels of cast.cu.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

void CudaBackend::cast(const Tensor& x, const Tensor& out) {
  DLM_CHECK(x.numel() == out.numel(), "cast: {} to {}", x.describe(), out.describe());
  if (x.numel() == 0) return;
  context_->make_current();
  check_launch(cuda::launch_cast(context_->stream, x.data(), x.dtype(), out.data(), out.dtype(), x.numel()),
               "cast");
}

}  // namespace dlm
