#pragma once
// What the CUDA op files share: the device, the stream every op is queued on, the cuBLASLt handle with its
// workspace, and error checks that name the call.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/backend/cuda/cudnn_attention.h"
#include "engine/core/error.h"

// Throws Error "<call> failed: <CUDA error>" with the file and line.
#define DLM_CUDA_CHECK(call)                                                                        \
  do {                                                                                              \
    const cudaError_t dlm_status_ = (call);                                                         \
    DLM_CHECK(dlm_status_ == cudaSuccess, "{} failed: {}", #call, cudaGetErrorString(dlm_status_)); \
  } while (0)
#define DLM_CUBLAS_CHECK(call)                                                            \
  do {                                                                                    \
    const cublasStatus_t dlm_status_ = (call);                                            \
    DLM_CHECK(dlm_status_ == CUBLAS_STATUS_SUCCESS, "{} failed: cuBLAS status {}", #call, \
              static_cast<int>(dlm_status_));                                             \
  } while (0)

namespace dlm {

// A linear problem as cuBLASLt sees it (linear.cpp): shapes, the cudaDataType_t of the inputs (A and B) and
// of the output D, whether the bias epilogue is on, and the byte alignment (a power of two up to 256) of A, B
// and D.
struct LinearAlgoKey {
  int64_t m = 0, n = 0, k = 0;
  int ab_type = 0, d_type = 0;
  bool bias = false;
  int align_a = 0, align_b = 0, align_d = 0;

  bool operator<(const LinearAlgoKey& o) const {
    return std::tie(m, n, k, ab_type, d_type, bias, align_a, align_b, align_d) <
           std::tie(o.m, o.n, o.k, o.ab_type, o.d_type, o.bias, o.align_a, o.align_b, o.align_d);
  }
};

// What linear.cpp keeps per LinearAlgoKey, made on its first use: the matmul descriptor and the three layouts
// (made once, not per call), and the heuristic's first choice for them, or found == false where it offered
// none.
struct LinearPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  bool found = false;
  cublasLtMatmulAlgo_t algo{};
  // With CudaOptions::tune_gemm: the heuristic's offers (algo is the first) and the other candidates of
  // linear_tuning.h, timed by the first call that is not being recorded, which keeps the fastest in algo and
  // empties this.
  std::vector<cublasLtMatmulAlgo_t> candidates;

  LinearPlan() = default;
  LinearPlan(const LinearPlan&) = delete;
  LinearPlan& operator=(const LinearPlan&) = delete;
  ~LinearPlan();  // linear.cpp: destroys the descriptors made so far
};

struct CudaBackend::Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;  // cuBLASLt workspace on the device
  size_t workspace_bytes = 0;

  int sm_count = 0;  // streaming multiprocessors of the device, for sizing grids
  int sm_major = 0;  // the device's compute capability, major version
  // embedding.cpp: ids outside the table are recorded on the device and raised at the next wait().
  cuda::EmbeddingFault* embedding_fault = nullptr;       // device memory
  cuda::EmbeddingFault* embedding_fault_host = nullptr;  // pinned host memory, the record's copy
  bool embedding_queued = false;                         // an embedding was queued since the last wait()
  // Device scratch shared by the ops (top_k's sort space for large k, cuDNN's workspace), grown by
  // reserve_scratch. With recording on, an outgrown block is kept until the backend goes, since a recorded
  // graph may still read it.
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
  std::vector<void*> outgrown_scratch;
  // linear.cpp: the descriptors are made and cublasLtMatmulAlgoGetHeuristic is asked once per problem.
  std::map<LinearAlgoKey, std::unique_ptr<LinearPlan>> linear_plans;
  // attention.cpp: the implementation chosen, and cuDNN's handle and plans, made on first use (or why
  // cuDNN could not be initialized, so it is not tried again).
  CudaAttention attention = CudaAttention::Auto;
  // recording.cpp: whether recording is on, and whether the stream is being captured now.
  bool graphs = false;
  bool recording = false;
  bool tune_gemm = false;                                 // linear.cpp: CudaOptions::tune_gemm
  std::vector<CudaBackend::TunedProduct> tuned_products;  // linear_tuning.cpp: what tune_gemm chose
  bool split_attention_keys = true;                       // attention.cpp: CudaOptions::split_attention_keys
  bool batch_invariant = false;  // linear.cpp, vocab.cpp: CudaOptions::batch_invariant
  std::unique_ptr<cuda::CudnnAttention> cudnn_attention;
  std::string cudnn_unusable;

  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  ~Context();  // releases whatever the members hold (a constructor that throws half-way leaks nothing)

  // Makes `device` current for the calling thread.
  void make_current() const;
  // Waits for the stream, then raises what queued work recorded for the host (an embedding id outside the
  // table); synchronize() and the copies to the host wait through here.
  void wait();
  // embedding.cpp: after a wait, raises the recorded id outside the table, if any, and clears the record.
  void raise_embedding_fault();
  // Scratch of at least `bytes` bytes; growing it first waits for the stream (queued work may still use the
  // old block), so it is meant to be called rarely, with sizes that settle.
  void* reserve_scratch(size_t bytes);
};

// Kernel launches check the launch itself; an asynchronous fault shows at the next synchronize.
inline void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  DLM_CHECK(status == cudaSuccess, "launching {} failed: {}", kernel, cudaGetErrorString(status));
}

// For the launchers of cuda_kernels.h, which return the launch status themselves.
inline void check_launch(cudaError_t status, const char* kernel) {
  DLM_CHECK(status == cudaSuccess, "launching {} failed: {}", kernel, cudaGetErrorString(status));
}

}  // namespace dlm
