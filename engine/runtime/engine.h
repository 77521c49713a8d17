#pragma once
// The Engine: opens a model directory (config.json, *.safetensors, tokenizer), owns the backend, the
// backbone and the tokenizer, and runs batches of generation requests through the sampler of the chosen
// decoding method.
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
#include "samplers/sampler.h"

namespace dlm {

struct EngineOptions {
  int threads = 0;           // CPU threads of the default CPU backend; 0: one per hardware core
  std::string overlay_path;  // a user model overlay (YAML); empty: none
  ActivationPrecision precision = ActivationPrecision::Auto;
};

class Engine {
 public:
  // On a CPU backend of options.threads. InputError naming the directory and the fault (see load_model).
  explicit Engine(const std::string& model_dir, const EngineOptions& options = {});
  // On `backend` (a CudaBackend, say): the weights are uploaded to its device.
  Engine(std::unique_ptr<Backend> backend, const std::string& model_dir, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const std::string& model_dir() const { return model_dir_; }
  const Tokenizer& tokenizer() const { return *model_.tokenizer; }
  const ModelSpec& spec() const { return model_.spec; }
  const DecodeContext& context() const { return context_; }
  Backbone& backbone() { return *model_.backbone; }
  Backend& backend() { return *backend_; }

  // The model's own sampling defaults: the built-in defaults with its overlays' `sampler` sections applied
  // (unresolved: Method::Auto stays until resolve()).
  SamplingConfig default_sampling() const;

  // The settings with the model's defaults filled in (method, block size); InputError when this model
  // cannot decode with them (a method its family was not trained for, no mask token for diffusion).
  SamplingConfig resolve(const SamplingConfig& sampling) const;

  // A prompt's request: BOS (when the tokenizer has one), then the prompt's tokens, with special-token text
  // such as "<|mdm_mask|>" parsed as those tokens. InputError when it does not fit the model's context
  // under the resolved settings.
  GenerationRequest make_request(std::string_view prompt, const SamplingConfig& resolved,
                                 uint64_t seed) const;
  // A request of token ids taken as they are (no BOS is added); InputError for an id outside the model's
  // vocabulary or a prompt that does not fit.
  GenerationRequest make_request(std::vector<int32_t> prompt_ids, const SamplingConfig& resolved,
                                 uint64_t seed) const;
  // Runs the requests with up to max_rows decoding at once; `sink` gets each result as it finishes.
  void generate(std::span<const GenerationRequest> requests, const SamplingConfig& resolved, int64_t max_rows,
                const ResultSink& sink, const StepObserver& observer = {});
  std::vector<GenerationResult> generate(std::span<const GenerationRequest> requests,
                                         const SamplingConfig& resolved, int64_t max_rows);
  // The text of generated tokens, which ends before the first stop token (or stop string); ids the tokenizer
  // lacks (an embedding larger than the tokenizer) read as U+FFFD.
  std::string decode_generation(const std::vector<int32_t>& tokens,
                                const std::vector<std::string>& stop_strings = {}) const;

 private:
  std::string model_dir_;
  std::unique_ptr<Backend> backend_;
  LoadedModel model_;
  DecodeContext context_;
};

}  // namespace dlm
