#include "samplers/token_sampler.h"

#include <cmath>
#include <limits>

#include "engine/core/buffer.h"
#include "engine/ops/vocab.h"

namespace dlm {

namespace {

// The tensor's values readable on the host: the tensor itself on the CPU, else a copy in `staging`.
Tensor host_readable(Backend& backend, const Tensor& t, HostTensor& staging) {
  if (t.device().kind == DeviceKind::Cpu) return t;
  staging = HostTensor(t.dtype(), t.shape());
  backend.copy(t, staging);
  return staging;
}

// softmax(row)[index], accumulated in double.
float probability_of(const float* row, int64_t vocab, int32_t index) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t v = 0; v < vocab; ++v) max = std::max(max, row[v]);
  double sum = 0.0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
  return static_cast<float>(std::exp(static_cast<double>(row[index]) - max) / sum);
}

void sample_greedy(Backend& backend, const Tensor& logits, WantProbabilities want, SampledTokens& out) {
  const int64_t rows = logits.dim(0);
  Buffer buffer = backend.allocate(static_cast<size_t>(rows) * 4 * 4);
  auto column = [&](DType dtype, int64_t index) { return buffer.view(dtype, Shape{rows}, index * rows * 4); };
  HostTensor tokens(DType::I32, Shape{rows});
  if (want == WantProbabilities::Yes) {
    const VocabStats stats{column(DType::I32, 0), column(DType::F32, 1), column(DType::F32, 2),
                           column(DType::F32, 3)};
    ops::vocab_stats(backend, logits, stats);
    HostTensor probabilities(DType::F32, Shape{rows});
    backend.copy(stats.argmax, tokens);
    backend.copy(stats.max_prob, probabilities);
    out.probabilities = probabilities.to_vector<float>();
  } else {
    const Tensor argmax = column(DType::I32, 0);
    ops::argmax(backend, logits, argmax);
    backend.copy(argmax, tokens);
  }
  out.tokens = tokens.to_vector<int32_t>();
}

void sample_gumbel(Backend& backend, const Tensor& logits, double temperature,
                   std::span<const RowStream> rows, uint64_t step, WantProbabilities want,
                   SampledTokens& out) {
  HostTensor staging;
  const Tensor host = host_readable(backend, logits, staging);
  const int64_t vocab = host.dim(1);
  const uint64_t counter = draw_step(DrawPurpose::Gumbel, step);
  for (size_t r = 0; r < rows.size(); ++r) {
    const float* row = host.data_as<float>() + static_cast<int64_t>(r) * vocab;
    const uint64_t base = static_cast<uint64_t>(rows[r].position) * static_cast<uint64_t>(vocab);
    int32_t best = 0;
    double best_score = -std::numeric_limits<double>::infinity();
    for (int64_t v = 0; v < vocab; ++v) {
      const double u = rows[r].rng.uniform_double_open(counter, base + static_cast<uint64_t>(v));
      const double score = std::exp(static_cast<double>(row[v])) / std::pow(-std::log(u), temperature);
      if (score > best_score) {
        best_score = score;
        best = static_cast<int32_t>(v);
      }
    }
    out.tokens.push_back(best);
    if (want == WantProbabilities::Yes) out.probabilities.push_back(probability_of(row, vocab, best));
  }
}

}  // namespace

void sample_tokens(Backend& backend, const Tensor& logits, double temperature,
                   std::span<const RowStream> rows, uint64_t step, WantProbabilities want,
                   SampledTokens& out) {
  DLM_CHECK(logits.rank() == 2 && logits.dtype() == DType::F32,
            "sample_tokens: logits must be f32 [N, V], got {}", logits.describe());
  DLM_CHECK(static_cast<int64_t>(rows.size()) == logits.dim(0), "sample_tokens: {} row streams for {}",
            rows.size(), logits.describe());
  DLM_CHECK(temperature >= 0.0 && std::isfinite(temperature), "sample_tokens: temperature {}", temperature);
  out.tokens.clear();
  out.probabilities.clear();
  if (rows.empty()) return;
  if (temperature == 0.0) {
    sample_greedy(backend, logits, want, out);
  } else {
    sample_gumbel(backend, logits, temperature, rows, step, want, out);
  }
}

}  // namespace dlm
