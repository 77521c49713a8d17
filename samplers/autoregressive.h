#pragma once
// Autoregressive decoding against a K/V cache: the prompt is prefilled once, then every step forwards the
// last token and draws the next from its row: repetition penalty, temperature, top-k, top-p, min-p (in
// transformers' order), greedy at temperature 0. A request ends at a stop id, a stop string, or gen_length.
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/rng.h"
#include "engine/io/generation_config.h"
#include "samplers/decode_context.h"
#include "samplers/decode_task.h"

namespace dlm {

class AutoregressiveTask final : public DecodeTask {
 public:
  // config and context outlive the task.
  AutoregressiveTask(Backbone& backbone, const SamplingConfig& config, const DecodeContext& context,
                     const GenerationRequest& request);

  StepPhase plan(ForwardBatch& batch) override;
  bool token_rules(StepRules& step) const override;
  void consume(const StepRows& rows) override;
  bool finished() const override { return finished_; }
  TaskOutput output() const override { return output_; }
  std::span<const int32_t> generated() const override { return std::span(sequence_).subspan(prompt_); }

 private:
  int32_t next_token(std::span<const float> logits);
  bool ends_with_stop_string();
  void finish(FinishReason reason);

  const SamplingConfig& config_;
  const DecodeContext& context_;
  RngStream rng_;
  std::vector<int32_t> sequence_;   // prompt, then the generated tokens
  std::vector<int32_t> penalized_;  // with a repetition penalty: sequence_'s distinct ids, ascending
  int64_t prompt_ = 0;
  int64_t step_ = 0;
  std::unique_ptr<SequenceCache> cache_;
  std::vector<float> row_;
  std::vector<double> probabilities_;
  bool finished_ = false;
  TaskOutput output_;
};

}  // namespace dlm
