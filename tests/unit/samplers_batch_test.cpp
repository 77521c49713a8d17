// Every method decodes a request the same alone, in a batch and in refilled rows (the tiny parity models,
// at temperature > 0), and the checks of requests and settings before decoding.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "backbones/load_model.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "engine/core/error.h"
#include "samplers/block_diffusion.h"
#include "samplers/sampler.h"
#include "tests/unit/input_error.h"
#include "tests/unit/scripted_backbone.h"

namespace dlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace scripted;

// ---------------------------------------------------------------------------------------------------------
// Batch invariance on the tiny parity models, at temperature > 0

class TinyModel {
 public:
  explicit TinyModel(const std::string& name)
      : model_(load_model(backend_, std::string(DLM_GOLDEN_DIR) + "/parity/models/" + name)) {
    context_.mask_id = model_.spec.mask_token_id.value_or(-1);
    context_.stop_ids = model_.spec.stop_token_ids;
    context_.logit_shift = model_.spec.logit_shift;
    switch (model_.spec.family->decoding) {
      case DecodingKind::Autoregressive:
        defaults_.method = Method::Autoregressive;
        break;
      case DecodingKind::BlockDiffusion:
        defaults_.method = Method::BlockDiffusion;
        break;
      case DecodingKind::MaskedDiffusion:
        defaults_.method = model_.spec.logit_shift != 0 ? Method::Dream : Method::Llada;
        break;
    }
    defaults_.block_size = model_.spec.block_size;
  }

  std::vector<std::vector<int32_t>> tokens(const SamplingConfig& config,
                                           const std::vector<GenerationRequest>& requests, int64_t max_rows) {
    const SamplingConfig resolved =
        resolve_sampling(config, defaults_, context_, model_.backbone->vocab_size());
    Sampler sampler(*model_.backbone, backend_, context_, resolved);
    std::vector<std::vector<int32_t>> out;
    for (const GenerationResult& r : sampler.generate(requests, max_rows)) out.push_back(r.tokens);
    return out;
  }

 private:
  CpuBackend backend_{1};
  LoadedModel model_;
  DecodeContext context_;
  ModelDefaults defaults_;
};

void expect_batch_invariant(const std::string& model_name, const SamplingConfig& config) {
  SCOPED_TRACE(model_name);
  TinyModel model(model_name);
  const GenerationRequest a{{17, 42, 99, 123, 64}, 11}, b{{200, 31}, 12},
      c{{55, 56, 57, 58, 59, 60, 61, 62}, 13}, d{{101}, 14}, e{{77, 88, 99}, 15};
  const auto alone = model.tokens(config, {a}, 1);
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_FALSE(alone[0].empty());
  const auto batched = model.tokens(config, {b, a, c}, 3);
  EXPECT_EQ(batched[1], alone[0]) << "in a batch with other lengths";
  EXPECT_EQ(batched[0], model.tokens(config, {b}, 1)[0]);
  EXPECT_EQ(batched[2], model.tokens(config, {c}, 1)[0]);
  const auto refilled = model.tokens(config, {b, c, d, e, a}, 2);
  EXPECT_EQ(refilled[4], alone[0]) << "in a refilled row of two";
  EXPECT_EQ(refilled[0], batched[0]);
  EXPECT_EQ(refilled[1], batched[2]);
  EXPECT_EQ(refilled[2], model.tokens(config, {d}, 1)[0]);
  EXPECT_EQ(model.tokens(config, {a}, 1), alone) << "the seed reproduces";
  GenerationRequest reseeded = a;
  reseeded.seed = 12;
  EXPECT_NE(model.tokens(config, {reseeded}, 1)[0], alone[0]) << "another seed gives another sample";
}

SamplingConfig sampled(Method method, int64_t gen_length, int64_t steps, int64_t block_length) {
  SamplingConfig config;
  config.method = method;
  config.gen_length = gen_length;
  config.steps = steps;
  config.block_length = block_length;
  config.temperature = 0.9;
  return config;
}

TEST(BatchInvariance, LladaWithThreshold) {
  SamplingConfig config = sampled(Method::Llada, 8, 8, 4);
  config.commit = CommitRule::Threshold;
  config.threshold = 0.5;
  expect_batch_invariant("llada", config);
}

TEST(BatchInvariance, LladaDualCache) {
  SamplingConfig config = sampled(Method::Llada, 8, 8, 4);
  config.cache = CacheMode::Dual;
  expect_batch_invariant("llada", config);
}

TEST(BatchInvariance, Dream) {
  SamplingConfig config = sampled(Method::Dream, 8, 8, 0);
  config.top_p = 0.95;
  expect_batch_invariant("dream", config);
}

TEST(BatchInvariance, BlockDiffusionSdar) {
  expect_batch_invariant("sdar", sampled(Method::BlockDiffusion, 8, 4, 0));
}

TEST(BatchInvariance, BlockDiffusionFastDllmV2WithSubBlocks) {
  SamplingConfig config = sampled(Method::BlockDiffusion, 8, 2, 0);
  config.sub_block_length = 2;
  config.commit = CommitRule::Threshold;
  expect_batch_invariant("fast_dllm_v2", config);
}

TEST(BatchInvariance, AutoregressiveLlama) {
  SamplingConfig config = sampled(Method::Autoregressive, 8, 1, 0);
  config.top_k = 50;
  config.top_p = 0.95;
  expect_batch_invariant("llama", config);
}

// ---------------------------------------------------------------------------------------------------------
// Requests and settings

TEST(CheckRequest, RejectsAnEmptyPrompt) {
  ScriptedBackbone backbone(counting, 32);
  const SamplingConfig config = llada(8, 8, 4);
  EXPECT_THAT(input_error_of([&] {
                check_request(backbone, config, GenerationRequest{{}, 0});
              }),
              HasSubstr("the prompt is empty"));
  // Sampler::generate checks every request before any forward.
  EXPECT_THROW(generate(backbone, config, scripted_context(), {{{1, 2}, 0}, {{}, 0}}), InputError);
  EXPECT_TRUE(backbone.calls.empty());
}

TEST(CheckRequest, RejectsAPromptTooLongForTheContext) {
  ScriptedBackbone backbone(counting, 32);
  const SamplingConfig config = llada(8, 8, 4);
  EXPECT_THAT(input_error_of([&] {
                check_request(backbone, config, GenerationRequest{std::vector<int32_t>(25, 1), 0});
              }),
              HasSubstr("prompt of 25 tokens plus gen_length 8 exceeds the model's context of 32 positions"));
  EXPECT_NO_THROW(check_request(backbone, config, GenerationRequest{std::vector<int32_t>(24, 1), 0}));
}

TEST(CheckRequest, BlockDiffusionCountsTheCanvasRoundedUpToWholeBlocks) {
  // 21 + 8 = 29 fits 30 positions, but the canvas is ceil(29 / 4) * 4 = 32; 20 + 8 = 28 is whole blocks.
  ScriptedBackbone backbone(counting, 30);
  const SamplingConfig config = block_diffusion(8, 4, 4);
  EXPECT_EQ(BlockDiffusionTask::canvas_length(21, config), 32);
  EXPECT_THAT(
      input_error_of([&] {
        check_request(backbone, config, GenerationRequest{std::vector<int32_t>(21, 1), 0});
      }),
      HasSubstr("prompt of 21 tokens plus gen_length 8 (rounded up to whole blocks) exceeds the model's "
                "context of 30 positions"));
  EXPECT_NO_THROW(check_request(backbone, config, GenerationRequest{std::vector<int32_t>(20, 1), 0}));
  EXPECT_NO_THROW(check_request(backbone, llada(8, 8, 4), GenerationRequest{std::vector<int32_t>(21, 1), 0}));
}

TEST(ResolveSampling, BlockLengthZeroTakesTheModelsBlockForBlockDiffusion) {
  const DecodeContext context = scripted_context();
  SamplingConfig config = block_diffusion(8, 4, 0);
  EXPECT_EQ(resolve_sampling(config, ModelDefaults{Method::BlockDiffusion, 4}, context, kVocab).block_length,
            4);
  EXPECT_EQ(resolve_sampling(config, ModelDefaults{Method::BlockDiffusion, 8}, context, kVocab).block_length,
            8);
  EXPECT_THAT(input_error_of([&] {
                resolve_sampling(config, ModelDefaults{Method::Llada, 0}, context, kVocab);
              }),
              HasSubstr("sampler.block_length"));
  // An explicit block stays.
  config.block_length = 2;
  EXPECT_EQ(resolve_sampling(config, ModelDefaults{Method::BlockDiffusion, 4}, context, kVocab).block_length,
            2);
}

TEST(ResolveSampling, AutoResolvesToTheModelsMethod) {
  const DecodeContext context = scripted_context();
  SamplingConfig config;
  config.gen_length = 8;
  config.steps = 8;
  ASSERT_EQ(config.method, Method::Auto);
  for (Method method : {Method::Llada, Method::Dream, Method::BlockDiffusion, Method::Autoregressive}) {
    EXPECT_EQ(resolve_sampling(config, ModelDefaults{method, 4}, context, kVocab).method, method);
  }
  config.method = Method::Dream;
  EXPECT_EQ(resolve_sampling(config, ModelDefaults{Method::Llada, 0}, context, kVocab).method, Method::Dream);
}

}  // namespace
}  // namespace dlm
