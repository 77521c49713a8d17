#include "samplers/llada.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "samplers/selection.h"
#include "samplers/token_sampler.h"
#include "samplers/transfer_schedule.h"

namespace dlm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int32_t kMask = 0;
constexpr int64_t kVocab = 8;

// A backbone whose logits come from a function of (the sequence's tokens, the row's position), so a row
// depends only on its own sequence; it records every batch it is given.
class ScriptedBackbone final : public Backbone {
 public:
  using Logits = std::function<std::vector<float>(const std::vector<int32_t>& sequence, int32_t position)>;
  explicit ScriptedBackbone(Logits logits) : logits_(std::move(logits)) {}

  int64_t vocab_size() const override { return kVocab; }
  int64_t max_positions() const override { return 32; }
  std::unique_ptr<SequenceCache> new_cache(int64_t) override { return nullptr; }  // the sampler uses none
  BackboneSummary summary() const override { return {}; }
  ForwardResult forward(const ForwardBatch& batch) override {
    validate_forward_batch(batch, kVocab, max_positions());
    calls.push_back(batch);
    output_ = HostTensor(DType::F32, Shape{static_cast<int64_t>(batch.logit_rows.size()), kVocab});
    float* out = output_.data<float>();
    for (int32_t row : batch.logit_rows) {
      int64_t b = 0;
      while (batch.offsets[b + 1] <= row) ++b;
      const std::vector<int32_t> sequence(batch.token_ids.begin() + batch.offsets[b],
                                          batch.token_ids.begin() + batch.offsets[b + 1]);
      const std::vector<float> logits = logits_(sequence, batch.positions[row]);
      out = std::copy(logits.begin(), logits.end(), out);
    }
    return ForwardResult{output_.tensor(), {}};
  }

  std::vector<ForwardBatch> calls;

 private:
  Logits logits_;
  HostTensor output_;
};

// Logits with `value` at `token` and 0 elsewhere.
std::vector<float> peak(int32_t token, float value) {
  std::vector<float> logits(kVocab, 0.0f);
  logits[static_cast<size_t>(token)] = value;
  return logits;
}

// The masked positions a call asked logits for.
std::vector<int32_t> requested_positions(const ForwardBatch& batch) {
  std::vector<int32_t> positions;
  for (int32_t row : batch.logit_rows) positions.push_back(batch.positions[row]);
  return positions;
}

SamplingConfig settings(int64_t gen_length, int64_t steps, int64_t block_length, double temperature = 0.0,
                        Remasking remasking = Remasking::LowConfidence) {
  return SamplingConfig{gen_length, steps, block_length, temperature, remasking};
}

TEST(TransferSchedule, SpreadsTheRemainderOverTheFirstSteps) {
  // LLaDA's get_num_transfer_tokens, worked by hand: base = masked // steps, the first masked % steps get +1.
  EXPECT_THAT(num_transfer_tokens(10, 4), ElementsAre(3, 3, 2, 2));
  EXPECT_THAT(num_transfer_tokens(32, 32), ElementsAre(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
                                                       1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
  EXPECT_THAT(num_transfer_tokens(3, 5), ElementsAre(1, 1, 1, 0, 0));
  EXPECT_THAT(num_transfer_tokens(7, 3), ElementsAre(3, 2, 2));
  EXPECT_THAT(num_transfer_tokens(8, 1), ElementsAre(8));
  EXPECT_THAT(num_transfer_tokens(0, 2), ElementsAre(0, 0));
}

TEST(Selection, TopKPrefersHigherConfidenceThenLowerIndexAndRanksNanLast) {
  const std::vector<float> confidence = {0.2f, 0.9f, NAN, 0.9f, 0.5f, -INFINITY};
  EXPECT_THAT(top_k_indices(confidence, 3), ElementsAre(1, 3, 4));
  EXPECT_THAT(top_k_indices(confidence, 0), ElementsAre());
  EXPECT_EQ(top_k_indices(confidence, 6).size(), 6u);
  EXPECT_THROW(top_k_indices(confidence, 7), Error);
}

TEST(LladaSampler, CommitsTheMostConfidentPredictionsOfAHandMadeLogitSequence) {
  // Prompt [5, 6]; 4 masks in one block over 2 steps: 2 commits per step. The logits depend on the canvas:
  // before any commit, position 2 is very sure of 3, position 4 fairly sure of 7, position 5 less sure of 1,
  // position 3 unsure of 4; afterwards, 3 and 5 change their minds to 2 and 6.
  ScriptedBackbone backbone([](const std::vector<int32_t>& sequence, int32_t position) {
    const bool first_step = sequence[2] == kMask;
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
  CpuBackend backend(1);
  LladaSampler sampler(backbone, backend, kMask, settings(4, 2, 4));
  const std::vector<GenerationRequest> requests = {{{5, 6}, 0}};
  const std::vector<GenerationResult> results = sampler.generate(requests);

  // Step 1 commits positions 2 (p of 3) and 4 (p of 7); step 2 commits the rest with the new predictions.
  EXPECT_THAT(results[0].tokens, ElementsAre(3, 2, 7, 6));
  EXPECT_EQ(results[0].nfe, 2);
  ASSERT_EQ(backbone.calls.size(), 2u);
  EXPECT_EQ(backbone.calls[0].visibility.kind, VisibilityKind::Bidirectional);
  EXPECT_THAT(backbone.calls[0].token_ids, ElementsAre(5, 6, kMask, kMask, kMask, kMask));
  EXPECT_THAT(requested_positions(backbone.calls[0]), ElementsAre(2, 3, 4, 5));
  EXPECT_THAT(backbone.calls[1].token_ids, ElementsAre(5, 6, 3, kMask, 7, kMask));
  EXPECT_THAT(requested_positions(backbone.calls[1]), ElementsAre(3, 5));
}

TEST(LladaSampler, DecodesBlocksLeftToRightAndNeverAsksBeyondTheCurrentBlock) {
  // Every position is surest at the far end, so only the block boundary keeps the order left to right.
  ScriptedBackbone backbone([](const std::vector<int32_t>&, int32_t position) {
    return peak(position % kVocab == kMask ? 1 : position % kVocab, static_cast<float>(position));
  });
  CpuBackend backend(1);
  LladaSampler sampler(backbone, backend, kMask, settings(6, 6, 2));  // 3 blocks of 2, 2 steps each
  const std::vector<GenerationRequest> requests = {{{5}, 0}};
  const std::vector<GenerationResult> results = sampler.generate(requests);
  EXPECT_THAT(results[0].tokens, ElementsAre(1, 2, 3, 4, 5, 6));
  ASSERT_EQ(backbone.calls.size(), 6u);
  // Within a block the surer (later) position goes first.
  EXPECT_THAT(requested_positions(backbone.calls[0]), ElementsAre(1, 2));
  EXPECT_THAT(backbone.calls[1].token_ids, ElementsAre(5, kMask, 2, kMask, kMask, kMask, kMask));
  EXPECT_THAT(requested_positions(backbone.calls[1]), ElementsAre(1));
  EXPECT_THAT(requested_positions(backbone.calls[2]), ElementsAre(3, 4));
  EXPECT_THAT(requested_positions(backbone.calls[4]), ElementsAre(5, 6));
}

TEST(LladaSampler, SkipsStepsThatCommitNothing) {
  // 2 masks over 4 steps: the schedule is [1, 1, 0, 0], and the two empty steps need no forward.
  ScriptedBackbone backbone(
      [](const std::vector<int32_t>&, int32_t position) { return peak(position, 1.0f); });
  CpuBackend backend(1);
  LladaSampler sampler(backbone, backend, kMask, settings(2, 4, 2));
  const std::vector<GenerationRequest> requests = {{{4}, 0}};
  const std::vector<GenerationResult> results = sampler.generate(requests);
  EXPECT_THAT(results[0].tokens, ElementsAre(1, 2));
  EXPECT_EQ(results[0].nfe, 2);
  EXPECT_EQ(backbone.calls.size(), 2u);
}

// Logits that depend on the whole sequence (a token's neighbours), so batching mistakes would show.
std::vector<float> mixing_logits(const std::vector<int32_t>& sequence, int32_t position) {
  std::vector<float> logits(kVocab);
  for (int64_t v = 0; v < kVocab; ++v) {
    double value = 0.3 * static_cast<double>((v * 7 + position * 3) % 5);
    for (size_t i = 0; i < sequence.size(); ++i)
      value += 0.1 * std::sin(static_cast<double>(sequence[i] * (v + 1) + i));
    logits[static_cast<size_t>(v)] = static_cast<float>(value);
  }
  return logits;
}

std::vector<std::vector<int32_t>> run(const std::vector<GenerationRequest>& requests,
                                      const SamplingConfig& s) {
  ScriptedBackbone backbone(mixing_logits);
  CpuBackend backend(1);
  LladaSampler sampler(backbone, backend, kMask, s);
  std::vector<std::vector<int32_t>> tokens;
  for (const GenerationResult& result : sampler.generate(requests)) tokens.push_back(result.tokens);
  return tokens;
}

TEST(LladaSampler, OutputDoesNotDependOnTheBatch) {
  const GenerationRequest a{{3, 1, 4, 1, 5}, 11}, b{{2, 7}, 12}, c{{6, 6, 6, 6, 6, 6, 6, 6}, 13};
  for (const SamplingConfig& s :
       {settings(8, 8, 4), settings(8, 4, 4, 0.7), settings(8, 8, 8, 1.0, Remasking::Random)}) {
    const auto alone = run({a}, s);
    const auto batched = run({b, a, c}, s);
    EXPECT_EQ(batched[1], alone[0]) << "temperature " << s.temperature;
    EXPECT_EQ(batched[0], run({b}, s)[0]);
  }
}

TEST(LladaSampler, SeedsMakeSamplingReproducible) {
  const SamplingConfig s = settings(16, 16, 16, 1.0);
  const auto first = run({{{1, 2, 3}, 7}}, s);
  EXPECT_EQ(run({{{1, 2, 3}, 7}}, s), first);
  EXPECT_NE(run({{{1, 2, 3}, 8}}, s), first);
}

TEST(LladaSampler, RejectsInconsistentSettingsAndOverlongPrompts) {
  ScriptedBackbone backbone(mixing_logits);
  CpuBackend backend(1);
  EXPECT_THROW(LladaSampler(backbone, backend, kMask, settings(8, 3, 4)), InputError);   // 2 blocks, 3 steps
  EXPECT_THROW(LladaSampler(backbone, backend, kVocab, settings(8, 8, 4)), InputError);  // mask id outside
  try {
    LladaSampler::check_fits(backbone, settings(8, 8, 4), GenerationRequest{std::vector<int32_t>(25, 1), 0});
    ADD_FAILURE() << "a 25-token prompt plus 8 fits a 32-position context";
  } catch (const InputError& error) {
    EXPECT_THAT(error.what(),
                HasSubstr("prompt of 25 tokens plus gen_length 8 exceeds the model's context of 32"));
  }
  EXPECT_NO_THROW(LladaSampler::check_fits(backbone, settings(8, 8, 4),
                                           GenerationRequest{std::vector<int32_t>(24, 1), 0}));
}

TEST(TokenSampler, GumbelMaxSamplesFromTheTemperedSoftmax) {
  // Over two tokens with logits [0, ln 3], Gumbel-max at temperature T picks token 1 with probability
  // 3^(1/T) / (1 + 3^(1/T)): 0.75 at T = 1 and 0.9 at T = 0.5.
  constexpr int64_t kRows = 20000;
  HostTensor logits(DType::F32, Shape{kRows, 2});
  std::vector<RowStream> rows;
  for (int64_t r = 0; r < kRows; ++r) {
    logits.data<float>()[2 * r] = 0.0f;
    logits.data<float>()[2 * r + 1] = std::log(3.0f);
    rows.push_back(RowStream{RngStream{42}, r});
  }
  CpuBackend backend(1);
  for (auto [temperature, expected] : {std::pair{1.0, 0.75}, std::pair{0.5, 0.9}}) {
    SampledTokens sampled;
    sample_tokens(backend, logits, temperature, rows, 3, WantProbabilities::Yes, sampled);
    double ones = 0;
    for (int32_t token : sampled.tokens) ones += token;
    // Five standard deviations of a binomial proportion over 20000 draws is below 0.016.
    EXPECT_NEAR(ones / kRows, expected, 0.016) << "temperature " << temperature;
    // The probability reported is the untempered softmax of the chosen token: 1/4 or 3/4.
    for (size_t r = 0; r < 8; ++r)
      EXPECT_FLOAT_EQ(sampled.probabilities[r], sampled.tokens[r] == 1 ? 0.75f : 0.25f);
  }
}

TEST(TokenSampler, GreedyTakesTheFirstMaximumAndItsProbability) {
  const HostTensor logits =
      HostTensor::from(Shape{2, 3}, std::vector<float>{1.0f, 3.0f, 3.0f, 0.0f, 0.0f, 0.0f});
  const std::vector<RowStream> rows(2);
  CpuBackend backend(1);
  SampledTokens sampled;
  sample_tokens(backend, logits, 0.0, rows, 0, WantProbabilities::Yes, sampled);
  EXPECT_THAT(sampled.tokens, ElementsAre(1, 0));
  // e^3 / (e + 2 e^3) and 1/3, by hand.
  EXPECT_NEAR(sampled.probabilities[0], std::exp(3.0) / (std::exp(1.0) + 2 * std::exp(3.0)), 1e-6);
  EXPECT_NEAR(sampled.probabilities[1], 1.0 / 3.0, 1e-6);
}

}  // namespace
}  // namespace dlm
