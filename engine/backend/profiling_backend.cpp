#include "engine/backend/profiling_backend.h"

#include <algorithm>
#include <chrono>

namespace dlm {

namespace {

// "bf16[384,4096]": what distinguishes two calls of one op (the device is the backend's).
std::string operand(const Tensor& t) {
  return fmt::format("{}{}", dtype_name(t.dtype()), t.shape().str());
}

}  // namespace

ProfilingBackend::ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {
  DLM_CHECK(inner_ != nullptr, "ProfilingBackend: no backend to run");
}

template <class Shape, class Call>
void ProfilingBackend::timed(const char* op, Shape&& shape, Call&& call) {
  if (!enabled_) {
    call();
    return;
  }
  using Clock = std::chrono::steady_clock;
  inner_->synchronize();  // what earlier calls queued is theirs
  const Clock::time_point start = Clock::now();
  call();
  inner_->synchronize();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::string key_shape = shape();
  OpTime& time = times_[{op, key_shape}];
  if (time.calls == 0) {
    time.op = op;
    time.shape = std::move(key_shape);
  }
  ++time.calls;
  time.seconds += seconds;
}

std::vector<OpTime> ProfilingBackend::times() const {
  std::vector<OpTime> out;
  for (const auto& [key, time] : times_) out.push_back(time);
  std::stable_sort(out.begin(), out.end(),
                   [](const OpTime& a, const OpTime& b) { return a.seconds > b.seconds; });
  return out;
}

void ProfilingBackend::copy(const Tensor& src, const Tensor& dst) {
  const auto shape = [&] {
    return fmt::format("{} {} -> {}", operand(src), device_name(src.device()), device_name(dst.device()));
  };
  timed("copy", shape, [&] { inner_->copy(src, dst); });
}

void ProfilingBackend::copy_batch(std::span<const Tensor> sources, std::span<const Tensor> destinations) {
  const auto shape = [&] { return fmt::format("{} copies", sources.size()); };
  timed("copy_batch", shape, [&] { inner_->copy_batch(sources, destinations); });
}

void ProfilingBackend::cast(const Tensor& x, const Tensor& out) {
  timed(
      "cast", [&] { return operand(x) + " -> " + operand(out); }, [&] { inner_->cast(x, out); });
}

void ProfilingBackend::linear(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                              const Tensor& out) {
  const auto shape = [&] {
    return fmt::format("x {} w {}{} -> {}", operand(x), operand(weight), bias ? " + bias" : "", operand(out));
  };
  timed("linear", shape, [&] { inner_->linear(x, weight, bias, out); });
}

void ProfilingBackend::embedding(const Tensor& table, const Tensor& ids, const Tensor& out) {
  timed(
      "embedding", [&] { return operand(table) + " ids " + operand(ids); },
      [&] { inner_->embedding(table, ids, out); });
}

void ProfilingBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, NormWeight mode,
                                const Tensor& out) {
  timed(
      "rms_norm", [&] { return operand(x); }, [&] { inner_->rms_norm(x, weight, eps, mode, out); });
}

void ProfilingBackend::layer_norm(const Tensor& x, const Tensor& weight, const std::optional<Tensor>& bias,
                                  float eps, const Tensor& out) {
  timed(
      "layer_norm", [&] { return operand(x); }, [&] { inner_->layer_norm(x, weight, bias, eps, out); });
}

void ProfilingBackend::add_rms_norm(const Tensor& x, const Tensor& residual, const Tensor& weight, float eps,
                                    NormWeight mode, const Tensor& sum_out, const Tensor& norm_out) {
  timed(
      "add_rms_norm", [&] { return operand(x); },
      [&] { inner_->add_rms_norm(x, residual, weight, eps, mode, sum_out, norm_out); });
}

void ProfilingBackend::rope(const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
                            const RopeParams& params, const Tensor& out) {
  timed(
      "rope", [&] { return operand(x); }, [&] { inner_->rope(x, positions, inv_freq, params, out); });
}

void ProfilingBackend::rope_qkv(const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                                const RopeParams& params, const Tensor& q, const Tensor& k, const Tensor& v) {
  timed(
      "rope_qkv", [&] { return operand(qkv); },
      [&] { inner_->rope_qkv(qkv, positions, inv_freq, params, q, k, v); });
}

void ProfilingBackend::add(const Tensor& a, const Tensor& b, const Tensor& out) {
  timed(
      "add", [&] { return operand(a) + " + " + operand(b); }, [&] { inner_->add(a, b, out); });
}

void ProfilingBackend::silu(const Tensor& x, const Tensor& out) {
  timed(
      "silu", [&] { return operand(x); }, [&] { inner_->silu(x, out); });
}

void ProfilingBackend::gelu(const Tensor& x, GeluApproximation approximation, const Tensor& out) {
  timed(
      "gelu", [&] { return operand(x); }, [&] { inner_->gelu(x, approximation, out); });
}

void ProfilingBackend::swiglu(const Tensor& gate, const Tensor& up, const Tensor& out) {
  timed(
      "swiglu", [&] { return operand(gate); }, [&] { inner_->swiglu(gate, up, out); });
}

void ProfilingBackend::geglu(const Tensor& gate, const Tensor& up, GeluApproximation approximation,
                             const Tensor& out) {
  timed(
      "geglu", [&] { return operand(gate); }, [&] { inner_->geglu(gate, up, approximation, out); });
}

void ProfilingBackend::softmax(const Tensor& x, const Tensor& out) {
  timed(
      "softmax", [&] { return operand(x); }, [&] { inner_->softmax(x, out); });
}

void ProfilingBackend::log_softmax(const Tensor& x, const Tensor& out) {
  timed(
      "log_softmax", [&] { return operand(x); }, [&] { inner_->log_softmax(x, out); });
}

void ProfilingBackend::attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                 const AttentionBatch& batch, const AttentionParams& params,
                                 const Tensor& out) {
  const auto shape = [&] {
    return fmt::format("q {} k {} in {} sequences", operand(q), operand(k), batch.query_offsets.numel() - 1);
  };
  timed("attention", shape, [&] { inner_->attention(q, k, v, batch, params, out); });
}

void ProfilingBackend::argmax(const Tensor& logits, const Tensor& out) {
  timed(
      "argmax", [&] { return operand(logits); }, [&] { inner_->argmax(logits, out); });
}

void ProfilingBackend::top_k(const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices) {
  timed(
      "top_k", [&] { return fmt::format("{} k {}", operand(logits), k); },
      [&] { inner_->top_k(logits, k, values, indices); });
}

void ProfilingBackend::vocab_stats(const Tensor& logits, const VocabStats& out) {
  timed(
      "vocab_stats", [&] { return operand(logits); }, [&] { inner_->vocab_stats(logits, out); });
}

void ProfilingBackend::predict_tokens(const Tensor& logits, std::span<const TokenRule> rules,
                                      std::span<const int32_t> penalized_ids,
                                      std::span<TokenPrediction> out) {
  timed(
      "predict_tokens", [&] { return operand(logits); },
      [&] { inner_->predict_tokens(logits, rules, penalized_ids, out); });
}

}  // namespace dlm
