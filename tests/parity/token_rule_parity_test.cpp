// Decoding through token rules, the Decoder's device path, on a machine without a GPU: a CPU backend that
// applies each TokenRule on the host, as engine/ops/token_rule.h specifies it, from the samplers' row
// functions. Decoding with it must give every golden case's reference tokens at temperature 0, and, with
// sampled settings, exactly the plain CPU decoding: so the rules the tasks build (draw counters, positions,
// suppressions, guidance rows, the rows each task owns) are right before any kernel runs them
// (tests/gpu/cuda_token_prediction_test.cpp checks the kernel against the same host code).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "samplers/token_rules.h"
#include "tests/parity/sampler_golden.h"

namespace dlm {
namespace {

constexpr float kMinusInf = -std::numeric_limits<float>::infinity();
constexpr uint64_t kStepBits = (uint64_t{1} << 56) - 1;  // draw_step's step, below the purpose byte

TokenPrediction apply_rule(const float* logits, int64_t vocab, const TokenRule& rule, int64_t row) {
  const auto v_count = static_cast<size_t>(vocab);
  std::vector<float> l(logits + row * vocab, logits + (row + 1) * vocab);
  if (rule.guidance_row >= 0) {
    const float* guide = logits + rule.guidance_row * vocab;
    for (size_t v = 0; v < v_count; ++v) l[v] = guide[v] + rule.guidance_scale * (l[v] - guide[v]);
  }
  if (rule.divide_by_temperature) apply_temperature(l, rule.temperature);
  if (rule.suppress_before_draw >= 0) suppress(l, rule.suppress_before_draw);
  const RngStream rng{rule.seed};
  std::vector<double> probabilities;
  TokenPrediction out;
  switch (rule.draw) {
    case TokenDraw::Argmax:
      out.token = argmax(l, rule.never_drawn);
      break;
    case TokenDraw::Gumbel:
      out.token = gumbel_argmax(l, rule.temperature, rng, rule.counter & kStepBits, rule.position * v_count,
                                rule.never_drawn);
      break;
    case TokenDraw::Categorical:
      softmax(l, probabilities);
      out.token = sample_categorical(probabilities, rng.uniform_double_open(rule.counter, rule.position),
                                     rule.never_drawn);
      break;
  }
  for (int32_t id : rule.suppress_before_scores) {
    if (id >= 0) suppress(l, id);
  }
  softmax(l, probabilities);
  out.probability = confidence(probabilities, out.token, Remasking::LowConfidence);
  out.margin = confidence(probabilities, out.token, Remasking::Margin);
  out.neg_entropy = confidence(probabilities, out.token, Remasking::Entropy);
  out.entropy = entropy(probabilities);
  return out;
}

class RuleApplyingCpu final : public CpuBackend {
 public:
  RuleApplyingCpu() : CpuBackend(2) {}
  bool predicts_tokens() const override { return true; }
  void predict_tokens(const Tensor& logits, std::span<const TokenRule> rules,
                      std::span<TokenPrediction> out) override {
    ++calls;
    for (size_t r = 0; r < rules.size(); ++r) {
      out[r] = apply_rule(logits.data_as<float>(), logits.dim(1), rules[r], static_cast<int64_t>(r));
    }
  }
  int64_t calls = 0;
};

class TokenRuleGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenRuleGolden, ReproducesTheReferenceTokensAndForwardCounts) {
  const nlohmann::json& c = golden::find_case(GetParam());
  RuleApplyingCpu backend;
  const golden::Run run = golden::prepare(c, backend);
  golden::expect_reference_decoding(c, run, backend);
  // Filters and the repetition penalty read whole rows, so those settings keep the logits on the host.
  const SamplingConfig& s = run.config;
  const bool host_only = s.top_k > 0 || s.top_p < 1.0 || s.repetition_penalty != 1.0;
  EXPECT_EQ(backend.calls > 0, !host_only) << "whether the steps went through the token rules";
}

INSTANTIATE_TEST_SUITE_P(Golden, TokenRuleGolden, ::testing::ValuesIn(golden::case_names()),
                         [](const auto& info) { return info.param; });

// Sampled settings: the rules' draws must be the host's draws, token for token, every request of the case
// decoded together and with different seeds.
struct SampledSetting {
  const char* name;
  const char* golden_case;  // supplies the model, context and prompts
  void (*apply)(SamplingConfig&);
  bool on_device;  // false: the settings need host logits, so no rule may be used
};

const SampledSetting kSampled[] = {
    {"llada_gumbel", "llada_semi_ar_schedule", [](SamplingConfig& s) { s.temperature = 0.8; }, true},
    {"llada_gumbel_suppressed", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.temperature = 0.6;
       s.suppress_eos = true;
       s.suppress_eos_confidence = true;
     },
     true},
    {"llada_greedy_suppressed_margin", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.suppress_eos = true;
       s.suppress_eos_confidence = true;
       s.remasking = Remasking::Margin;
     },
     true},
    {"llada_guided", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.cfg_scale = 1.5;
       s.temperature = 0.5;
     },
     true},
    {"llada_random_remasking", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.temperature = 0.4;
       s.remasking = Remasking::Random;
     },
     true},
    {"dream_categorical_entropy", "dream_entropy",
     [](SamplingConfig& s) {
       s.temperature = 0.7;
       s.remasking = Remasking::Entropy;
     },
     true},
    {"dream_top_p_on_host", "dream_entropy",
     [](SamplingConfig& s) {
       s.temperature = 0.7;
       s.top_p = 0.9;
     },
     false},
    {"block_categorical", "sdar_schedule_steps4", [](SamplingConfig& s) { s.temperature = 1.0; }, true},
    {"llada_dual_cache_gumbel", "llada_dual_schedule", [](SamplingConfig& s) { s.temperature = 0.7; }, true},
    {"block_sub_blocks_categorical", "fast_dllm_v2_threshold_sub_blocks",
     [](SamplingConfig& s) { s.temperature = 0.8; }, true},
    {"block_entropy_bound", "sdar_entropy_bound", [](SamplingConfig& s) { s.temperature = 0.9; }, true},
    {"autoregressive_categorical", "llama_ar_greedy", [](SamplingConfig& s) { s.temperature = 0.9; }, true},
    {"autoregressive_penalty_on_host", "llama_ar_greedy",
     [](SamplingConfig& s) {
       s.temperature = 0.9;
       s.repetition_penalty = 1.3;
     },
     false},
};

void PrintTo(const SampledSetting& setting, std::ostream* os) {
  *os << setting.name;
}

class TokenRuleSampled : public ::testing::TestWithParam<SampledSetting> {};

TEST_P(TokenRuleSampled, DrawsWhatTheHostDraws) {
  const SampledSetting& setting = GetParam();
  const nlohmann::json& c = golden::find_case(setting.golden_case);
  CpuBackend host(2);
  RuleApplyingCpu rules;
  golden::Run on_host = golden::prepare(c, host);
  golden::Run by_rules = golden::prepare(c, rules);
  setting.apply(on_host.config);
  setting.apply(by_rules.config);
  for (size_t i = 0; i < on_host.requests.size(); ++i) {
    on_host.requests[i].seed = by_rules.requests[i].seed = 1000 + i;
  }
  const int64_t rows = static_cast<int64_t>(on_host.requests.size());
  const std::vector<GenerationResult> want =
      Sampler(*on_host.model.backbone, host, on_host.context, on_host.config)
          .generate(on_host.requests, rows);
  const std::vector<GenerationResult> got =
      Sampler(*by_rules.model.backbone, rules, by_rules.context, by_rules.config)
          .generate(by_rules.requests, rows);
  EXPECT_EQ(rules.calls > 0, setting.on_device) << "whether the steps used token rules";
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].tokens, want[i].tokens) << "request " << i;
    EXPECT_EQ(got[i].nfe, want[i].nfe) << "request " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Settings, TokenRuleSampled, ::testing::ValuesIn(kSampled),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dlm
