// CudaBackend::embedding: the gather of embedding.cu, which also checks the ids without making the host wait.
//
// Deferred error. An id outside the table is an Error naming the id, its index and the table's size, as on
// the CPU, but the call does not raise it: the row is zeroed, the device records the first bad id of the
// first call that had one (the id itself, as the ids may be overwritten before the host looks), and the
// Error is raised at the backend's next wait for results: synchronize() or a copy to the host
// (Context::wait). Work queued in between runs on the zeroed rows. Raising the Error clears the record, so
// the backend stays usable.
#include "engine/backend/cuda/cuda_context.h"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm {

void CudaBackend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  DLM_CHECK(ids.dtype() == DType::I32 || ids.dtype() == DType::I64,
            "embedding: ids must be i32 or i64, got {}", ids.describe());
  const int64_t rows = ids.numel();
  if (rows == 0) return;
  Context& ctx = *context_;
  ctx.make_current();
  check_launch(
      cuda::launch_embedding(ctx.stream, table.data(), table.dtype(), table.dim(0), table.dim(1), ids.data(),
                             ids.dtype(), rows, out.data(), out.dtype(), ctx.embedding_fault),
      "embedding");
  ctx.embedding_queued = true;
}

void CudaBackend::Context::raise_embedding_fault() {
  const cuda::EmbeddingFault fault = *embedding_fault_host;
  if (fault.index < 0) return;
  // No wait: the host copy is next written by a later wait's read, queued on the stream behind this clear.
  *embedding_fault_host = cuda::EmbeddingFault{};
  DLM_CUDA_CHECK(cudaMemcpyAsync(embedding_fault, embedding_fault_host, sizeof *embedding_fault,
                                 cudaMemcpyHostToDevice, stream));
  fail("embedding: id {} at index {} is outside [0, {})", fault.id, fault.index, fault.vocab);
}

}  // namespace dlm
