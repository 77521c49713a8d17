// embedding: a row gather into f32 (widened exactly) or bf16 (rounded once), then a one-thread kernel that
// records an id outside the table for the host (kernels; the op is in embedding.cpp).
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/launch.cuh"

namespace dlm::cuda {
namespace {

// One block per output row: the row's id is read once, the row's elements by consecutive threads.
template <DType D, DType O, class Id>
__global__ void embedding_kernel(const typename Storage<D>::T* table, int64_t vocab, int64_t width,
                                 const Id* ids, int64_t rows, typename Storage<O>::T* out,
                                 EmbeddingFault* fault) {
  wait_for_previous_kernel();
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t id = static_cast<int64_t>(ids[row]);
    typename Storage<O>::T* result = out + row * width;
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0) atomicMin(&fault->row, static_cast<unsigned long long>(row));
      for (int64_t c = threadIdx.x; c < width; c += blockDim.x) Storage<O>::store(result, c, 0.0f);
      continue;
    }
    const typename Storage<D>::T* source = table + id * width;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
      Storage<O>::store(result, c, Storage<D>::load(source, c));
    }
  }
}

// After the gather: keeps the launch's first bad row with its id (read now: the ids may be overwritten before
// the host looks) where nothing is recorded yet, so the host sees the first bad id since it last read the
// record; then readies fault->row for the next launch.
template <class Id>
__global__ void embedding_record_kernel(const Id* ids, int64_t vocab, EmbeddingFault* fault) {
  wait_for_previous_kernel();
  const unsigned long long row = fault->row;
  if (row == ~0ull) return;
  if (fault->index < 0) {
    fault->index = static_cast<int64_t>(row);
    fault->id = static_cast<int64_t>(ids[row]);
    fault->vocab = vocab;
  }
  fault->row = ~0ull;
}

template <DType D, DType O, class Id>
cudaError_t launch(cudaStream_t stream, const void* table, int64_t vocab, int64_t width, const void* ids,
                   int64_t rows, void* out, EmbeddingFault* fault) {
  launch_overlapping(embedding_kernel<D, O, Id>, row_blocks(rows), row_threads(width), 0, stream,
                     static_cast<const typename Storage<D>::T*>(table), vocab, width,
                     static_cast<const Id*>(ids), rows, static_cast<typename Storage<O>::T*>(out), fault);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) return status;
  launch_overlapping(embedding_record_kernel<Id>, 1, 1, 0, stream, static_cast<const Id*>(ids), vocab, fault);
  return cudaGetLastError();
}

template <DType O, class Id>
cudaError_t launch_for_table(cudaStream_t stream, const void* table, DType table_dtype, int64_t vocab,
                             int64_t width, const void* ids, int64_t rows, void* out, EmbeddingFault* fault) {
  switch (table_dtype) {
    case DType::F32:
      return launch<DType::F32, O, Id>(stream, table, vocab, width, ids, rows, out, fault);
    case DType::BF16:
      return launch<DType::BF16, O, Id>(stream, table, vocab, width, ids, rows, out, fault);
    case DType::F16:
      return launch<DType::F16, O, Id>(stream, table, vocab, width, ids, rows, out, fault);
    default:
      return cudaErrorInvalidValue;
  }
}

template <class Id>
cudaError_t launch_for_ids(cudaStream_t stream, const void* table, DType table_dtype, int64_t vocab,
                           int64_t width, const void* ids, int64_t rows, void* out, DType out_dtype,
                           EmbeddingFault* fault) {
  switch (out_dtype) {
    case DType::F32:
      return launch_for_table<DType::F32, Id>(stream, table, table_dtype, vocab, width, ids, rows, out,
                                              fault);
    case DType::BF16:
      return launch_for_table<DType::BF16, Id>(stream, table, table_dtype, vocab, width, ids, rows, out,
                                               fault);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_embedding(cudaStream_t stream, const void* table, DType table_dtype, int64_t vocab,
                             int64_t width, const void* ids, DType id_dtype, int64_t rows, void* out,
                             DType out_dtype, EmbeddingFault* fault) {
  if (rows == 0) return cudaSuccess;
  if (id_dtype == DType::I32) {
    return launch_for_ids<int32_t>(stream, table, table_dtype, vocab, width, ids, rows, out, out_dtype,
                                   fault);
  }
  if (id_dtype == DType::I64) {
    return launch_for_ids<int64_t>(stream, table, table_dtype, vocab, width, ids, rows, out, out_dtype,
                                   fault);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dlm::cuda
