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

void check_filters(const TokenRule& rule, size_t row) {
  constexpr std::string_view kOp = "predict_tokens";
  DLM_CHECK(rule.top_k >= 0, "{}: rule {}: top_k {} is negative", kOp, row, rule.top_k);
  DLM_CHECK(rule.top_p >= 0.0 && rule.top_p <= 1.0, "{}: rule {}: top_p {} is outside [0, 1]", kOp, row,
            rule.top_p);
  DLM_CHECK(rule.min_p >= 0.0 && rule.min_p <= 1.0, "{}: rule {}: min_p {} is outside [0, 1]", kOp, row,
            rule.min_p);
  DLM_CHECK(rule.filter_order == FilterOrder::TopKFirst || rule.filter_order == FilterOrder::TopPFirst,
            "{}: rule {}: unknown filter order {}", kOp, row, static_cast<int>(rule.filter_order));
}

// The penalty's ids: a slice of penalized_ids, ascending (so distinct: the kernel penalizes each id once, in
// place), inside the vocabulary.
void check_penalty(const TokenRule& rule, size_t row, std::span<const int32_t> penalized_ids, int64_t vocab) {
  constexpr std::string_view kOp = "predict_tokens";
  DLM_CHECK(std::isfinite(rule.repetition_penalty) && rule.repetition_penalty > 0.0,
            "{}: rule {}: repetition_penalty {} is not a positive finite number", kOp, row,
            rule.repetition_penalty);
  const auto ids = static_cast<int64_t>(penalized_ids.size());
  DLM_CHECK(rule.penalized_begin >= 0 && rule.penalized_count >= 0 &&
                int64_t{rule.penalized_begin} + rule.penalized_count <= ids,
            "{}: rule {}: penalized ids [{}, +{}) are outside the {} given", kOp, row, rule.penalized_begin,
            rule.penalized_count, ids);
  const std::span<const int32_t> own = penalized_ids.subspan(static_cast<size_t>(rule.penalized_begin),
                                                             static_cast<size_t>(rule.penalized_count));
  for (size_t i = 0; i < own.size(); ++i) {
    DLM_CHECK(own[i] >= 0 && own[i] < vocab, "{}: rule {}: penalized id {} is outside [0, {})", kOp, row,
              own[i], vocab);
    DLM_CHECK(i == 0 || own[i - 1] < own[i], "{}: rule {}: penalized ids must ascend, got {} after {}", kOp,
              row, own[i], own[i - 1]);
  }
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
                    std::span<const int32_t> penalized_ids, std::span<TokenPrediction> out) {
  constexpr std::string_view kOp = "predict_tokens";
  const int64_t rows = check_logits(kOp, backend, logits);
  DLM_CHECK(static_cast<int64_t>(rules.size()) == rows && static_cast<int64_t>(out.size()) == rows,
            "{}: {} rules and {} outputs for logits {}", kOp, rules.size(), out.size(), logits.describe());
  for (size_t r = 0; r < rules.size(); ++r) {
    check_token_rule(rules[r], r, rows, logits.dim(1));
    check_filters(rules[r], r);
    check_penalty(rules[r], r, penalized_ids, logits.dim(1));
  }
  // A penalized or divided row changes in place, so no other row may read it as its guidance, nor may it be
  // guided.
  const auto in_place = [](const TokenRule& rule) {
    return rule.repetition_penalty != 1.0 || rule.divide_by_temperature;
  };
  for (size_t r = 0; r < rules.size(); ++r) {
    const int32_t guide = rules[r].guidance_row;
    DLM_CHECK(guide < 0 || (!in_place(rules[r]) && !in_place(rules[static_cast<size_t>(guide)])),
              "{}: rule {}: guidance cannot be combined with a repetition penalty or a division by the "
              "temperature (guidance row {})",
              kOp, r, guide);
  }
  backend.predict_tokens(logits, rules, penalized_ids, out);
}

}  // namespace dlm::ops
