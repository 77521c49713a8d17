#include "samplers/masked_diffusion.h"

#include <algorithm>
#include <cmath>

#include "samplers/schedule.h"
#include "samplers/token_rules.h"

namespace dlm {

MaskedDiffusionTask::MaskedDiffusionTask(Backbone& backbone, const SamplingConfig& config,
                                         const DecodeContext& context, Method method,
                                         const GenerationRequest& request)
    : config_(config),
      context_(context),
      method_(method),
      predictor_(config, context, method),
      rng_{request.seed},
      canvas_(request.prompt) {
  prompt_ = static_cast<int64_t>(request.prompt.size());
  total_ = prompt_ + config.gen_length;
  canvas_.resize(static_cast<size_t>(total_), context.mask_id);
  if (method == Method::Dream) {
    block_length_ = config.gen_length;
    steps_per_block_ = config.steps;
    timesteps_ = dream_timesteps(config.steps, config.eps);
  } else {
    block_length_ = config.block_length;
    blocks_ = config.gen_length / config.block_length;
    steps_per_block_ = config.steps / blocks_;
  }
  if (config.cache != CacheMode::None) cache_ = backbone.new_cache(total_);
  start_block();
}

void MaskedDiffusionTask::start_block() {
  const auto first = canvas_.begin() + block_begin();
  counts_ = num_transfer_tokens(std::count(first, first + block_length_, context_.mask_id), steps_per_block_);
  step_in_block_ = 0;
  refresh_ = true;
}

void MaskedDiffusionTask::add_rows(ForwardBatch& batch, int64_t sequence_begin) {
  const int64_t base = batch.offsets[batch.offsets.size() - 2];  // the sequence just added
  for (int64_t p : candidates_) {
    batch.logit_rows.push_back(static_cast<int32_t>(base + p - context_.logit_shift - sequence_begin));
  }
}

StepPhase MaskedDiffusionTask::plan(ForwardBatch& batch) {
  candidates_.clear();
  for (int64_t p = block_begin(); p < block_end(); ++p) {
    if (canvas_[static_cast<size_t>(p)] == context_.mask_id) candidates_.push_back(p);
  }
  if (!cache_) {
    add_span(batch, canvas_, 0, total_, CacheUse{});
    add_rows(batch, 0);
    if (config_.cfg_scale > 0.0) {
      // Classifier-free guidance: the same canvas with the prompt masked, in the same call.
      unconditional_ = canvas_;
      std::fill(unconditional_.begin(), unconditional_.begin() + prompt_, context_.mask_id);
      add_span(batch, unconditional_, 0, total_, CacheUse{});
      add_rows(batch, 0);
    }
  } else if (refresh_) {
    add_span(batch, canvas_, 0, total_, CacheUse{cache_.get(), CachePolicy::Commit});
    add_rows(batch, 0);
  } else if (config_.cache == CacheMode::Prefix) {
    add_span(batch, canvas_, query_begin(), total_, CacheUse{cache_.get(), CachePolicy::Read});
    add_rows(batch, query_begin());
  } else {
    add_span(batch, canvas_, query_begin(), block_end(), CacheUse{cache_.get(), CachePolicy::Replace});
    add_rows(batch, query_begin());
  }
  return StepPhase::Denoise;
}

std::vector<int64_t> MaskedDiffusionTask::choose(const std::vector<Prediction>& predictions) {
  const int64_t n = static_cast<int64_t>(predictions.size());
  const bool last_dream_step = method_ == Method::Dream && step_in_block_ >= steps_per_block_ - 1;
  if (config_.remasking == Remasking::Origin) {
    // Dream's origin: each masked position is revealed independently with probability 1 - s/t.
    const float p = last_dream_step ? 1.0f : dream_reveal_probability(timesteps_, step_in_block_);
    std::vector<int64_t> chosen;
    for (int64_t i = 0; i < n; ++i) {
      const float u = rng_.uniform_float(draw_step(DrawPurpose::Reveal, static_cast<uint64_t>(step_)),
                                         static_cast<uint64_t>(candidates_[static_cast<size_t>(i)]));
      if (u < p) chosen.push_back(i);
    }
    return chosen;
  }
  CommitParams params{config_.commit, 0, config_.threshold, config_.factor, config_.entropy_bound};
  if (method_ == Method::Dream) {
    params.count = last_dream_step ? n : dream_transfer_count(n, timesteps_, step_in_block_);
  } else if (step_in_block_ < static_cast<int64_t>(counts_.size())) {
    params.count = counts_[static_cast<size_t>(step_in_block_)];
  }
  std::vector<CandidateScore> scores;
  for (const Prediction& p : predictions) scores.push_back(p.score);
  if (method_ == Method::Dream && config_.alg_temp > 0.0 && config_.commit == CommitRule::Schedule) {
    // Dream draws the positions from softmax(confidence / alg_temp) without replacement: the top count of
    // confidence / alg_temp plus Gumbel noise is that draw.
    for (int64_t i = 0; i < n; ++i) {
      const double u = rng_.uniform_double_open(draw_step(DrawPurpose::AlgTemp, static_cast<uint64_t>(step_)),
                                                static_cast<uint64_t>(candidates_[static_cast<size_t>(i)]));
      scores[static_cast<size_t>(i)].confidence =
          scores[static_cast<size_t>(i)].confidence / config_.alg_temp - std::log(-std::log(u));
    }
  }
  return select_commits(scores, params);
}

bool MaskedDiffusionTask::token_rules(StepRules& step) const {
  std::vector<TokenRule>& rules = step.rules;
  const size_t first = rules.size();
  const int64_t n = static_cast<int64_t>(candidates_.size());
  for (int64_t i = 0; i < n; ++i) {
    std::optional<TokenRule> rule =
        predictor_.rule(rng_, static_cast<uint64_t>(step_), candidates_[static_cast<size_t>(i)]);
    if (!rule) {
      rules.resize(first);
      return false;
    }
    if (guided()) {
      rule->guidance_row = static_cast<int32_t>(n + i);
      rule->guidance_scale = static_cast<float>(config_.cfg_scale + 1.0);
    }
    rules.push_back(*rule);
  }
  // The unconditional rows only guide; their own predictions go unused.
  if (guided()) rules.resize(rules.size() + static_cast<size_t>(n));
  return true;
}

void MaskedDiffusionTask::consume(const StepRows& rows) {
  const int64_t n = static_cast<int64_t>(candidates_.size());
  std::vector<Prediction> predictions;
  predictions.reserve(candidates_.size());
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t step = static_cast<uint64_t>(step_);
    const int64_t position = candidates_[static_cast<size_t>(i)];
    if (rows.predicted || !guided()) {
      predictions.push_back(predictor_.predict(rows, i, rng_, step, position));
      continue;
    }
    const std::span<const float> conditional = rows.logits.row(i);
    const std::span<const float> unconditional = rows.logits.row(n + i);
    const float scale = static_cast<float>(config_.cfg_scale + 1.0);
    row_.resize(conditional.size());
    for (size_t v = 0; v < row_.size(); ++v) {
      row_[v] = unconditional[v] + scale * (conditional[v] - unconditional[v]);
    }
    predictions.push_back(predictor_.predict(row_, rng_, step, position));
  }
  for (int64_t chosen : choose(predictions)) {
    canvas_[static_cast<size_t>(candidates_[static_cast<size_t>(chosen)])] =
        predictions[static_cast<size_t>(chosen)].token;
    ++committed_;
  }
  // The prefix cache keeps what precedes the block; the rest is recomputed at every step.
  if (refresh_ && config_.cache == CacheMode::Prefix) cache_->truncate(query_begin());
  refresh_ = false;
  ++step_;
  ++step_in_block_;

  const auto first = canvas_.begin() + block_begin();
  if (std::find(first, first + block_length_, context_.mask_id) != first + block_length_) return;
  if (config_.stop_early && holds_stop(canvas_, prompt_, block_end(), context_.stop_ids)) return finish();
  if (++block_ == blocks_) return finish();
  start_block();
}

void MaskedDiffusionTask::finish() {
  finished_ = true;
  output_ = finish_output(canvas_, prompt_, total_, context_.stop_ids, config_.stop_early, committed_);
  cache_.reset();
}

}  // namespace dlm
