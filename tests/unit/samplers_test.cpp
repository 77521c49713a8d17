// LLaDA and Dream decoding (samplers/), against tools/reference/SEMANTICS.md: the ScriptedBackbone shows
// exactly which forwards each method runs, with which cache policy, and what it commits.
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
// LLaDA

TEST(Llada, CommitsTheMostConfidentPredictionsOfAHandMadeLogitSequence) {
  // Prompt [5, 6]; 4 masks in one block over 2 steps: 2 commits per step. Before any commit position 2 is
  // very sure of 3 (p = e^6 / (e^6 + 9) = 0.978), 4 fairly sure of 7 (e^4 / (e^4 + 9) = 0.858), 5 less sure
  // of 1 (0.451), 3 unsure of 4 (0.232); afterwards 3 and 5 change their minds to 2 and 6.
  ScriptedBackbone backbone([](const View& view, int32_t position) {
    const bool first_step = view[2] == kMask;
    switch (position) {
      case 2:
        return peak(3, 6.0f);
      case 3:
        return first_step ? peak(4, 1.0f) : peak(2, 2.0f);
      case 4:
        return peak(7, 4.0f);
      default:
        return first_step ? peak(1, 2.0f) : peak(6, 3.0f);
    }
  });
  const auto results = generate(backbone, llada(4, 2, 4), scripted_context(), {{{5, 6}, 0}});
  // Step 1 commits positions 2 and 4; step 2 the rest with the new predictions.
  EXPECT_THAT(results[0].tokens, ElementsAre(3, 2, 7, 6));
  EXPECT_EQ(results[0].nfe, 2);
  EXPECT_EQ(results[0].committed, 4);
  EXPECT_EQ(results[0].finish, FinishReason::Length);
  ASSERT_EQ(backbone.calls.size(), 2u);
  EXPECT_EQ(backbone.calls[0].visibility.kind, VisibilityKind::Bidirectional);
  EXPECT_THAT(backbone.calls[0].sequences[0].tokens, ElementsAre(5, 6, kMask, kMask, kMask, kMask));
  EXPECT_EQ(backbone.calls[0].sequences[0].policy, CachePolicy::None);
  EXPECT_THAT(backbone.calls[0].sequences[0].logit_rows, ElementsAre(2, 3, 4, 5));
  EXPECT_THAT(backbone.calls[1].sequences[0].tokens, ElementsAre(5, 6, 3, kMask, 7, kMask));
  EXPECT_THAT(backbone.calls[1].sequences[0].logit_rows, ElementsAre(3, 5));
}

TEST(Llada, DecodesBlocksLeftToRightAndNeverAsksBeyondTheCurrentBlock) {
  // Every position is surer the further right it is, so only the block boundary keeps the order left to
  // right. Prompt [5], 3 blocks of 2, 6 steps: 2 steps per block, 1 commit each.
  ScriptedBackbone backbone(
      [](const View&, int32_t position) { return peak(position, static_cast<float>(position)); });
  const auto results = generate(backbone, llada(6, 6, 2), scripted_context(), {{{5}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(1, 2, 3, 4, 5, 6));
  ASSERT_EQ(backbone.calls.size(), 6u);
  for (size_t i = 0; i < backbone.calls.size(); ++i) {
    const int32_t block_begin = 1 + static_cast<int32_t>(i / 2) * 2;
    for (int32_t p : backbone.calls[i].sequences[0].logit_rows) {
      EXPECT_GE(p, block_begin) << "call " << i;
      EXPECT_LT(p, block_begin + 2) << "call " << i;
    }
  }
  // Within a block the surer (later) position goes first.
  EXPECT_THAT(backbone.calls[0].sequences[0].logit_rows, ElementsAre(1, 2));
  EXPECT_THAT(backbone.calls[1].sequences[0].tokens, ElementsAre(5, kMask, 2, kMask, kMask, kMask, kMask));
  EXPECT_THAT(backbone.calls[1].sequences[0].logit_rows, ElementsAre(1));
  EXPECT_THAT(backbone.calls[2].sequences[0].logit_rows, ElementsAre(3, 4));
  EXPECT_THAT(backbone.calls[4].sequences[0].logit_rows, ElementsAre(5, 6));
}

TEST(Llada, SkipsStepsThatCommitNothing) {
  // 2 masks over 4 steps: the schedule is [1, 1, 0, 0] and the two empty steps need no forward.
  ScriptedBackbone backbone([](const View&, int32_t position) { return peak(position, 1.0f); });
  const auto results = generate(backbone, llada(2, 4, 2), scripted_context(), {{{4}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(1, 2));
  EXPECT_EQ(results[0].nfe, 2);
  EXPECT_EQ(backbone.calls.size(), 2u);
}

TEST(Llada, ClassifierFreeGuidanceSendsThePromptMaskedCanvasInTheSameCall) {
  // Conditional logits (prompt visible): 1.0 at token 2, 0.9 at token 3; unconditional (prompt masked): 1.0
  // at token 2. With cfg_scale 1: l = l_u + 2 (l_c - l_u): token 2: 1 + 2 * 0 = 1, token 3: 0 + 2 * 0.9 =
  // 1.8, so 3 wins, where the conditional logits alone (or a scale of s instead of s + 1: l = l_c) give 2.
  auto logits = [](const View& view, int32_t) {
    std::vector<float> row(kVocab, 0.0f);
    row[2] = 1.0f;
    if (view[0] != kMask) row[3] = 0.9f;
    return row;
  };
  SamplingConfig config = llada(2, 2, 2);
  config.cfg_scale = 1.0;
  ScriptedBackbone guided(logits);
  const auto results = generate(guided, config, scripted_context(), {{{5, 6}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(3, 3));
  EXPECT_EQ(results[0].nfe, 2);
  ASSERT_EQ(guided.calls.size(), 2u);
  for (const Call& call : guided.calls) ASSERT_EQ(call.sequences.size(), 2u);
  EXPECT_THAT(guided.calls[0].sequences[0].tokens, ElementsAre(5, 6, kMask, kMask));
  EXPECT_THAT(guided.calls[0].sequences[1].tokens, ElementsAre(kMask, kMask, kMask, kMask));
  EXPECT_THAT(guided.calls[0].sequences[1].logit_rows, ElementsAre(2, 3));
  // Equal confidences: the lower position commits first.
  EXPECT_THAT(guided.calls[1].sequences[0].tokens, ElementsAre(5, 6, 3, kMask));
  EXPECT_THAT(guided.calls[1].sequences[1].tokens, ElementsAre(kMask, kMask, 3, kMask));
  EXPECT_THAT(guided.calls[1].sequences[1].logit_rows, ElementsAre(3));

  ScriptedBackbone unguided(logits);
  EXPECT_THAT(generate(unguided, llada(2, 2, 2), scripted_context(), {{{5, 6}, 0}})[0].tokens,
              ElementsAre(2, 2));
  EXPECT_EQ(unguided.calls[0].sequences.size(), 1u);
}

TEST(Llada, SuppressEosNeverYieldsEos) {
  // EOS (9) is the surest prediction everywhere (5.0), token 4 the next (2.0).
  auto logits = [](const View&, int32_t) {
    std::vector<float> row = peak(kEos, 5.0f);
    row[4] = 2.0f;
    return row;
  };
  SamplingConfig config = llada(4, 4, 4);
  config.suppress_eos = true;
  ScriptedBackbone suppressed(logits);
  EXPECT_THAT(generate(suppressed, config, scripted_context(), {{{5}, 0}})[0].tokens,
              ElementsAre(4, 4, 4, 4));
  // Without it: EOS at every position, and stop_early cuts the output after the first.
  ScriptedBackbone plain(logits);
  const auto results = generate(plain, llada(4, 4, 4), scripted_context(), {{{5}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(kEos));
  EXPECT_EQ(results[0].finish, FinishReason::StopToken);
}

TEST(Llada, SuppressEosConfidenceRanksEosAndEotPredictionsLastAtTemperatureZero) {
  // Stop ids [9 (EOS), 8 (EoT)]. Prompt [5], 3 masks in one block, 3 steps of 1 commit. Position 1 predicts
  // EOS (5.0), position 2 EoT (4.0), position 3 token 4 (1.0): by confidence 1, 2, 3. With the flag EOS and
  // EoT get confidence 0: position 3 first, then 1 and 2 (tied at 0: the lower position first). The tokens
  // chosen are the same.
  auto logits = [](const View&, int32_t position) {
    return position == 1 ? peak(kEos, 5.0f) : position == 2 ? peak(8, 4.0f) : peak(4, 1.0f);
  };
  SamplingConfig config = llada(3, 3, 3);
  config.stop_early = false;
  const DecodeContext context = scripted_context(0, {kEos, 8});
  ScriptedBackbone plain(logits);
  EXPECT_THAT(generate(plain, config, context, {{{5}, 0}})[0].tokens, ElementsAre(kEos, 8, 4));
  ASSERT_EQ(plain.calls.size(), 3u);
  EXPECT_THAT(plain.calls[1].sequences[0].tokens, ElementsAre(5, kEos, kMask, kMask));
  EXPECT_THAT(plain.calls[2].sequences[0].tokens, ElementsAre(5, kEos, 8, kMask));

  config.suppress_eos_confidence = true;
  ScriptedBackbone flagged(logits);
  EXPECT_THAT(generate(flagged, config, context, {{{5}, 0}})[0].tokens, ElementsAre(kEos, 8, 4));
  ASSERT_EQ(flagged.calls.size(), 3u);
  EXPECT_THAT(flagged.calls[1].sequences[0].tokens, ElementsAre(5, kMask, kMask, 4));
  EXPECT_THAT(flagged.calls[2].sequences[0].tokens, ElementsAre(5, kEos, kMask, 4));
}

TEST(Llada, StopEarlyCutsAfterTheFirstStopIdAndEndsTheRequestAfterItsBlock) {
  // Prompt [5], 3 blocks of 2, 2 steps each. Position 3 (block 1) predicts EOS, the others their position.
  auto logits = [](const View&, int32_t position) {
    return position == 3 ? peak(kEos, 2.0f) : peak(position, 1.0f);
  };
  ScriptedBackbone early(logits);
  const auto stopped = generate(early, llada(6, 6, 2), scripted_context(), {{{5}, 0}});
  // Blocks 0 and 1 take 4 forwards; block 2 never runs. The 4 filled positions count as committed.
  EXPECT_THAT(stopped[0].tokens, ElementsAre(1, 2, kEos));
  EXPECT_EQ(stopped[0].finish, FinishReason::StopToken);
  EXPECT_EQ(stopped[0].nfe, 4);
  EXPECT_EQ(stopped[0].committed, 4);
  EXPECT_EQ(early.calls.size(), 4u);

  SamplingConfig config = llada(6, 6, 2);
  config.stop_early = false;
  ScriptedBackbone full(logits);
  const auto all = generate(full, config, scripted_context(), {{{5}, 0}});
  EXPECT_THAT(all[0].tokens, ElementsAre(1, 2, kEos, 4, 5, 6));
  EXPECT_EQ(all[0].finish, FinishReason::Length);
  EXPECT_EQ(all[0].nfe, 6);
}

// Position p predicts token p, surer the further right (shift 0); with shift 1 the row at q predicts q + 1.
// Every row's view must hold the whole canvas [0, 6): the cache and the rows together.
LogitFn canvas_logits(int64_t shift) {
  return [shift](const View& view, int32_t row) {
    EXPECT_EQ(view.size(), 6u);
    EXPECT_EQ(std::count(view.begin(), view.end(), -1), 0) << "the backbone lacks part of the canvas";
    const int32_t target = row + static_cast<int32_t>(shift);
    return peak(target, static_cast<float>(target));
  };
}

SamplingConfig cached(CacheMode mode) {
  SamplingConfig config = llada(4, 4, 2);  // prompt [5, 6]: blocks [2, 4) and [4, 6), 2 steps each
  config.cache = mode;
  return config;
}

TEST(Llada, PrefixCacheCommitsTheFullCanvasAtBlockEntryThenReadsFromTheBlockStart) {
  ScriptedBackbone backbone(canvas_logits(0));
  EXPECT_THAT(generate(backbone, cached(CacheMode::Prefix), scripted_context(), {{{5, 6}, 0}})[0].tokens,
              ElementsAre(2, 3, 4, 5));
  // Block entry: Commit of [0, 6); the cache is cut to the block start; the next step reads from it.
  expect_calls(backbone, {{CachePolicy::Commit, 0, range(0, 6), {2, 3}},
                          {CachePolicy::Read, 2, range(2, 6), {2}},
                          {CachePolicy::Commit, 2, range(0, 6), {4, 5}},
                          {CachePolicy::Read, 4, range(4, 6), {4}}});
  EXPECT_EQ(backbone.caches_made, 1);
}

TEST(Llada, PrefixCacheWithShiftedLogitsReadsFromOneBeforeTheBlock) {
  // Shift 1: the rows asked are the positions minus 1, and the later steps start at block start - 1.
  ScriptedBackbone backbone(canvas_logits(1));
  EXPECT_THAT(generate(backbone, cached(CacheMode::Prefix), scripted_context(1), {{{5, 6}, 0}})[0].tokens,
              ElementsAre(2, 3, 4, 5));
  expect_calls(backbone, {{CachePolicy::Commit, 0, range(0, 6), {1, 2}},
                          {CachePolicy::Read, 1, range(1, 6), {1}},
                          {CachePolicy::Commit, 1, range(0, 6), {3, 4}},
                          {CachePolicy::Read, 3, range(3, 6), {3}}});
}

TEST(Llada, DualCacheReplacesTheBlockOnlyAfterTheBlockEntry) {
  ScriptedBackbone backbone(canvas_logits(0));
  EXPECT_THAT(generate(backbone, cached(CacheMode::Dual), scripted_context(), {{{5, 6}, 0}})[0].tokens,
              ElementsAre(2, 3, 4, 5));
  expect_calls(backbone, {{CachePolicy::Commit, 0, range(0, 6), {2, 3}},
                          {CachePolicy::Replace, 6, range(2, 4), {2}},
                          {CachePolicy::Commit, 6, range(0, 6), {4, 5}},
                          {CachePolicy::Replace, 6, range(4, 6), {4}}});

  ScriptedBackbone shifted(canvas_logits(1));
  EXPECT_THAT(generate(shifted, cached(CacheMode::Dual), scripted_context(1), {{{5, 6}, 0}})[0].tokens,
              ElementsAre(2, 3, 4, 5));
  expect_calls(shifted, {{CachePolicy::Commit, 0, range(0, 6), {1, 2}},
                         {CachePolicy::Replace, 6, range(1, 4), {1}},
                         {CachePolicy::Commit, 6, range(0, 6), {3, 4}},
                         {CachePolicy::Replace, 6, range(3, 6), {3}}});
}

// ---------------------------------------------------------------------------------------------------------
// Dream

SamplingConfig dream(int64_t gen_length, int64_t steps) {
  SamplingConfig config;
  config.method = Method::Dream;
  config.gen_length = gen_length;
  config.steps = steps;
  return config;
}

int64_t masks(const SequenceCall& s) {
  return std::count(s.tokens.begin(), s.tokens.end(), kMask);
}

TEST(Dream, CommitsTheTimestepCountAtEachStep) {
  // 16 masks over 8 steps; ts = linspace(1, 1e-3, 9) (sampler_rules_test works it out). k = int(m (1 - s/t))
  // with m the masks left: int(16 * 0.124875) = 1, int(15 * 0.142694) = 2, int(13 * 0.166444) = 2,
  // int(11 * 0.199680) = 2, int(9 * 0.249501) = 2, int(7 * 0.332446) = 2, int(5 * 0.498006) = 2, then all 3.
  ScriptedBackbone backbone(
      [](const View&, int32_t position) { return peak(1 + position % 8, 1.0f + 0.1f * position); });
  const auto results = generate(backbone, dream(16, 8), scripted_context(), {{{5}, 0}});
  ASSERT_EQ(backbone.calls.size(), 8u);
  std::vector<int64_t> masked;
  for (const Call& call : backbone.calls) masked.push_back(masks(call.sequences[0]));
  EXPECT_THAT(masked, ElementsAre(16, 15, 13, 11, 9, 7, 5, 3));
  EXPECT_EQ(results[0].nfe, 8);
  EXPECT_EQ(results[0].committed, 16);
  // Dream has no blocks: every masked position is a candidate of the first step.
  EXPECT_EQ(backbone.calls[0].sequences[0].logit_rows, range(1, 17));
}

TEST(Dream, ShiftedLogitsAskForTheRowBeforeEachPosition) {
  // Shift 1: the row at q predicts position q + 1, here token q + 1: prompt [5, 6], then 2, 3, 4, 5.
  // 4 masks over 4 steps, ts = 1, 0.75025, 0.5005, 0.25075, 0.001: int(4 * 0.24975) = 0 (the step still
  // runs its forward), int(4 * 0.33289) = 1, int(3 * 0.49900) = 1, then the last 2.
  ScriptedBackbone backbone(
      [](const View&, int32_t row) { return peak(row + 1, 1.0f + 0.1f * static_cast<float>(row)); });
  const auto results = generate(backbone, dream(4, 4), scripted_context(1), {{{5, 6}, 0}});
  EXPECT_THAT(results[0].tokens, ElementsAre(2, 3, 4, 5));
  ASSERT_EQ(backbone.calls.size(), 4u);
  std::vector<int64_t> masked;
  for (const Call& call : backbone.calls) {
    const SequenceCall& s = call.sequences[0];
    masked.push_back(masks(s));
    std::vector<int32_t> masked_positions;
    for (size_t p = 0; p < s.tokens.size(); ++p) {
      if (s.tokens[p] == kMask) masked_positions.push_back(static_cast<int32_t>(p) - 1);
    }
    EXPECT_EQ(s.logit_rows, masked_positions);
  }
  EXPECT_THAT(masked, ElementsAre(4, 4, 3, 2));
}

}  // namespace
}  // namespace dlm
