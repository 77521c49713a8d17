#include "samplers/autoregressive.h"

#include <algorithm>

#include "samplers/prediction.h"
#include "samplers/token_rules.h"

namespace dlm {

AutoregressiveTask::AutoregressiveTask(Backbone& backbone, const SamplingConfig& config,
                                       const DecodeContext& context, const GenerationRequest& request)
    : config_(config), context_(context), rng_{request.seed}, sequence_(request.prompt) {
  prompt_ = static_cast<int64_t>(request.prompt.size());
  cache_ = backbone.new_cache(prompt_ + config.gen_length);
  if (config.repetition_penalty != 1.0) {
    penalized_ = sequence_;
    std::sort(penalized_.begin(), penalized_.end());
    penalized_.erase(std::unique(penalized_.begin(), penalized_.end()), penalized_.end());
  }
}

StepPhase AutoregressiveTask::plan(ForwardBatch& batch) {
  // The prefill writes the whole prompt; later steps write the token drawn last.
  const int64_t begin = step_ == 0 ? 0 : static_cast<int64_t>(sequence_.size()) - 1;
  add_span(batch, sequence_, begin, static_cast<int64_t>(sequence_.size()),
           CacheUse{cache_.get(), CachePolicy::Commit});
  batch.logit_rows.push_back(static_cast<int32_t>(batch.tokens() - 1));
  return step_ == 0 ? StepPhase::Prefill : StepPhase::Denoise;
}

int32_t AutoregressiveTask::next_token(std::span<const float> logits) {
  row_.assign(logits.begin(), logits.end());
  apply_repetition_penalty(row_, penalized_, config_.repetition_penalty);
  if (config_.temperature == 0.0) return argmax(row_);
  apply_temperature(row_, config_.temperature);
  filter_top_k(row_, config_.top_k);
  filter_top_p(row_, config_.top_p);
  filter_min_p(row_, config_.min_p);
  softmax(row_, probabilities_);
  const int64_t position = static_cast<int64_t>(sequence_.size());
  return sample_categorical(probabilities_, rng_.uniform_double_open(draw_step(DrawPurpose::Categorical,
                                                                               static_cast<uint64_t>(step_)),
                                                                     static_cast<uint64_t>(position)));
}

bool AutoregressiveTask::ends_with_stop_string() {
  if (config_.stop_strings.empty() || !context_.detokenize) return false;
  const std::span<const int32_t> generated(sequence_.data() + prompt_, sequence_.size() - prompt_);
  const std::string text = context_.detokenize(generated);
  return std::any_of(config_.stop_strings.begin(), config_.stop_strings.end(),
                     [&](const std::string& stop) { return text.find(stop) != std::string::npos; });
}

bool AutoregressiveTask::token_rules(StepRules& step) const {
  TokenRule rule = scaled_rule(config_.temperature, rng_, static_cast<uint64_t>(step_),
                               static_cast<int64_t>(sequence_.size()));
  rule.entropies = false;           // the task takes the token alone
  if (config_.temperature > 0.0) {  // greedy decoding takes the penalized argmax, unfiltered
    set_filters(rule, config_, FilterOrder::TopKFirst);
    rule.min_p = config_.min_p;
  }
  if (config_.repetition_penalty != 1.0) {
    rule.repetition_penalty = config_.repetition_penalty;
    rule.penalized_begin = static_cast<int32_t>(step.penalized_ids.size());
    rule.penalized_count = static_cast<int32_t>(penalized_.size());
    step.penalized_ids.insert(step.penalized_ids.end(), penalized_.begin(), penalized_.end());
  }
  step.rules.push_back(rule);
  return true;
}

void AutoregressiveTask::consume(const StepRows& rows) {
  const int32_t token = rows.predicted ? rows.predictions[0].token : next_token(rows.logits.row(0));
  sequence_.push_back(token);
  if (config_.repetition_penalty != 1.0) {
    const auto at = std::lower_bound(penalized_.begin(), penalized_.end(), token);
    if (at == penalized_.end() || *at != token) penalized_.insert(at, token);
  }
  ++step_;
  const bool stop_id =
      std::find(context_.stop_ids.begin(), context_.stop_ids.end(), token) != context_.stop_ids.end();
  if (config_.stop_early && stop_id) return finish(FinishReason::StopToken);
  if (ends_with_stop_string()) return finish(FinishReason::StopString);
  if (static_cast<int64_t>(sequence_.size()) - prompt_ == config_.gen_length) finish(FinishReason::Length);
}

void AutoregressiveTask::finish(FinishReason reason) {
  finished_ = true;
  output_.tokens.assign(sequence_.begin() + prompt_, sequence_.end());
  output_.finish = reason;
  output_.committed = static_cast<int64_t>(output_.tokens.size());
  cache_.reset();
}

}  // namespace dlm
