#pragma once
// CudaOptions::tune_gemm for linear.cpp's plans: the candidate algorithms of a product shape, and timing them
// on its first call (linear_tuning.cpp).
#include "engine/backend/cuda/cuda_context.h"

namespace dlm::cuda {

// Queues D = W x with `algo` (beta 0: C is not read, so whatever D held never leaks in).
cublasStatus_t queue_matmul(const CudaBackend::Context& ctx, const LinearPlan& plan,
                            const cublasLtMatmulAlgo_t& algo, const void* w, const void* x, void* d);

// Adds to plan.candidates (which holds the heuristic's offers, its first choice first) what the tuning also
// times: each offer with K split other ways, and every configuration of cuBLASLt's algorithms for the key's
// types (each algorithm's tiles and stages, K whole or split) that cuBLASLt accepts for the plan.
void add_tuning_candidates(const CudaBackend::Context& ctx, const LinearAlgoKey& key, LinearPlan& plan);

// Times plan.candidates on this call's operands, the L2 cache flushed before each timed run so that W comes
// from device memory as in a forward; keeps the fastest in plan.algo, empties the candidates and records the
// choice in ctx.tuned_products. Waits for the device.
void tune(CudaBackend::Context& ctx, const LinearAlgoKey& key, LinearPlan& plan, const void* w, const void* x,
          void* d);

}  // namespace dlm::cuda
