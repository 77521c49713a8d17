#include "engine/runtime/engine.h"

#include <algorithm>
#include <filesystem>

#include "backbones/load_backbone.h"
#include "engine/io/hf_config.h"
#include "samplers/llada.h"

namespace dlm {

namespace {

constexpr std::string_view kMaskToken = "<|mdm_mask|>";

int32_t find_mask_id(const HfConfig& config, const Tokenizer& tokenizer, const std::string& model_dir) {
  if (std::optional<int> id = config.optional<int>("mask_token_id")) return *id;
  if (std::optional<int32_t> id = tokenizer.token_to_id(kMaskToken)) return *id;
  fail_input("{}: no mask token: config.json has no mask_token_id and the tokenizer has no {} token",
             model_dir, kMaskToken);
}

}  // namespace

Engine::Engine(const std::string& model_dir, const EngineOptions& options)
    : model_dir_(model_dir), backend_(options.threads) {
  if (!std::filesystem::is_directory(model_dir)) fail_input("{}: not a model directory", model_dir);
  const HfConfig config = HfConfig::load((std::filesystem::path(model_dir) / "config.json").string());
  backbone_ = load_backbone(backend_, config, model_dir);
  tokenizer_ = load_tokenizer(model_dir);
  if (tokenizer_->vocab_size() > backbone_->vocab_size()) {
    fail_input("{}: the tokenizer has {} tokens but the model's vocabulary only {}", model_dir,
               tokenizer_->vocab_size(), backbone_->vocab_size());
  }
  mask_id_ = find_mask_id(config, *tokenizer_, model_dir);
  if (mask_id_ < 0 || mask_id_ >= backbone_->vocab_size()) {
    fail_input("{}: mask token id {} is outside the model's vocabulary of {}", model_dir, mask_id_,
               backbone_->vocab_size());
  }
}

Engine::~Engine() = default;

GenerationRequest Engine::make_request(std::string_view prompt, const SamplingConfig& sampling,
                                       uint64_t seed) const {
  GenerationRequest request;
  request.seed = seed;
  if (std::optional<int32_t> bos = tokenizer_->special_tokens().bos) request.prompt.push_back(*bos);
  const std::vector<int32_t> ids = tokenizer_->encode(prompt, SpecialText::Parse);
  request.prompt.insert(request.prompt.end(), ids.begin(), ids.end());
  LladaSampler::check_fits(*backbone_, sampling, request);
  return request;
}

std::vector<GenerationResult> Engine::generate(std::span<const GenerationRequest> requests,
                                               const SamplingConfig& sampling) {
  return LladaSampler(*backbone_, backend_, mask_id_, sampling).generate(requests);
}

std::string Engine::decode_generation(const std::vector<int32_t>& tokens) const {
  auto end = tokens.end();
  if (std::optional<int32_t> eos = tokenizer_->special_tokens().eos)
    end = std::find(tokens.begin(), end, *eos);
  return tokenizer_->decode(std::vector<int32_t>(tokens.begin(), end));
}

}  // namespace dlm
