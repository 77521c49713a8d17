#include "samplers/sampler.h"

#include <fmt/format.h>

#include "engine/core/error.h"
#include "samplers/autoregressive.h"
#include "samplers/block_diffusion.h"
#include "samplers/masked_diffusion.h"

namespace dlm {

namespace {

constexpr int64_t kLladaBlockLength = 32;  // LLaDA generate.py's usual semi-autoregressive block

bool diffusion(Method method) {
  return method != Method::Autoregressive;
}

}  // namespace

SamplingConfig resolve_sampling(const SamplingConfig& config, const ModelDefaults& model,
                                const DecodeContext& context, int64_t vocab_size) {
  SamplingConfig out = config;
  if (out.method == Method::Auto) out.method = model.method;
  if (out.block_length == 0) {
    if (out.method == Method::BlockDiffusion) {
      if (model.block_size <= 0) {
        fail_input(
            "sampler.block_length: block diffusion needs a block size and the model has none; set one");
      }
      out.block_length = model.block_size;
    } else {
      out.block_length = out.gen_length % kLladaBlockLength == 0 ? kLladaBlockLength : out.gen_length;
    }
  }
  validate(out, fmt::format("the settings for this model (method {})", enum_name(out.method, kMethodNames)));
  if (diffusion(out.method) && (context.mask_id < 0 || context.mask_id >= vocab_size)) {
    fail_input("method {}: the model has no mask token in its vocabulary of {} (got id {})",
               enum_name(out.method, kMethodNames), vocab_size, context.mask_id);
  }
  if (out.method == Method::BlockDiffusion && out.sub_block_length > 0 &&
      out.block_length % out.sub_block_length != 0) {
    fail_input("sampler.sub_block_length: must divide the block length {}, got {}", out.block_length,
               out.sub_block_length);
  }
  return out;
}

Visibility method_visibility(const SamplingConfig& resolved) {
  switch (resolved.method) {
    case Method::BlockDiffusion:
      return Visibility::block_causal(resolved.block_length);
    case Method::Autoregressive:
      return Visibility::causal();
    default:
      return Visibility::bidirectional();
  }
}

Sampler::Sampler(Backbone& backbone, Backend& backend, const DecodeContext& context,
                 const SamplingConfig& config)
    : backbone_(backbone), backend_(backend), context_(context), config_(config) {
  DLM_CHECK(config.method != Method::Auto && config.block_length > 0, "Sampler: unresolved settings");
}

void check_request(const Backbone& backbone, const SamplingConfig& config, const GenerationRequest& request) {
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt == 0) fail_input("the prompt is empty: a request needs at least one token");
  const bool blocks = config.method == Method::BlockDiffusion;
  const int64_t needed =
      blocks ? BlockDiffusionTask::canvas_length(prompt, config) : prompt + config.gen_length;
  if (needed > backbone.max_positions()) {
    fail_input("prompt of {} tokens plus gen_length {}{} exceeds the model's context of {} positions", prompt,
               config.gen_length, blocks ? " (rounded up to whole blocks)" : "", backbone.max_positions());
  }
}

std::unique_ptr<DecodeTask> Sampler::make_task(const GenerationRequest& request) {
  switch (config_.method) {
    case Method::BlockDiffusion:
      return std::make_unique<BlockDiffusionTask>(backbone_, config_, context_, request);
    case Method::Autoregressive:
      return std::make_unique<AutoregressiveTask>(backbone_, config_, context_, request);
    default:
      return std::make_unique<MaskedDiffusionTask>(backbone_, config_, context_, config_.method, request);
  }
}

void Sampler::generate(std::span<const GenerationRequest> requests, int64_t max_rows, const ResultSink& sink,
                       const StepObserver& observer) {
  for (const GenerationRequest& request : requests) check_request(backbone_, config_, request);
  Decoder decoder(backbone_, backend_, method_visibility(config_), max_rows);
  decoder.run(
      requests.size(), [&](size_t i) { return make_task(requests[i]); }, sink, observer);
}

std::vector<GenerationResult> Sampler::generate(std::span<const GenerationRequest> requests,
                                                int64_t max_rows) {
  std::vector<GenerationResult> results(requests.size());
  generate(requests, max_rows, [&](size_t i, GenerationResult result) { results[i] = std::move(result); });
  return results;
}

}  // namespace dlm
