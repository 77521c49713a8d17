// Sampler parity: every decoding method reproduces, token for token at temperature 0, the golden sequences
// of the reference implementations in tools/reference (torch, written from the published descriptions),
// run on the tiny parity checkpoints of tests/golden/parity. Each case's requests are decoded together, each
// alone, and two rows at a time (so freed rows are refilled mid-run): the tokens and the forward counts must
// match the reference's in all three, which is also the batch-invariance check.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backbones/load_model.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "samplers/sampler.h"

namespace dlm {
namespace {

const std::string kGoldenDir = std::string(DLM_GOLDEN_DIR);

const nlohmann::json& golden() {
  static const nlohmann::json cases = [] {
    std::ifstream in(kGoldenDir + "/samplers/cases.json");
    return nlohmann::json::parse(in);
  }();
  return cases;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& c : golden()["cases"]) names.push_back(c["name"].get<std::string>());
  return names;
}

const nlohmann::json& find_case(const std::string& name) {
  for (const auto& c : golden()["cases"]) {
    if (c["name"] == name) return c;
  }
  throw std::runtime_error("no golden case " + name);
}

// The case's settings through the real config reader: JSON scalars are valid YAML flow scalars.
SamplingConfig read_settings(const nlohmann::json& settings) {
  std::string yaml = "sampler:\n";
  for (const auto& [key, value] : settings.items()) yaml += fmt::format("  {}: {}\n", key, value.dump());
  return parse_generation_config(yaml, "golden settings").sampler;
}

Method own_method(const ModelSpec& spec) {
  switch (spec.family->decoding) {
    case DecodingKind::Autoregressive:
      return Method::Autoregressive;
    case DecodingKind::BlockDiffusion:
      return Method::BlockDiffusion;
    case DecodingKind::MaskedDiffusion:
      break;
  }
  return spec.logit_shift != 0 ? Method::Dream : Method::Llada;
}

class SamplerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(SamplerParity, ReproducesTheReferenceTokensAndForwardCounts) {
  const nlohmann::json& c = find_case(GetParam());
  CpuBackend backend(2);
  const LoadedModel model = load_model(backend, kGoldenDir + "/parity/models/" + c["model"].get<std::string>());
  DecodeContext context;
  context.mask_id = c["mask_id"].get<int32_t>();
  context.stop_ids = c["stop_ids"].get<std::vector<int32_t>>();
  context.logit_shift = c["shift"].get<int64_t>();
  EXPECT_EQ(context.logit_shift, model.spec.logit_shift) << "the case's shift is the model's";
  if (model.spec.mask_token_id) EXPECT_EQ(context.mask_id, *model.spec.mask_token_id);

  const SamplingConfig config =
      resolve_sampling(read_settings(c["settings"]), ModelDefaults{own_method(model.spec), model.spec.block_size},
                       context, model.backbone->vocab_size());
  std::vector<GenerationRequest> requests;
  for (const auto& r : c["requests"]) requests.push_back({r["prompt"].get<std::vector<int32_t>>(), 0});
  Sampler sampler(*model.backbone, backend, context, config);

  auto expect_golden = [&](size_t i, const GenerationResult& got, const std::string& how) {
    const nlohmann::json& want = c["requests"][i];
    EXPECT_EQ(got.tokens, want["tokens"].get<std::vector<int32_t>>())
        << "request " << i << " " << how << " (reference min gap " << want["min_gap"] << ")";
    EXPECT_EQ(got.nfe, want["nfe"].get<int64_t>()) << "request " << i << " " << how;
  };
  const std::vector<GenerationResult> together = sampler.generate(requests, static_cast<int64_t>(requests.size()));
  for (size_t i = 0; i < requests.size(); ++i) expect_golden(i, together[i], "in one batch");
  const std::vector<GenerationResult> pairs = sampler.generate(requests, 2);
  for (size_t i = 0; i < requests.size(); ++i) expect_golden(i, pairs[i], "two rows at a time");
  for (size_t i = 0; i < requests.size(); ++i) {
    expect_golden(i, sampler.generate(std::span(&requests[i], 1), 1).front(), "alone");
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, SamplerParity, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dlm
