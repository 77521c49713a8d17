// CudaBackend::embedding: the gather of embedding.cu, then a check of the ids. An id outside the table is an
// Error naming it, as on the CPU; finding out waits for the stream (one 8-byte read per call).
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

void CudaBackend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  DLM_CHECK(ids.dtype() == DType::I32 || ids.dtype() == DType::I64,
            "embedding: ids must be i32 or i64, got {}", ids.describe());
  const int64_t rows = ids.numel();
  if (rows == 0) return;
  const int64_t vocab = table.dim(0);
  Context& ctx = *context_;
  ctx.make_current();
  check_launch(cuda::launch_embedding(ctx.stream, table.data(), table.dtype(), vocab, table.dim(1),
                                      ids.data(), ids.dtype(), rows, out.data(), out.dtype(), ctx.status),
               "embedding");
  unsigned long long first_bad = 0;
  DLM_CUDA_CHECK(
      cudaMemcpyAsync(&first_bad, ctx.status, sizeof first_bad, cudaMemcpyDeviceToHost, ctx.stream));
  DLM_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  if (first_bad == ~0ull) return;
  int64_t id = 0;
  const size_t id_size = ids.dtype() == DType::I32 ? 4 : 8;
  const char* id_address = static_cast<const char*>(ids.data()) + first_bad * id_size;
  if (ids.dtype() == DType::I32) {
    int32_t narrow = 0;
    DLM_CUDA_CHECK(cudaMemcpy(&narrow, id_address, id_size, cudaMemcpyDeviceToHost));
    id = narrow;
  } else {
    DLM_CUDA_CHECK(cudaMemcpy(&id, id_address, id_size, cudaMemcpyDeviceToHost));
  }
  fail("embedding: id {} at index {} is outside [0, {})", id, first_bad, vocab);
}

}  // namespace dlm
