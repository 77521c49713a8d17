#pragma once
// The Engine: opens a model directory (config.json, *.safetensors, tokenizer), owns the backend, the
// backbone and the tokenizer, and runs batches of generation requests through the sampler.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backbones/load_model.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/io/generation_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "samplers/generation.h"

namespace dlm {

struct EngineOptions {
  int threads = 0;           // CPU threads; 0: one per hardware core
  std::string overlay_path;  // a user model overlay (YAML); empty: none
};

class Engine {
 public:
  // InputError naming the directory and the fault (see load_model), a family whose decoding is not
  // LLaDA-style masked diffusion, or no mask token.
  explicit Engine(const std::string& model_dir, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::string& model_dir() const { return model_dir_; }
  const Tokenizer& tokenizer() const { return *model_.tokenizer; }
  const ModelSpec& spec() const { return model_.spec; }
  int32_t mask_id() const { return mask_id_; }

  // A prompt's request: BOS (when the tokenizer has one), then the prompt's tokens, with special-token text
  // such as "<|mdm_mask|>" parsed as those tokens. InputError when it does not fit the model's context
  // together with sampling.gen_length.
  GenerationRequest make_request(std::string_view prompt, const SamplingConfig& sampling,
                                 uint64_t seed) const;
  // Runs the requests together (one ragged forward per step); results in request order.
  std::vector<GenerationResult> generate(std::span<const GenerationRequest> requests,
                                         const SamplingConfig& sampling);
  // The text of generated tokens, which ends before the first stop token.
  std::string decode_generation(const std::vector<int32_t>& tokens) const;

 private:
  std::string model_dir_;
  CpuBackend backend_;
  LoadedModel model_;
  int32_t mask_id_ = -1;
};

}  // namespace dlm
