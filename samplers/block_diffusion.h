#pragma once
// Block diffusion with an exact K/V cache (SDAR, Fast-dLLM v2): the canvas is cut into blocks of
// block_length from position 0; blocks are decoded left to right, each attending to the cached blocks before
// it and bidirectionally to itself. The prompt's whole blocks are prefilled once; the first decoded block
// holds the prompt's tail. A block is denoised (in sub-blocks, in order, when sub_block_length is set), then
// one commit forward writes its keys and values. With shifted logits (Fast-dLLM v2) the commit forward's last
// row predicts the next block's first token, which is taken as is.
#include <cstdint>
#include <memory>
#include <vector>

#include "samplers/decode_task.h"
#include "samplers/prediction.h"

namespace dlm {

class BlockDiffusionTask final : public DecodeTask {
 public:
  // config.block_length is the resolved block size (> 0); config and context outlive the task.
  BlockDiffusionTask(Backbone& backbone, const SamplingConfig& config, const DecodeContext& context,
                     const GenerationRequest& request);

  // The canvas positions a request needs: prompt plus gen_length, rounded up to whole blocks.
  static int64_t canvas_length(int64_t prompt, const SamplingConfig& config);

  StepPhase plan(ForwardBatch& batch) override;
  bool token_rules(StepRules& step) const override;
  void consume(const StepRows& rows) override;
  bool finished() const override { return finished_; }
  TaskOutput output() const override { return output_; }
  std::span<const int32_t> generated() const override {
    return std::span(canvas_).subspan(prompt_, generated_end_ - prompt_);
  }

 private:
  enum class Stage { Prefill, Denoise, Commit };

  int64_t block_begin() const { return block_ * block_length_; }
  int64_t block_end() const { return block_begin() + block_length_; }
  int64_t sub_begin() const { return block_begin() + sub_block_ * sub_length_; }
  int64_t sub_end() const { return sub_begin() + sub_length_; }
  bool masked(int64_t begin, int64_t end) const;
  // Moves to the next sub-block that still has a masked position; false when the block has none.
  bool next_sub_block();
  void denoise(const StepRows& rows);
  void start_block(int64_t block);
  // A block without masked positions: stop, finish, or commit it.
  void end_block();
  // The next block's first token from the last committed row (shifted logits only).
  // The block a prefill or commit step leads to: after the prompt, or after the block just committed.
  int64_t next_block() const { return stage_ == Stage::Prefill ? block_ : block_ + 1; }
  void finish();

  const SamplingConfig& config_;
  const DecodeContext& context_;
  Predictor predictor_;
  RngStream rng_;
  std::vector<int32_t> canvas_;
  int64_t prompt_ = 0, generated_end_ = 0, total_ = 0;
  int64_t block_length_ = 0, sub_length_ = 0, blocks_ = 0;
  int64_t block_ = 0, sub_block_ = 0, step_in_sub_ = 0, step_ = 0, committed_ = 0;
  std::vector<int64_t> counts_;
  std::unique_ptr<SequenceCache> cache_;
  Stage stage_ = Stage::Prefill;
  bool wants_last_row_ = false;  // the last plan asked for the row that predicts the next block's start
  std::vector<int64_t> candidates_;
  bool finished_ = false;
  TaskOutput output_;
};

}  // namespace dlm
