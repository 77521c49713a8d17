#pragma once
// LLaDA's masked-diffusion sampler (ML-GSAI/LLaDA generate.py): the canvas is the prompt followed by
// gen_length mask tokens, decoded in gen_length / block_length blocks from left to right; each block gets
// steps / blocks steps, and each step runs the backbone bidirectionally over the whole canvas and commits the
// block's scheduled number of masked positions, chosen by confidence (low_confidence: the softmax probability
// of the predicted token; random: a uniform draw). Several requests of different lengths run in one ragged
// forward per step; each draws from its own RNG stream, so its output does not depend on the batch.
#include <cstdint>
#include <span>
#include <vector>

#include "backbones/backbone.h"
#include "engine/backend/backend.h"
#include "engine/io/generation_config.h"
#include "samplers/generation.h"
#include "samplers/token_sampler.h"

namespace dlm {

class LladaSampler {
 public:
  // InputError for inconsistent settings (see find_problem) or a mask id outside the vocabulary.
  LladaSampler(Backbone& backbone, Backend& backend, int32_t mask_id, const SamplingConfig& settings);

  // InputError when the prompt plus gen_length exceeds the backbone's context.
  static void check_fits(const Backbone& backbone, const SamplingConfig& settings,
                         const GenerationRequest& request);
  // Runs all requests together; results come back in request order.
  std::vector<GenerationResult> generate(std::span<const GenerationRequest> requests);

 private:
  struct Sequence;

  // step counts from the start of generation; block_end_offset is the current block's end after the prompt.
  void run_step(std::vector<Sequence>& sequences, int64_t step, int64_t step_in_block,
                int64_t block_end_offset);

  Backbone& backbone_;
  Backend& backend_;
  int32_t mask_id_;
  SamplingConfig settings_;
  // Reused across steps so the loop does not allocate once warmed up.
  ForwardBatch batch_;
  std::vector<RowStream> row_streams_;
  SampledTokens sampled_;
  std::vector<float> confidence_;
};

}  // namespace dlm
