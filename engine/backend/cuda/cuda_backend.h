#pragma once
// The CUDA backend: every op of the Backend interface on one device and one stream. Activations are f32 or
// bf16 (f16 weights read as well) with f32 accumulation; matrix products through cuBLASLt. Each op has the
// CPU backend's stem (engine/backend/cpu), which is its reference: <stem>.cpp unpacks the tensors (C++20) and
// calls the launchers of <stem>.cu (C++17 kernels) declared in cuda_kernels.h.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend/backend.h"

namespace dlm {

// Which implementation attention runs on: Auto takes cuDNN's fused attention wherever it applies
// (cudnn_attention.h: bf16, bidirectional, the batch's host offsets given, an engine for the shape) and
// dlm's own kernels elsewhere; Cudnn raises an Error for a call cuDNN cannot take (to measure or test it
// alone); Kernel always runs dlm's kernels.
enum class CudaAttention { Auto, Cudnn, Kernel };

struct CudaOptions {
  CudaAttention attention = CudaAttention::Auto;
  // Record repeating work as CUDA graphs (Backend::records_work); the CLI turns it on unless --cuda-graphs
  // off.
  bool graphs = false;
  // Time cuBLASLt's candidate algorithms for each product shape on its first use and keep the fastest,
  // instead of the heuristic's first choice. Candidates may sum in other orders (split K), so results can
  // differ in the last bits between processes that chose differently.
  bool tune_gemm = false;
  // Let the blocks of dlm's attention kernels share a query block's keys when the call makes too few blocks
  // to fill the device (decoding steps against long caches), merging their partial softmax afterwards.
  bool split_attention_keys = true;
  // Give each request the same bits whatever else is in its batch: matrix products only on cuBLASLt
  // algorithms that sum K in one sequence (no split K, whose split follows the row count), attention never
  // splitting keys across blocks, and one block per row of the sampling kernels. bf16 results of a request
  // otherwise depend on the batch's size through those splits, and a near tie can then fall the other way.
  // Overrides split_attention_keys; cannot be combined with tune_gemm, whose candidates split K.
  bool batch_invariant = false;
};

class CudaBackend final : public Backend {
 public:
  // Error naming the device and the CUDA error when it cannot be used.
  explicit CudaBackend(int device = 0, CudaOptions options = {});
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Device device() const override;
  bool supports_bf16_activations() const override { return true; }
  Buffer allocate(size_t bytes) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void synchronize() override;
  void copy_batch(std::span<const Tensor> sources, std::span<const Tensor> destinations) override;
  Buffer allocate_host(size_t bytes) override;  // pinned
  // Recording captures the stream into a CUDA graph (recording.cpp); on when the options ask for graphs.
  bool records_work() const override;
  void begin_recording() override;
  std::unique_ptr<RecordedWork> end_recording() override;
  void replay(const RecordedWork& work) override;

  void cast(const Tensor& x, const Tensor& out) override;
  void linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
              const Tensor& out) override;
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
                const Tensor& out) override;
  void layer_norm(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, float eps,
                  const Tensor& out) override;
  void add_rms_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, float eps, NormWeight mode,
                    const Tensor& sum_out, const Tensor& norm_out) override;
  void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, const RopeParams& params,
            const Tensor& out) override;
  void rope_qkv(const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq, const RopeParams& params,
                const Tensor& q, const Tensor& k, const Tensor& v) override;
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void silu(const Tensor& x, const Tensor& out) override;
  void gelu(const Tensor& x, GeluApproximation approximation, const Tensor& out) override;
  void swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) override;
  void geglu(const Tensor& gate, const Tensor& up, GeluApproximation approximation,
             const Tensor& out) override;
  void softmax(const Tensor& x, const Tensor& out) override;
  void log_softmax(const Tensor& x, const Tensor& out) override;
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionBatch& batch,
                 const AttentionParams& params, const Tensor& out) override;
  void argmax(const Tensor& logits, const Tensor& out) override;
  void top_k(const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices) override;
  void vocab_stats(const Tensor& logits, const VocabStats& out) override;
  bool predicts_tokens() const override { return true; }
  void predict_tokens(const Tensor& logits, std::span<const TokenRule> rules,
                      std::span<const int32_t> penalized_ids, std::span<TokenPrediction> out) override;

  // With CudaOptions::tune_gemm: what the tuning chose for each product shape timed so far, in that order.
  struct TunedProduct {
    int64_t m = 0, n = 0, k = 0;
    std::string choice;         // the algorithm's configuration, as cuBLASLt's attribute ids
    double chosen_us = 0;       // a run of the choice, W from device memory
    double first_offer_us = 0;  // a run of the heuristic's first offer, what runs without tuning
    int timed = 0;              // candidates timed
  };
  const std::vector<TunedProduct>& tuned_products() const;

  // The state the op files share (stream, cuBLASLt handle and workspace, algorithm cache); cuda_context.h.
  struct Context;
  Context& context() { return *context_; }

 private:
  std::unique_ptr<Context> context_;
};

}  // namespace dlm
