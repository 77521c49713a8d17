#pragma once
// The CPU backend: the reference implementation every other backend is tested against. Multi-threaded over
// rows with a ThreadPool; matrix products through OpenBLAS sgemm. Each op lives in the file of the same stem.
#include "engine/backend/backend.h"
#include "engine/core/thread_pool.h"

namespace dlm {

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(int threads = 0);  // 0: one per hardware core

  ThreadPool& pool() { return pool_; }

  Device device() const override { return Device{}; }
  bool supports_bf16_activations() const override { return false; }
  Buffer allocate(size_t bytes) override;
  void copy(const Tensor& src, const Tensor& dst) override;
  void synchronize() override {}

  void cast(const Tensor& x, const Tensor& out) override;
  void linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
              const Tensor& out) override;
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
                const Tensor& out) override;
  void layer_norm(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias, float eps,
                  const Tensor& out) override;
  void rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq, const RopeParams& params,
            const Tensor& out) override;
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

 private:
  ThreadPool pool_;
};

}  // namespace dlm
