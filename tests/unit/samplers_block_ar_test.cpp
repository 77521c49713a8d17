// Block-diffusion and autoregressive decoding and the Decoder's continuous batching (samplers/), against
// tools/reference/SEMANTICS.md: the ScriptedBackbone shows exactly which forwards each runs and what it
// commits.
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
#include "samplers/autoregressive.h"
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
// Block diffusion

// Position p predicts token 1 + p % 8 (never the mask 0 or EOS 9), surer the further right; with shift the
// row at q predicts q + 1.
LogitFn block_logits(int64_t shift, int32_t eos_at = -1) {
  return [shift, eos_at](const View&, int32_t row) {
    const int32_t target = row + static_cast<int32_t>(shift);
    return target == eos_at ? peak(kEos, 1.0f) : peak(1 + target % 8, static_cast<float>(target));
  };
}

TEST(BlockDiffusion, PrefillsWholePromptBlocksThenDenoisesAndCommitsEachBlock) {
  // Prompt of 6, block 4, gen 6: canvas 12, prefill F = 4. Block [4, 8) holds the prompt tail [4, 6) and 2
  // masks; counts split the block length 4 over 2 steps: [2, 2], so one denoise forward fills it. Then its
  // commit forward; block [8, 12) takes 2 denoise forwards and, being the last, no commit forward.
  ScriptedBackbone backbone(block_logits(0));
  const auto results =
      generate(backbone, block_diffusion(6, 2, 4), scripted_context(), {{{5, 6, 5, 6, 5, 6}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(7, 8, 1, 2, 3, 4));
  EXPECT_EQ(results[0].nfe, 5);
  EXPECT_EQ(results[0].committed, 6);
  expect_calls(backbone, {{CachePolicy::Commit, 0, range(0, 4), {}},
                          {CachePolicy::Read, 4, range(4, 8), {6, 7}},
                          {CachePolicy::Commit, 4, range(4, 8), {}},
                          {CachePolicy::Read, 8, range(8, 12), {8, 9, 10, 11}},
                          {CachePolicy::Read, 8, range(8, 12), {8, 9}}});
  EXPECT_THAT(backbone.calls[1].sequences[0].tokens, ElementsAre(5, 6, kMask, kMask));
  EXPECT_THAT(backbone.calls[2].sequences[0].tokens, ElementsAre(5, 6, 7, 8));
  for (const Call& call : backbone.calls) {
    EXPECT_EQ(call.visibility.kind, VisibilityKind::BlockCausal);
    EXPECT_EQ(call.visibility.block_size, 4);
  }
  EXPECT_GT(results[0].phases.prefill + results[0].phases.commit, 0.0);
}

TEST(BlockDiffusion, DecodesThePaddingToWholeBlocksButReturnsOnlyGenLength) {
  // Gen 5 after a prompt of 6: the canvas is still 12; position 11 is decoded and dropped. Committed counts
  // the generated positions only (GenerationResult::committed).
  ScriptedBackbone backbone(block_logits(0));
  const auto results =
      generate(backbone, block_diffusion(5, 2, 4), scripted_context(), {{{5, 6, 5, 6, 5, 6}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(7, 8, 1, 2, 3));
  EXPECT_EQ(results[0].nfe, 5);
  EXPECT_EQ(results[0].committed, 5);
  EXPECT_EQ(backbone.calls.back().sequences[0].positions, range(8, 12));
}

TEST(BlockDiffusion, ShortPromptNeedsNoPrefill) {
  // Prompt of 3 < block 4: the first block [0, 4) holds the whole prompt and is denoised straight away.
  ScriptedBackbone backbone(block_logits(0));
  const auto results = generate(backbone, block_diffusion(5, 1, 4), scripted_context(), {{{5, 6, 5}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(4, 5, 6, 7, 8));
  expect_calls(backbone, {{CachePolicy::Read, 0, range(0, 4), {3}},
                          {CachePolicy::Commit, 0, range(0, 4), {}},
                          {CachePolicy::Read, 4, range(4, 8), {4, 5, 6, 7}}});
}

TEST(BlockDiffusion, DecodesSubBlocksInOrder) {
  // Block 4, sub-blocks of 2, 2 steps: counts split 2 over 2 steps = [1, 1]. Position 7 is the surest, but
  // sub-block [4, 6) comes first: only its masks are candidates until it is full.
  SamplingConfig config = block_diffusion(4, 2, 4);
  config.sub_block_length = 2;
  ScriptedBackbone backbone(block_logits(0));
  const auto results = generate(backbone, config, scripted_context(), {{{5, 6, 5, 6}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(5, 6, 7, 8));
  expect_calls(backbone, {{CachePolicy::Commit, 0, range(0, 4), {}},
                          {CachePolicy::Read, 4, range(4, 8), {4, 5}},
                          {CachePolicy::Read, 4, range(4, 8), {4}},
                          {CachePolicy::Read, 4, range(4, 8), {6, 7}},
                          {CachePolicy::Read, 4, range(4, 8), {6}}});
}

TEST(BlockDiffusion, ShiftedLogitsTakeEachBlocksFirstTokenFromTheCommitForwardsLastRow) {
  // Shift 1, prompt of 4, block 4, gen 8, 4 steps (1 commit each). The prefill's last row (position 3)
  // predicts position 4, the commit forward of block [4, 8) its last row (7) predicts 8: no extra forward.
  // The denoise forwards ask rows p - 1 for the masks 5, 6, 7 (then 9, 10, 11).
  ScriptedBackbone backbone(block_logits(1));
  const auto results = generate(backbone, block_diffusion(8, 4, 4), scripted_context(1), {{{5, 6, 5, 6}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(5, 6, 7, 8, 1, 2, 3, 4));
  EXPECT_EQ(results[0].nfe, 8);
  EXPECT_EQ(results[0].committed, 8);
  expect_calls(backbone, {{CachePolicy::Commit, 0, range(0, 4), {3}},
                          {CachePolicy::Read, 4, range(4, 8), {4, 5, 6}},
                          {CachePolicy::Read, 4, range(4, 8), {4, 5}},
                          {CachePolicy::Read, 4, range(4, 8), {4}},
                          {CachePolicy::Commit, 4, range(4, 8), {7}},
                          {CachePolicy::Read, 8, range(8, 12), {8, 9, 10}},
                          {CachePolicy::Read, 8, range(8, 12), {8, 9}},
                          {CachePolicy::Read, 8, range(8, 12), {8}}});
  EXPECT_THAT(backbone.calls[1].sequences[0].tokens, ElementsAre(5, kMask, kMask, kMask));
  EXPECT_THAT(backbone.calls[5].sequences[0].tokens, ElementsAre(1, kMask, kMask, kMask));
}

TEST(BlockDiffusion, StopEarlyEndsAfterTheBlockHoldingAStopId) {
  // Prompt of 4, block 4, gen 8, 4 steps: position 6 predicts EOS. Block [4, 8) ends the request: no commit
  // forward, no second block; the output stops after EOS.
  ScriptedBackbone early(block_logits(0, 6));
  const auto stopped = generate(early, block_diffusion(8, 4, 4), scripted_context(), {{{5, 6, 5, 6}, 0}});
  EXPECT_THAT(stopped[0].tokens, ElementsAre(5, 6, kEos));
  EXPECT_EQ(stopped[0].finish, FinishReason::StopToken);
  EXPECT_EQ(stopped[0].nfe, 5);  // prefill + 4 denoise
  EXPECT_EQ(early.calls.back().sequences[0].policy, CachePolicy::Read);

  SamplingConfig config = block_diffusion(8, 4, 4);
  config.stop_early = false;
  ScriptedBackbone full(block_logits(0, 6));
  const auto all = generate(full, config, scripted_context(), {{{5, 6, 5, 6}, 0}});
  EXPECT_THAT(all[0].tokens, ElementsAre(5, 6, kEos, 8, 1, 2, 3, 4));
  EXPECT_EQ(all[0].nfe, 10);  // prefill + 4 denoise + commit + 4 denoise
}

// ---------------------------------------------------------------------------------------------------------
// Autoregressive

SamplingConfig autoregressive(int64_t gen_length) {
  SamplingConfig config;
  config.method = Method::Autoregressive;
  config.gen_length = gen_length;
  return config;
}

TEST(Autoregressive, PrefillsThenForwardsOneTokenPerStep) {
  ScriptedBackbone backbone(counting);
  const auto results = generate(backbone, autoregressive(4), scripted_context(), {{{1, 2}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(3, 4, 5, 6));
  EXPECT_EQ(results[0].finish, FinishReason::Length);
  EXPECT_EQ(results[0].nfe, 4);  // the last token is never forwarded
  EXPECT_EQ(results[0].committed, 4);
  expect_calls(backbone, {{CachePolicy::Commit, 0, {0, 1}, {1}},
                          {CachePolicy::Commit, 2, {2}, {2}},
                          {CachePolicy::Commit, 3, {3}, {3}},
                          {CachePolicy::Commit, 4, {4}, {4}}});
  EXPECT_THAT(backbone.calls[1].sequences[0].tokens, ElementsAre(3));
  for (const Call& call : backbone.calls) EXPECT_EQ(call.visibility.kind, VisibilityKind::Causal);
}

TEST(Autoregressive, AStopIdEndsItAndIsIncluded) {
  ScriptedBackbone backbone(counting);
  const auto results = generate(backbone, autoregressive(8), scripted_context(), {{{6}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(7, 8, kEos));
  EXPECT_EQ(results[0].finish, FinishReason::StopToken);
  EXPECT_EQ(results[0].nfe, 3);
}

TEST(Autoregressive, AStopStringEndsIt) {
  // Token t is the letter 'a' + t: 2, 3, 4 spell "cde", which holds "de" across two tokens.
  ScriptedBackbone backbone(counting);
  DecodeContext context = scripted_context();
  context.detokenize = [](std::span<const int32_t> tokens) {
    std::string text;
    for (int32_t t : tokens) text += static_cast<char>('a' + t);
    return text;
  };
  SamplingConfig config = autoregressive(8);
  config.stop_strings = {"de"};
  const auto results = generate(backbone, config, context, {{{1}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(2, 3, 4));
  EXPECT_EQ(results[0].finish, FinishReason::StopString);
  EXPECT_EQ(results[0].nfe, 3);
}

TEST(Autoregressive, RepetitionPenaltyChangesTheGreedyChoice) {
  // Logits 3.0 at token 2, 2.0 at token 3, 0 elsewhere; prompt [2]. Penalty 2: 3.0 / 2 = 1.5 < 2.0, so 3;
  // then both are in the history: 2 -> 1.5, 3 -> 2.0 / 2 = 1.0, so 2 again. Without it: 2, 2.
  auto positive = [](const View&, int32_t) {
    std::vector<float> row(kVocab, 0.0f);
    row[2] = 3.0f;
    row[3] = 2.0f;
    return row;
  };
  SamplingConfig config = autoregressive(2);
  ScriptedBackbone plain(positive);
  EXPECT_THAT(generate(plain, config, scripted_context(), {{{2}, 0}})[0].tokens, ElementsAre(2, 2));
  config.repetition_penalty = 2.0;
  ScriptedBackbone penalized(positive);
  EXPECT_THAT(generate(penalized, config, scripted_context(), {{{2}, 0}})[0].tokens, ElementsAre(3, 2));
  // Negative logits are multiplied: -0.5 at token 2 becomes -1.0, below token 3's -0.8 (others -2).
  ScriptedBackbone negative([](const View&, int32_t) {
    std::vector<float> row(kVocab, -2.0f);
    row[2] = -0.5f;
    row[3] = -0.8f;
    return row;
  });
  EXPECT_THAT(generate(negative, autoregressive(1), scripted_context(), {{{2}, 0}})[0].tokens,
              ElementsAre(2));
  config.gen_length = 1;
  EXPECT_THAT(generate(negative, config, scripted_context(), {{{2}, 0}})[0].tokens, ElementsAre(3));
}

TEST(Autoregressive, DeviceRulesAskForTheTokenWithoutEntropies) {
  ScriptedBackbone backbone(counting);
  const DecodeContext context = scripted_context();
  for (const double temperature : {0.0, 0.7}) {
    SamplingConfig config = autoregressive(4);
    config.temperature = temperature;
    AutoregressiveTask task(backbone, config, context, GenerationRequest{{1, 2}, 0});
    StepRules step;
    ASSERT_TRUE(task.token_rules(step));
    ASSERT_EQ(step.rules.size(), 1u);
    EXPECT_FALSE(step.rules[0].entropies) << "temperature " << temperature;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Decoder

TEST(Decoder, ContinuousBatchingRefillsFreedRowsAndReportsInFinishingOrder) {
  // Autoregressive counting to EOS: a prompt ending in t generates t + 1, ..., 9, that is 9 - t tokens.
  // Lengths 5, 1, 3, 2, 4 with 2 rows: forward 1 ends request 1 and request 2 takes its row; forward 4 ends
  // request 2 (3 tokens from forward 2), request 3 enters; forward 5 ends 0, 4 enters; forward 6 ends 3;
  // forward 9 ends 4. Finishing order 1, 2, 0, 3, 4; 9 forwards.
  const std::vector<GenerationRequest> requests = {
      {{1, 4}, 0}, {{8}, 0}, {{1, 2, 6}, 0}, {{7}, 0}, {{3, 3, 3, 5}, 0}};
  const std::vector<int64_t> lengths = {5, 1, 3, 2, 4};
  ScriptedBackbone backbone(counting);
  CpuBackend backend(1);
  const DecodeContext context = scripted_context();
  const SamplingConfig config =
      resolve_sampling(autoregressive(8), ModelDefaults{Method::Autoregressive, 0}, context, kVocab);
  Sampler sampler(backbone, backend, context, config);
  std::vector<size_t> order;
  std::vector<GenerationResult> results(requests.size());
  sampler.generate(requests, 2, [&](size_t i, GenerationResult result) {
    order.push_back(i);
    results[i] = std::move(result);
  });
  EXPECT_THAT(order, ElementsAre(1, 2, 0, 3, 4));
  EXPECT_EQ(backbone.calls.size(), 9u);
  for (const Call& call : backbone.calls) EXPECT_LE(call.sequences.size(), 2u);
  // Forward 2 holds request 0's second token next to request 2's prefill of 3 positions.
  ASSERT_EQ(backbone.calls[1].sequences.size(), 2u);
  EXPECT_EQ(backbone.calls[1].sequences[0].positions, range(2, 3));
  EXPECT_EQ(backbone.calls[1].sequences[1].positions, range(0, 3));
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationResult& r = results[i];
    std::vector<int32_t> want;
    for (int32_t t = requests[i].prompt.back() + 1; t <= kEos; ++t) want.push_back(t);
    EXPECT_EQ(r.tokens, want) << "request " << i;
    EXPECT_EQ(r.nfe, lengths[i]) << "request " << i;
    EXPECT_GE(r.phases.prefill, 0.0);
    EXPECT_GE(r.phases.denoise, 0.0);
    EXPECT_EQ(r.phases.commit, 0.0);
    EXPECT_GE(r.queued_seconds, 0.0);
    EXPECT_LE(r.phases.prefill + r.phases.denoise + r.phases.commit, r.seconds + 1e-9) << "request " << i;
  }
  // The same through the ordered overload.
  const std::vector<GenerationResult> ordered = sampler.generate(requests, 2);
  ASSERT_EQ(ordered.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_EQ(ordered[i].tokens, results[i].tokens);
}

}  // namespace
}  // namespace dlm
