#include "engine/backend/cpu/cpu_backend.h"

#include <cblas.h>

#include <cstring>

namespace dlm {

CpuBackend::CpuBackend(int threads) : pool_(threads) {
  // Matrix products are tiled over our own pool, each tile a single-threaded BLAS call: two pools
  // competing for the same cores would only slow both down. The setting is process-wide.
  openblas_set_num_threads(1);
}

Buffer CpuBackend::allocate(size_t bytes) {
  return Buffer::host(bytes);
}

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  DLM_CHECK(src.dtype() == dst.dtype() && src.shape() == dst.shape(), "copy from {} to {}", src.describe(),
            dst.describe());
  DLM_CHECK(src.device().kind == DeviceKind::Cpu && dst.device().kind == DeviceKind::Cpu,
            "the CPU backend copies host tensors only, got {} -> {}", src.describe(), dst.describe());
  DLM_CHECK((src.is_contiguous() || src.slices_contiguous()) && dst.is_contiguous(),
            "copy needs a contiguous destination and a source whose slices along axis 0 are contiguous, got "
            "{} -> {}",
            src.describe(), dst.describe());
  if (src.nbytes() == 0) return;
  if (src.is_contiguous()) {
    std::memmove(dst.data(), src.data(), src.nbytes());
    return;
  }
  const size_t slice = src.nbytes() / static_cast<size_t>(src.dim(0));
  const size_t stride = static_cast<size_t>(src.stride(0)) * dtype_size(src.dtype());
  for (int64_t i = 0; i < src.dim(0); ++i) {
    std::memmove(static_cast<char*>(dst.data()) + static_cast<size_t>(i) * slice,
                 static_cast<const char*>(src.data()) + static_cast<size_t>(i) * stride, slice);
  }
}

}  // namespace dlm
