// CudaOptions::tune_gemm (linear_tuning.h). cuBLASLt's heuristic ranks its algorithms by a model of the
// device; for products of few rows, whose tiles leave multiprocessors idle, its first offer is not always the
// fastest, so the tuning times a wider set: the offers, their split-K variants, and every configuration the
// algorithms for the key's types accept. Partial sums of split K are added in f32 (CUBLASLT_REDUCTION_SCHEME_
// COMPUTE_TYPE), as linear.cpp asks of the heuristic.
#include "engine/backend/cuda/linear_tuning.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <limits>
#include <set>
#include <vector>

namespace dlm::cuda {
namespace {

constexpr std::array<int32_t, 6> kKSplits = {2, 3, 4, 8, 16, 32};  // the heuristic's offers' split-K variants
// And every enumerated tile and stages configuration's (fewer: there are many more configurations).
constexpr std::array<int32_t, 3> kConfigurationKSplits = {2, 4, 8};
constexpr size_t kMaxCandidates = 1024;  // bounds the first call's tuning time
constexpr int kMaxAlgoIds = 256;
constexpr int kTimedRuns = 3;
// A candidate whose untimed first run is this many times the best so far is not timed further.
constexpr float kPruneFactor = 3.0f;

using AlgoBits = std::array<uint64_t, 8>;

AlgoBits bits_of(const cublasLtMatmulAlgo_t& algo) {
  AlgoBits bits{};
  static_assert(sizeof algo == sizeof bits);
  std::memcpy(bits.data(), &algo, sizeof bits);
  return bits;
}

// The candidate list with a set of what it holds, so a configuration is timed once.
class Candidates {
 public:
  Candidates(const CudaBackend::Context& ctx, LinearPlan& plan) : ctx_(ctx), plan_(plan) {
    for (const cublasLtMatmulAlgo_t& algo : plan.candidates) seen_.insert(bits_of(algo));
  }
  bool full() const { return plan_.candidates.size() >= kMaxCandidates; }

  // Adds `algo` where cuBLASLt accepts it for the plan within the workspace and it is new.
  void add(const cublasLtMatmulAlgo_t& algo) {
    if (full() || !seen_.insert(bits_of(algo)).second) return;
    cublasLtMatmulHeuristicResult_t check{};
    if (cublasLtMatmulAlgoCheck(ctx_.lt, plan_.desc, plan_.a, plan_.b, plan_.d, plan_.d, &algo, &check) ==
            CUBLAS_STATUS_SUCCESS &&
        check.workspaceSize <= ctx_.workspace_bytes) {
      plan_.candidates.push_back(algo);
    }
  }

 private:
  const CudaBackend::Context& ctx_;
  LinearPlan& plan_;
  std::set<AlgoBits> seen_;
};

template <class T>
bool set_config(cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attribute, T value) {
  return cublasLtMatmulAlgoConfigSetAttribute(&algo, attribute, &value, sizeof value) ==
         CUBLAS_STATUS_SUCCESS;
}

template <class T>
T config_of(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attribute) {
  T value{};
  size_t written = 0;
  cublasLtMatmulAlgoConfigGetAttribute(&algo, attribute, &value, sizeof value, &written);
  return value;
}

// An array capability (tile or stages ids); `fallback` alone where the algorithm lists none.
std::vector<uint32_t> cap_ids(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoCapAttributes_t attribute,
                              uint32_t fallback) {
  size_t bytes = 0;
  std::vector<uint32_t> ids;
  if (cublasLtMatmulAlgoCapGetAttribute(&algo, attribute, nullptr, 0, &bytes) == CUBLAS_STATUS_SUCCESS &&
      bytes > 0) {
    ids.resize(bytes / sizeof(uint32_t));
    if (cublasLtMatmulAlgoCapGetAttribute(&algo, attribute, ids.data(), bytes, &bytes) !=
        CUBLAS_STATUS_SUCCESS)
      ids.clear();
  }
  if (ids.empty()) ids.push_back(fallback);
  return ids;
}

// Whether `algo` takes split K with the partial sums added in f32.
bool splits_in_f32(const cublasLtMatmulAlgo_t& algo) {
  int32_t support = 0;
  uint32_t schemes = 0;
  size_t written = 0;
  return cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &support, sizeof support,
                                           &written) == CUBLAS_STATUS_SUCCESS &&
         support != 0 &&
         cublasLtMatmulAlgoCapGetAttribute(&algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes,
                                           sizeof schemes, &written) == CUBLAS_STATUS_SUCCESS &&
         (schemes & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE) != 0;
}

// `algo` with K split `splits` ways, or nothing where cuBLASLt refuses the setting.
void add_split(Candidates& candidates, cublasLtMatmulAlgo_t algo, int32_t splits) {
  const uint32_t scheme = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  if (set_config(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, splits) &&
      set_config(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, scheme)) {
    candidates.add(algo);
  }
}

// Every tile and stages configuration of every algorithm for the key's types, K whole or split.
void add_configurations(const CudaBackend::Context& ctx, const LinearAlgoKey& key, Candidates& candidates) {
  const auto ab = static_cast<cudaDataType_t>(key.ab_type);
  const auto d = static_cast<cudaDataType_t>(key.d_type);
  std::array<int, kMaxAlgoIds> ids{};
  int id_count = 0;
  if (cublasLtMatmulAlgoGetIds(ctx.lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, ab, ab, d, d, kMaxAlgoIds, ids.data(),
                               &id_count) != CUBLAS_STATUS_SUCCESS) {
    return;
  }
  for (int i = 0; i < id_count && !candidates.full(); ++i) {
    cublasLtMatmulAlgo_t algo{};
    if (cublasLtMatmulAlgoInit(ctx.lt, CUBLAS_COMPUTE_32F, CUDA_R_32F, ab, ab, d, d,
                               ids[static_cast<size_t>(i)], &algo) != CUBLAS_STATUS_SUCCESS) {
      continue;
    }
    const bool splits = splits_in_f32(algo);
    for (const uint32_t tile : cap_ids(algo, CUBLASLT_ALGO_CAP_TILE_IDS, CUBLASLT_MATMUL_TILE_UNDEFINED)) {
      for (const uint32_t stages :
           cap_ids(algo, CUBLASLT_ALGO_CAP_STAGES_IDS, CUBLASLT_MATMUL_STAGES_UNDEFINED)) {
        cublasLtMatmulAlgo_t config = algo;
        if (!set_config(config, CUBLASLT_ALGO_CONFIG_TILE_ID, tile) ||
            !set_config(config, CUBLASLT_ALGO_CONFIG_STAGES_ID, stages)) {
          continue;
        }
        candidates.add(config);
        if (!splits) continue;
        for (const int32_t split : kConfigurationKSplits) add_split(candidates, config, split);
      }
    }
  }
}

// The configuration attributes that tell algorithms apart, as numbers (cublasLt.h names them).
std::string describe(const cublasLtMatmulAlgo_t& algo) {
  return fmt::format("algo {} tile {} stages {} split-K {} swizzle {} custom {} inner {} cluster {}",
                     config_of<int32_t>(algo, CUBLASLT_ALGO_CONFIG_ID),
                     config_of<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_TILE_ID),
                     config_of<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                     config_of<int32_t>(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
                     config_of<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
                     config_of<uint32_t>(algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION),
                     config_of<uint16_t>(algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID),
                     config_of<uint16_t>(algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
}

class Event {
 public:
  Event() { DLM_CUDA_CHECK(cudaEventCreate(&event_)); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

float elapsed_ms(const Event& start, const Event& stop) {
  float ms = 0.0f;
  DLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return ms;
}

// Device memory written between timed runs to evict W from the L2 cache: twice its size.
class L2Flush {
 public:
  explicit L2Flush(int device) {
    int l2_bytes = 0;
    DLM_CUDA_CHECK(cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, device));
    bytes_ = 2 * static_cast<size_t>(l2_bytes);
    DLM_CUDA_CHECK(cudaMalloc(&data_, bytes_));
  }
  ~L2Flush() { cudaFree(data_); }
  L2Flush(const L2Flush&) = delete;
  L2Flush& operator=(const L2Flush&) = delete;
  void queue(cudaStream_t stream) const { DLM_CUDA_CHECK(cudaMemsetAsync(data_, 0, bytes_, stream)); }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace

cublasStatus_t queue_matmul(const CudaBackend::Context& ctx, const LinearPlan& plan,
                            const cublasLtMatmulAlgo_t& algo, const void* w, const void* x, void* d) {
  const float alpha = 1.0f;
  const float beta = 0.0f;
  return cublasLtMatmul(ctx.lt, plan.desc, &alpha, w, plan.a, x, plan.b, &beta, d, plan.d, d, plan.d, &algo,
                        ctx.workspace, ctx.workspace_bytes, ctx.stream);
}

void add_tuning_candidates(const CudaBackend::Context& ctx, const LinearAlgoKey& key, LinearPlan& plan) {
  Candidates candidates(ctx, plan);
  const std::vector<cublasLtMatmulAlgo_t> offers = plan.candidates;
  for (const cublasLtMatmulAlgo_t& offer : offers) {
    if (!splits_in_f32(offer)) continue;
    for (const int32_t splits : kKSplits) add_split(candidates, offer, splits);
  }
  add_configurations(ctx, key, candidates);
}

void tune(CudaBackend::Context& ctx, const LinearAlgoKey& key, LinearPlan& plan, const void* w, const void* x,
          void* d) {
  const L2Flush flush(ctx.device);
  const Event first_start, first_stop;
  std::array<Event, kTimedRuns> starts, stops;
  float best_ms = std::numeric_limits<float>::infinity();
  float first_offer_ms = 0.0f;
  int timed = 0;
  for (size_t c = 0; c < plan.candidates.size(); ++c) {
    const cublasLtMatmulAlgo_t& algo = plan.candidates[c];
    const auto run = [&] { return queue_matmul(ctx, plan, algo, w, x, d); };
    flush.queue(ctx.stream);
    DLM_CUDA_CHECK(cudaEventRecord(first_start.get(), ctx.stream));
    if (run() != CUBLAS_STATUS_SUCCESS) continue;  // cuBLASLt refused it for these operands
    DLM_CUDA_CHECK(cudaEventRecord(first_stop.get(), ctx.stream));
    DLM_CUDA_CHECK(cudaEventSynchronize(first_stop.get()));
    if (c > 0 && elapsed_ms(first_start, first_stop) > kPruneFactor * best_ms) continue;
    for (int i = 0; i < kTimedRuns; ++i) {
      flush.queue(ctx.stream);
      DLM_CUDA_CHECK(cudaEventRecord(starts[static_cast<size_t>(i)].get(), ctx.stream));
      DLM_CUBLAS_CHECK(run());
      DLM_CUDA_CHECK(cudaEventRecord(stops[static_cast<size_t>(i)].get(), ctx.stream));
    }
    DLM_CUDA_CHECK(cudaEventSynchronize(stops.back().get()));
    float ms = 0.0f;
    for (int i = 0; i < kTimedRuns; ++i)
      ms += elapsed_ms(starts[static_cast<size_t>(i)], stops[static_cast<size_t>(i)]) / kTimedRuns;
    ++timed;
    if (c == 0) first_offer_ms = ms;
    if (ms < best_ms) {
      best_ms = ms;
      plan.algo = algo;
    }
  }
  ctx.tuned_products.push_back(
      {key.m, key.n, key.k, describe(plan.algo), 1e3 * best_ms, 1e3 * first_offer_ms, timed});
  plan.candidates.clear();
}

}  // namespace dlm::cuda
