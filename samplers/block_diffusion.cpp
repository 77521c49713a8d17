#include "samplers/block_diffusion.h"

#include <algorithm>

#include "samplers/schedule.h"

namespace dlm {

int64_t BlockDiffusionTask::canvas_length(int64_t prompt, const SamplingConfig& config) {
  const int64_t block = config.block_length;
  return (prompt + config.gen_length + block - 1) / block * block;
}

BlockDiffusionTask::BlockDiffusionTask(Backbone& backbone, const SamplingConfig& config,
                                       const DecodeContext& context, const GenerationRequest& request)
    : config_(config),
      context_(context),
      predictor_(config, context, Method::BlockDiffusion),
      rng_{request.seed},
      canvas_(request.prompt) {
  prompt_ = static_cast<int64_t>(request.prompt.size());
  generated_end_ = prompt_ + config.gen_length;
  total_ = canvas_length(prompt_, config);
  canvas_.resize(static_cast<size_t>(total_), context.mask_id);
  block_length_ = config.block_length;
  sub_length_ = config.sub_block_length > 0 ? config.sub_block_length : block_length_;
  blocks_ = total_ / block_length_;
  counts_ = num_transfer_tokens(sub_length_, config.steps);
  cache_ = backbone.new_cache(total_);
  block_ = prompt_ / block_length_;  // the prompt's whole blocks are prefilled
  if (block_ == 0) start_block(0);
}

bool BlockDiffusionTask::masked(int64_t begin, int64_t end) const {
  return std::find(canvas_.begin() + begin, canvas_.begin() + end, context_.mask_id) != canvas_.begin() + end;
}

void BlockDiffusionTask::start_block(int64_t block) {
  block_ = block;
  sub_block_ = -1;
  stage_ = Stage::Denoise;
  if (!next_sub_block()) end_block();  // a block of one filled by its first token
}

bool BlockDiffusionTask::next_sub_block() {
  step_in_sub_ = 0;
  while (++sub_block_ * sub_length_ < block_length_) {
    if (masked(sub_begin(), sub_end())) return true;
  }
  return false;
}

StepPhase BlockDiffusionTask::plan(ForwardBatch& batch) {
  const int32_t base = static_cast<int32_t>(batch.tokens());
  const bool shifted = context_.logit_shift != 0;
  wants_last_row_ = false;
  candidates_.clear();
  switch (stage_) {
    case Stage::Prefill:
      add_span(batch, canvas_, 0, block_begin(), CacheUse{cache_.get(), CachePolicy::Commit});
      wants_last_row_ = shifted && canvas_[static_cast<size_t>(block_begin())] == context_.mask_id;
      break;
    case Stage::Denoise:
      add_span(batch, canvas_, block_begin(), block_end(), CacheUse{cache_.get(), CachePolicy::Read});
      for (int64_t p = sub_begin(); p < sub_end(); ++p) {
        if (canvas_[static_cast<size_t>(p)] != context_.mask_id) continue;
        candidates_.push_back(p);
        batch.logit_rows.push_back(base + static_cast<int32_t>(p - context_.logit_shift - block_begin()));
      }
      return StepPhase::Denoise;
    case Stage::Commit:
      add_span(batch, canvas_, block_begin(), block_end(), CacheUse{cache_.get(), CachePolicy::Commit});
      wants_last_row_ = shifted;
      break;
  }
  if (wants_last_row_) batch.logit_rows.push_back(static_cast<int32_t>(batch.tokens() - 1));
  return stage_ == Stage::Prefill ? StepPhase::Prefill : StepPhase::Commit;
}

bool BlockDiffusionTask::token_rules(StepRules& step) const {
  std::vector<TokenRule>& rules = step.rules;
  const size_t first = rules.size();
  const auto add = [&](int64_t position) {
    std::optional<TokenRule> rule = predictor_.rule(rng_, static_cast<uint64_t>(step_), position);
    if (rule) rules.push_back(*rule);
    return rule.has_value();
  };
  bool ok = true;
  if (stage_ == Stage::Denoise) {
    for (int64_t p : candidates_) ok = ok && add(p);
  } else if (wants_last_row_) {
    ok = add(next_block() * block_length_);
  }
  if (!ok) rules.resize(first);
  return ok;
}

void BlockDiffusionTask::consume(const StepRows& rows) {
  if (stage_ == Stage::Denoise) {
    denoise(rows);
  } else {
    // Prefill or commit done: the next block starts, its first token from the last row when asked for.
    const int64_t next = next_block();
    if (wants_last_row_) {
      const int64_t position = next * block_length_;
      canvas_[static_cast<size_t>(position)] =
          predictor_.predict(rows, 0, rng_, static_cast<uint64_t>(step_), position).token;
      if (position < generated_end_) ++committed_;  // the padding past gen_length is not generated
    }
    start_block(next);
  }
  ++step_;
}

void BlockDiffusionTask::denoise(const StepRows& rows) {
  std::vector<Prediction> predictions;
  std::vector<CandidateScore> scores;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    predictions.push_back(predictor_.predict(rows, static_cast<int64_t>(i), rng_,
                                             static_cast<uint64_t>(step_), candidates_[i]));
    scores.push_back(predictions.back().score);
  }
  const int64_t count =
      step_in_sub_ < static_cast<int64_t>(counts_.size()) ? counts_[static_cast<size_t>(step_in_sub_)] : 1;
  const CommitParams params{config_.commit, count, config_.threshold, config_.factor, config_.entropy_bound};
  for (int64_t chosen : select_commits(scores, params)) {
    const int64_t position = candidates_[static_cast<size_t>(chosen)];
    canvas_[static_cast<size_t>(position)] = predictions[static_cast<size_t>(chosen)].token;
    if (position < generated_end_) ++committed_;  // the padding past gen_length is not generated
  }
  ++step_in_sub_;
  if (masked(sub_begin(), sub_end()) || next_sub_block()) return;
  end_block();
}

void BlockDiffusionTask::end_block() {
  const int64_t generated_in_block = std::min(generated_end_, block_end());
  if (config_.stop_early && holds_stop(canvas_, prompt_, generated_in_block, context_.stop_ids))
    return finish();
  if (block_ + 1 == blocks_) return finish();
  stage_ = Stage::Commit;
}

void BlockDiffusionTask::finish() {
  finished_ = true;
  output_ =
      finish_output(canvas_, prompt_, generated_end_, context_.stop_ids, config_.stop_early, committed_);
  cache_.reset();
}

}  // namespace dlm
