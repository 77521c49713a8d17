#include "engine/ops/vocab.h"

#include <cmath>
#include <cstdint>
#include <limits>

#include "engine/ops/check.h"

namespace dlm::ops {
namespace {

// logits [N, V] f32 with 1 <= V, and V small enough for i32 indices. Returns N.
int64_t check_logits(std::string_view op, const Backend& backend, const Tensor& logits) {
  check_operand(op, "logits", logits, backend, {DType::F32});
  check_rank(op, "logits", logits, 2);
  const int64_t vocab = logits.dim(1);
  DLM_CHECK(vocab >= 1 && vocab <= std::numeric_limits<int32_t>::max(),
            "{}: logits must have a vocabulary of 1 to 2^31-1 entries, got {}", op, logits.describe());
  return logits.dim(0);
}

void check_token_rule(const TokenRule& rule, size_t row, int64_t rows, int64_t vocab) {
  constexpr std::string_view kOp = "predict_tokens";
  const auto id_ok = [&](int32_t id) { return id >= -1 && id < vocab; };
  DLM_CHECK(
      rule.guidance_row >= -1 && rule.guidance_row < rows && rule.guidance_row != static_cast<int64_t>(row),
      "{}: rule {}: guidance_row {} is not another of the {} rows", kOp, row, rule.guidance_row, rows);
  DLM_CHECK(std::isfinite(rule.guidance_scale), "{}: rule {}: guidance_scale {} is not finite", kOp, row,
            rule.guidance_scale);
  DLM_CHECK(id_ok(rule.suppress_before_draw), "{}: rule {}: suppress_before_draw {} is outside [-1, {})", kOp,
            row, rule.suppress_before_draw, vocab);
  DLM_CHECK(id_ok(rule.never_drawn), "{}: rule {}: never_drawn {} is outside [-1, {})", kOp, row,
            rule.never_drawn, vocab);
  bool score_only = false;
  for (int32_t id : rule.suppress_before_scores) {
    DLM_CHECK(id_ok(id), "{}: rule {}: suppress_before_scores id {} is outside [-1, {})", kOp, row, id,
              vocab);
    score_only = score_only || id >= 0;
  }
  const bool needs_temperature = rule.draw != TokenDraw::Argmax || rule.divide_by_temperature;
  DLM_CHECK(!needs_temperature || (std::isfinite(rule.temperature) && rule.temperature > 0.0),
            "{}: rule {}: a draw or division needs a positive finite temperature, got {}", kOp, row,
            rule.temperature);
  DLM_CHECK(
      rule.draw == TokenDraw::Argmax || rule.draw == TokenDraw::Gumbel || rule.draw == TokenDraw::Categorical,
      "{}: rule {}: unknown draw {}", kOp, row, static_cast<int>(rule.draw));
  DLM_CHECK(!(score_only && rule.draw == TokenDraw::Categorical),
            "{}: rule {}: a Categorical draw samples from the score row and takes no score-only suppressions",
            kOp, row);
}

}  // namespace

void argmax(Backend& backend, const Tensor& logits, const Tensor& out) {
  constexpr std::string_view kOp = "argmax";
  const int64_t rows = check_logits(kOp, backend, logits);
  check_operand(kOp, "out", out, backend, {DType::I32});
  check_shape(kOp, "out", out, Shape{rows});
  backend.argmax(logits, out);
}

void top_k(Backend& backend, const Tensor& logits, int64_t k, const Tensor& values, const Tensor& indices) {
  constexpr std::string_view kOp = "top_k";
  const int64_t rows = check_logits(kOp, backend, logits);
  DLM_CHECK(k >= 1 && k <= logits.dim(1), "{}: k must be in [1, {}] (the vocabulary), got {}", kOp,
            logits.dim(1), k);
  check_operand(kOp, "values", values, backend, {DType::F32});
  check_operand(kOp, "indices", indices, backend, {DType::I32});
  check_shape(kOp, "values", values, Shape{rows, k});
  check_shape(kOp, "indices", indices, Shape{rows, k});
  backend.top_k(logits, k, values, indices);
}

void vocab_stats(Backend& backend, const Tensor& logits, const VocabStats& out) {
  constexpr std::string_view kOp = "vocab_stats";
  const int64_t rows = check_logits(kOp, backend, logits);
  check_operand(kOp, "argmax", out.argmax, backend, {DType::I32});
  check_operand(kOp, "max_prob", out.max_prob, backend, {DType::F32});
  check_operand(kOp, "entropy", out.entropy, backend, {DType::F32});
  check_operand(kOp, "margin", out.margin, backend, {DType::F32});
  check_shape(kOp, "argmax", out.argmax, Shape{rows});
  check_shape(kOp, "max_prob", out.max_prob, Shape{rows});
  check_shape(kOp, "entropy", out.entropy, Shape{rows});
  check_shape(kOp, "margin", out.margin, Shape{rows});
  backend.vocab_stats(logits, out);
}

void predict_tokens(Backend& backend, const Tensor& logits, std::span<const TokenRule> rules,
                    std::span<TokenPrediction> out) {
  constexpr std::string_view kOp = "predict_tokens";
  const int64_t rows = check_logits(kOp, backend, logits);
  DLM_CHECK(static_cast<int64_t>(rules.size()) == rows && static_cast<int64_t>(out.size()) == rows,
            "{}: {} rules and {} outputs for logits {}", kOp, rules.size(), out.size(), logits.describe());
  for (size_t r = 0; r < rules.size(); ++r) check_token_rule(rules[r], r, rows, logits.dim(1));
  backend.predict_tokens(logits, rules, out);
}

}  // namespace dlm::ops
