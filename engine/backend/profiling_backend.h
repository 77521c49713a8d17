#pragma once
// A Backend that runs another and, while enabled, times each op call: it waits for the device before and
// after the call, so the time is the op's own (its launches and its kernels), at the price of the overlap
// between the host and the device that a normal run has. For finding where a step's time goes
// (`dlm bench --profile`), never for timing steps.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/backend.h"

namespace dlm {

// The calls of one op on one shape (its operands' dtypes and shapes), and their time.
struct OpTime {
  std::string op;
  std::string shape;
  int64_t calls = 0;
  double seconds = 0.0;
};

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner);

  // Times the calls from now until disabled; disabled, calls pass straight through.
  void set_enabled(bool enabled) { enabled_ = enabled; }
  // Every op and shape timed since the last clear, the most time first.
  std::vector<OpTime> times() const;
  void clear() { times_.clear(); }

  Device device() const override { return inner_->device(); }
  bool supports_bf16_activations() const override { return inner_->supports_bf16_activations(); }
  Buffer allocate(size_t bytes) override { return inner_->allocate(bytes); }
  void copy(const Tensor& src, const Tensor& dst) override;
  void copy_batch(std::span<const Tensor> sources, std::span<const Tensor> destinations) override;
  void synchronize() override { inner_->synchronize(); }

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
  bool predicts_tokens() const override { return inner_->predicts_tokens(); }
  void predict_tokens(const Tensor& logits, std::span<const TokenRule> rules,
                      std::span<const int32_t> penalized_ids, std::span<TokenPrediction> out) override;

 private:
  // Runs `call`, timed under (op, shape) when enabled; `shape` is only built then.
  template <class Shape, class Call>
  void timed(const char* op, Shape&& shape, Call&& call);

  std::unique_ptr<Backend> inner_;
  bool enabled_ = false;
  std::map<std::pair<std::string, std::string>, OpTime> times_;
};

}  // namespace dlm
