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
  apply_repetition_penalty(row_, sequence_, config_.repetition_penalty);
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

bool AutoregressiveTask::token_rules(std::vector<TokenRule>& rules) const {
  if (needs_host_rows(config_)) return false;
  rules.push_back(scaled_rule(config_.temperature, rng_, static_cast<uint64_t>(step_),
                              static_cast<int64_t>(sequence_.size())));
  return true;
}

void AutoregressiveTask::consume(const StepRows& rows) {
  const int32_t token = rows.predicted ? rows.predictions[0].token : next_token(rows.logits.row(0));
  sequence_.push_back(token);
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
