#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {

void CpuBackend::cast(const Tensor& x, const Tensor& out) {
  const DType from = x.dtype();
  const DType to = out.dtype();
  const auto* src = static_cast<const char*>(x.data());
  auto* dst = static_cast<char*>(out.data());
  const size_t src_size = dtype_size(from);
  const size_t dst_size = dtype_size(to);
  cpu::parallel_rows(pool(), x.numel(), 1, [&](int64_t begin, int64_t end) {
    // bf16 <-> f16 goes through f32 in blocks small enough to stay on the stack.
    constexpr int64_t kBlock = 1024;
    float widened[kBlock];
    for (int64_t i = begin; i < end; i += kBlock) {
      const int64_t n = std::min(kBlock, end - i);
      const void* in = src + i * src_size;
      void* result = dst + i * dst_size;
      if (from == to) {
        std::memmove(result, in, static_cast<size_t>(n) * src_size);
      } else if (from == DType::F32) {
        cpu::from_f32(static_cast<const float*>(in), to, result, n);
      } else if (to == DType::F32) {
        cpu::to_f32(from, in, static_cast<float*>(result), n);
      } else {
        cpu::to_f32(from, in, widened, n);
        cpu::from_f32(widened, to, result, n);
      }
    }
  });
}

}  // namespace dlm
