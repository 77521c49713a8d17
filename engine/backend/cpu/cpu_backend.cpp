#include "engine/backend/cpu/cpu_backend.h"

#include <cblas.h>

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
  copy_host(src, dst);
}

}  // namespace dlm
