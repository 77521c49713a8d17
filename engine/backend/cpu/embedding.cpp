#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/cpu_helpers.h"

namespace dlm {

namespace {

template <class Id>
void gather_rows(ThreadPool& pool, const Tensor& table, const Id* ids, const Tensor& out) {
  const int64_t vocab = table.dim(0);
  const int64_t width = table.dim(1);
  const auto* rows = static_cast<const char*>(table.data());
  const size_t row_bytes = static_cast<size_t>(width) * dtype_size(table.dtype());
  auto* ys = static_cast<float*>(out.data());
  cpu::parallel_rows(pool, out.dim(0), width, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t id = static_cast<int64_t>(ids[i]);
      if (id < 0 || id >= vocab) fail("embedding: id {} at index {} is outside [0, {})", id, i, vocab);
      cpu::to_f32(table.dtype(), rows + static_cast<size_t>(id) * row_bytes, ys + i * width, width);
    }
  });
}

}  // namespace

void CpuBackend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  if (ids.dtype() == DType::I32) {
    gather_rows(pool(), table, static_cast<const int32_t*>(ids.data()), out);
  } else {
    DLM_CHECK(ids.dtype() == DType::I64, "embedding: ids must be i32 or i64, got {}", ids.describe());
    gather_rows(pool(), table, static_cast<const int64_t*>(ids.data()), out);
  }
}

}  // namespace dlm
