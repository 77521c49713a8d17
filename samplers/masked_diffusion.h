#pragma once
// Full-canvas masked diffusion: LLaDA's semi-autoregressive blocks with a fixed number of commits per step,
// Dream's timestep schedule over the whole canvas, Fast-dLLM's threshold and factor rules and its prefix and
// dual caches. The canvas is the prompt followed by gen_length mask tokens; every step predicts the current
// block's masked positions and commits some of them (samplers/README.md).
#include <cstdint>
#include <memory>
#include <vector>

#include "samplers/decode_task.h"
#include "samplers/prediction.h"

namespace dlm {

class MaskedDiffusionTask final : public DecodeTask {
 public:
  // `method` is Llada or Dream; config and context outlive the task.
  MaskedDiffusionTask(Backbone& backbone, const SamplingConfig& config, const DecodeContext& context,
                      Method method, const GenerationRequest& request);

  StepPhase plan(ForwardBatch& batch) override;
  bool token_rules(StepRules& step) const override;
  void consume(const StepRows& rows) override;
  bool finished() const override { return finished_; }
  TaskOutput output() const override { return output_; }
  std::span<const int32_t> generated() const override {
    return std::span(canvas_).subspan(prompt_, total_ - prompt_);
  }

 private:
  int64_t block_begin() const { return prompt_ + block_ * block_length_; }
  int64_t block_end() const { return block_begin() + block_length_; }
  // The first position of a cached step's rows: one before the block when logits are shifted, so the
  // block's first position has its row.
  int64_t query_begin() const { return block_begin() - context_.logit_shift; }
  void start_block();
  void add_rows(ForwardBatch& batch, int64_t sequence_begin);
  bool guided() const { return !cache_ && config_.cfg_scale > 0.0; }
  std::vector<int64_t> choose(const std::vector<Prediction>& predictions);
  void finish();

  const SamplingConfig& config_;
  const DecodeContext& context_;
  Method method_;
  Predictor predictor_;
  RngStream rng_;
  std::vector<int32_t> canvas_, unconditional_;
  int64_t prompt_ = 0, total_ = 0;
  int64_t blocks_ = 1, block_length_ = 0, steps_per_block_ = 0;
  int64_t block_ = 0, step_in_block_ = 0, step_ = 0, committed_ = 0;
  std::vector<int64_t> counts_;   // Llada: commits per step of the current block
  std::vector<float> timesteps_;  // Dream
  std::unique_ptr<SequenceCache> cache_;
  bool refresh_ = true;              // the next forward runs the whole canvas and rebuilds the cache
  std::vector<int64_t> candidates_;  // the masked positions whose rows the last plan asked for
  std::vector<float> row_;
  bool finished_ = false;
  TaskOutput output_;
};

}  // namespace dlm
