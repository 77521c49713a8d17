// embedding: a row gather into f32 (widened exactly) or bf16 (rounded once) (kernels; the op is in
// embedding.cpp).
#include "engine/backend/cuda/cuda_helpers.cuh"
#include "engine/backend/cuda/cuda_kernels.h"

namespace dlm::cuda {
namespace {

// One block per output row: the row's id is read once, the row's elements by consecutive threads.
template <DType D, DType O, class Id>
__global__ void embedding_kernel(const typename Storage<D>::T* table, int64_t vocab, int64_t width,
                                 const Id* ids, int64_t rows, typename Storage<O>::T* out,
                                 unsigned long long* first_bad) {
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const int64_t id = static_cast<int64_t>(ids[row]);
    typename Storage<O>::T* result = out + row * width;
    if (id < 0 || id >= vocab) {
      if (threadIdx.x == 0) atomicMin(first_bad, static_cast<unsigned long long>(row));
      for (int64_t c = threadIdx.x; c < width; c += blockDim.x) Storage<O>::store(result, c, 0.0f);
      continue;
    }
    const typename Storage<D>::T* source = table + id * width;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
      Storage<O>::store(result, c, Storage<D>::load(source, c));
    }
  }
}

template <DType D, DType O, class Id>
cudaError_t launch(cudaStream_t stream, const void* table, int64_t vocab, int64_t width, const void* ids,
                   int64_t rows, void* out, unsigned long long* first_bad) {
  embedding_kernel<D, O, Id><<<row_blocks(rows), row_threads(width), 0, stream>>>(
      static_cast<const typename Storage<D>::T*>(table), vocab, width, static_cast<const Id*>(ids), rows,
      static_cast<typename Storage<O>::T*>(out), first_bad);
  return cudaGetLastError();
}

template <DType O, class Id>
cudaError_t launch_for_table(cudaStream_t stream, const void* table, DType table_dtype, int64_t vocab,
                             int64_t width, const void* ids, int64_t rows, void* out,
                             unsigned long long* first_bad) {
  switch (table_dtype) {
    case DType::F32:
      return launch<DType::F32, O, Id>(stream, table, vocab, width, ids, rows, out, first_bad);
    case DType::BF16:
      return launch<DType::BF16, O, Id>(stream, table, vocab, width, ids, rows, out, first_bad);
    case DType::F16:
      return launch<DType::F16, O, Id>(stream, table, vocab, width, ids, rows, out, first_bad);
    default:
      return cudaErrorInvalidValue;
  }
}

template <class Id>
cudaError_t launch_for_ids(cudaStream_t stream, const void* table, DType table_dtype, int64_t vocab,
                           int64_t width, const void* ids, int64_t rows, void* out, DType out_dtype,
                           unsigned long long* first_bad) {
  switch (out_dtype) {
    case DType::F32:
      return launch_for_table<DType::F32, Id>(stream, table, table_dtype, vocab, width, ids, rows, out,
                                              first_bad);
    case DType::BF16:
      return launch_for_table<DType::BF16, Id>(stream, table, table_dtype, vocab, width, ids, rows, out,
                                               first_bad);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t launch_embedding(cudaStream_t stream, const void* table, DType table_dtype, int64_t vocab,
                             int64_t width, const void* ids, DType id_dtype, int64_t rows, void* out,
                             DType out_dtype, unsigned long long* first_bad) {
  if (rows == 0) return cudaSuccess;
  const cudaError_t reset = cudaMemsetAsync(first_bad, 0xff, sizeof *first_bad, stream);
  if (reset != cudaSuccess) return reset;
  if (id_dtype == DType::I32) {
    return launch_for_ids<int32_t>(stream, table, table_dtype, vocab, width, ids, rows, out, out_dtype,
                                   first_bad);
  }
  if (id_dtype == DType::I64) {
    return launch_for_ids<int64_t>(stream, table, table_dtype, vocab, width, ids, rows, out, out_dtype,
                                   first_bad);
  }
  return cudaErrorInvalidValue;
}

}  // namespace dlm::cuda
