// The decoding tasks and the Decoder (samplers/), against tools/reference/SEMANTICS.md: a ScriptedBackbone
// whose logits are a function of (the sequence's tokens, the row's position) shows exactly which forwards
// each method runs, with which cache policy, and what it commits; the tiny parity models show that every
// method decodes a request the same alone, in a batch, and in refilled rows, at temperature > 0.
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

namespace dlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int32_t kMask = 0;
constexpr int32_t kEos = 9;
constexpr int64_t kVocab = 10;

// What the backbone knows of a sequence in one call: the token at each position (its cached positions, then
// the call's rows over them), -1 where it knows nothing.
using View = std::vector<int32_t>;
using LogitFn = std::function<std::vector<float>(const View& view, int32_t position)>;

// A cache that holds the token each cached position was written with, so the backbone can answer a row from
// the whole sequence it belongs to.
class ScriptedCache final : public SequenceCache {
 public:
  ScriptedCache(int64_t id, int64_t capacity) : id(id), capacity_(capacity) {}
  int64_t length() const override { return static_cast<int64_t>(tokens.size()); }
  int64_t capacity() const override { return capacity_; }
  void truncate(int64_t length) override {
    EXPECT_LE(length, this->length()) << "truncate grows the cache";
    tokens.resize(static_cast<size_t>(std::min(length, this->length())));
  }

  const int64_t id;
  View tokens;

 private:
  int64_t capacity_;
};

// One sequence of one forward, as the backbone saw it.
struct SequenceCall {
  CachePolicy policy = CachePolicy::None;
  int64_t cache_id = -1;
  int64_t cache_length = 0;         // before the call
  std::vector<int32_t> positions;   // of its rows
  std::vector<int32_t> tokens;      // of its rows
  std::vector<int32_t> logit_rows;  // the positions of the logit rows asked of it, in order
};

struct Call {
  Visibility visibility;
  std::vector<SequenceCall> sequences;
};

class ScriptedBackbone final : public Backbone {
 public:
  explicit ScriptedBackbone(LogitFn logits, int64_t max_positions = 64)
      : logits_(std::move(logits)), max_positions_(max_positions) {}

  int64_t vocab_size() const override { return kVocab; }
  int64_t max_positions() const override { return max_positions_; }
  std::unique_ptr<SequenceCache> new_cache(int64_t capacity) override {
    return std::make_unique<ScriptedCache>(caches_made++, capacity);
  }
  BackboneSummary summary() const override { return {}; }

  ForwardResult forward(const ForwardBatch& batch) override {
    validate_forward_batch(batch, kVocab, max_positions_);
    Call call{batch.visibility, {}};
    std::vector<View> views;
    for (int64_t b = 0; b < batch.sequences(); ++b) {
      SequenceCall s;
      const auto begin = static_cast<size_t>(batch.offsets[static_cast<size_t>(b)]);
      const auto end = static_cast<size_t>(batch.offsets[static_cast<size_t>(b) + 1]);
      s.positions.assign(batch.positions.begin() + begin, batch.positions.begin() + end);
      s.tokens.assign(batch.token_ids.begin() + begin, batch.token_ids.begin() + end);
      ScriptedCache* cache = nullptr;
      if (!batch.caches.empty() && batch.caches[static_cast<size_t>(b)].policy != CachePolicy::None) {
        cache = dynamic_cast<ScriptedCache*>(batch.caches[static_cast<size_t>(b)].cache);
        EXPECT_NE(cache, nullptr) << "a cache this backbone did not make";
      }
      View view;
      if (cache != nullptr) {
        s.policy = batch.caches[static_cast<size_t>(b)].policy;
        s.cache_id = cache->id;
        s.cache_length = cache->length();
        view = cache->tokens;
      }
      for (size_t i = 0; i < s.positions.size(); ++i) {
        const auto p = static_cast<size_t>(s.positions[i]);
        if (p >= view.size()) view.resize(p + 1, -1);
        view[p] = s.tokens[i];
      }
      if (cache != nullptr && s.policy != CachePolicy::Read) cache->tokens = view;  // Commit, Replace
      views.push_back(std::move(view));
      call.sequences.push_back(std::move(s));
    }
    output_ = HostTensor(DType::F32, Shape{static_cast<int64_t>(batch.logit_rows.size()), kVocab});
    float* out = output_.data<float>();
    for (int32_t row : batch.logit_rows) {
      size_t b = 0;
      while (batch.offsets[b + 1] <= row) ++b;
      const int32_t position = batch.positions[static_cast<size_t>(row)];
      const std::vector<float> logits = logits_(views[b], position);
      EXPECT_EQ(static_cast<int64_t>(logits.size()), kVocab);
      out = std::copy(logits.begin(), logits.end(), out);
      call.sequences[b].logit_rows.push_back(position);
    }
    calls.push_back(std::move(call));
    return ForwardResult{output_.tensor(), {}};
  }

  std::vector<Call> calls;
  int64_t caches_made = 0;

 private:
  LogitFn logits_;
  int64_t max_positions_;
  HostTensor output_;
};

// Logits with `value` at `token` and 0 elsewhere.
std::vector<float> peak(int32_t token, float value) {
  std::vector<float> logits(kVocab, 0.0f);
  logits[static_cast<size_t>(token)] = value;
  return logits;
}

DecodeContext scripted_context(int64_t shift = 0, std::vector<int32_t> stop_ids = {kEos}) {
  DecodeContext context;
  context.mask_id = kMask;
  context.stop_ids = std::move(stop_ids);
  context.logit_shift = shift;
  return context;
}

SamplingConfig llada(int64_t gen_length, int64_t steps, int64_t block_length) {
  SamplingConfig config;
  config.method = Method::Llada;
  config.gen_length = gen_length;
  config.steps = steps;
  config.block_length = block_length;
  return config;
}

SamplingConfig block_diffusion(int64_t gen_length, int64_t steps, int64_t block_length) {
  SamplingConfig config = llada(gen_length, steps, block_length);
  config.method = Method::BlockDiffusion;
  return config;
}

std::vector<GenerationResult> generate(Backbone& backbone, const SamplingConfig& config,
                                       const DecodeContext& context,
                                       const std::vector<GenerationRequest>& requests, int64_t max_rows = 8) {
  CpuBackend backend(1);
  const SamplingConfig resolved =
      resolve_sampling(config, ModelDefaults{config.method, 4}, context, backbone.vocab_size());
  Sampler sampler(backbone, backend, context, resolved);
  return sampler.generate(requests, max_rows);
}

std::vector<int32_t> range(int32_t begin, int32_t end) {
  std::vector<int32_t> out;
  for (int32_t p = begin; p < end; ++p) out.push_back(p);
  return out;
}

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

struct Expected {
  CachePolicy policy;
  int64_t cache_length;
  std::vector<int32_t> positions, logit_rows;
};

void expect_calls(const ScriptedBackbone& backbone, const std::vector<Expected>& expected) {
  ASSERT_EQ(backbone.calls.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const SequenceCall& s = backbone.calls[i].sequences.at(0);
    EXPECT_EQ(s.policy, expected[i].policy) << "call " << i;
    EXPECT_EQ(s.cache_length, expected[i].cache_length) << "call " << i;
    EXPECT_EQ(s.positions, expected[i].positions) << "call " << i;
    EXPECT_EQ(s.logit_rows, expected[i].logit_rows) << "call " << i;
  }
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

// The row at q predicts the token at q plus 1 (so a chain 1, 2, ..., 9 = EOS).
std::vector<float> counting(const View& view, int32_t row) {
  return peak((view.at(static_cast<size_t>(row)) + 1) % kVocab, 3.0f);
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
