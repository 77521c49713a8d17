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
#include "tests/parity/sampler_golden.h"
#include "tests/parity/token_rule_reference.h"

namespace dlm {
namespace {

class RuleApplyingCpu final : public CpuBackend {
 public:
  RuleApplyingCpu() : CpuBackend(2) {}
  bool predicts_tokens() const override { return true; }
  void predict_tokens(const Tensor& logits, std::span<const TokenRule> rules,
                      std::span<const int32_t> penalized_ids, std::span<TokenPrediction> out) override {
    ++calls;
    for (size_t r = 0; r < rules.size(); ++r) {
      out[r] = reference_prediction(logits.data_as<float>(), logits.dim(1), rules[r], static_cast<int64_t>(r),
                                    penalized_ids);
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
  EXPECT_GT(backend.calls, 0) << "the steps went through the token rules";
}

INSTANTIATE_TEST_SUITE_P(Golden, TokenRuleGolden, ::testing::ValuesIn(golden::case_names()),
                         [](const auto& info) { return info.param; });

// Sampled settings: the rules' draws must be the host's draws, token for token, every request of the case
// decoded together and with different seeds.
struct SampledSetting {
  const char* name;
  const char* golden_case;  // supplies the model, context and prompts
  void (*apply)(SamplingConfig&);
};

const SampledSetting kSampled[] = {
    {"llada_gumbel", "llada_semi_ar_schedule", [](SamplingConfig& s) { s.temperature = 0.8; }},
    {"llada_gumbel_suppressed", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.temperature = 0.6;
       s.suppress_eos = true;
       s.suppress_eos_confidence = true;
     }},
    {"llada_greedy_suppressed_margin", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.suppress_eos = true;
       s.suppress_eos_confidence = true;
       s.remasking = Remasking::Margin;
     }},
    {"llada_guided", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.cfg_scale = 1.5;
       s.temperature = 0.5;
     }},
    {"llada_random_remasking", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.temperature = 0.4;
       s.remasking = Remasking::Random;
     }},
    {"dream_categorical_entropy", "dream_entropy",
     [](SamplingConfig& s) {
       s.temperature = 0.7;
       s.remasking = Remasking::Entropy;
     }},
    {"dream_top_p", "dream_entropy",
     [](SamplingConfig& s) {
       s.temperature = 0.7;
       s.top_p = 0.9;
     }},
    {"dream_top_p_then_top_k_greedy", "dream_entropy",
     [](SamplingConfig& s) {
       s.top_p = 0.5;
       s.top_k = 3;
     }},
    {"llada_gumbel_top_k_top_p", "llada_semi_ar_schedule",
     [](SamplingConfig& s) {
       s.temperature = 0.9;
       s.top_k = 5;
       s.top_p = 0.8;
       s.suppress_eos = true;
     }},
    {"block_categorical", "sdar_schedule_steps4", [](SamplingConfig& s) { s.temperature = 1.0; }},
    {"block_top_k_top_p", "sdar_schedule_steps4",
     [](SamplingConfig& s) {
       s.temperature = 1.2;
       s.top_k = 4;
       s.top_p = 0.7;
     }},
    {"llada_dual_cache_gumbel", "llada_dual_schedule", [](SamplingConfig& s) { s.temperature = 0.7; }},
    {"block_sub_blocks_categorical", "fast_dllm_v2_threshold_sub_blocks",
     [](SamplingConfig& s) { s.temperature = 0.8; }},
    {"block_entropy_bound", "sdar_entropy_bound", [](SamplingConfig& s) { s.temperature = 0.9; }},
    {"autoregressive_categorical", "llama_ar_greedy", [](SamplingConfig& s) { s.temperature = 0.9; }},
    {"autoregressive_penalty", "llama_ar_greedy",
     [](SamplingConfig& s) {
       s.temperature = 0.9;
       s.repetition_penalty = 1.3;
     }},
    {"autoregressive_greedy_penalty", "llama_ar_greedy",
     [](SamplingConfig& s) { s.repetition_penalty = 1.5; }},
    {"autoregressive_all_filters", "llama_ar_greedy",
     [](SamplingConfig& s) {
       s.temperature = 1.1;
       s.top_k = 20;
       s.top_p = 0.8;
       s.min_p = 0.05;
       s.repetition_penalty = 1.05;
     }},
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
  EXPECT_GT(rules.calls, 0) << "the steps used token rules";
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
