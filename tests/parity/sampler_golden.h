#pragma once
// The golden decoding cases of tests/golden/samplers/cases.json (written by tools/reference) and how one is
// set up for the engine: the model, the decode context, the resolved settings and the requests. Shared by
// the CPU parity test and the CUDA end-to-end test, which must run a case the same way.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "backbones/load_model.h"
#include "engine/runtime/model_sampling.h"
#include "samplers/sampler.h"

namespace dlm::golden {

inline const nlohmann::json& cases() {
  static const nlohmann::json all = [] {
    std::ifstream in(std::string(DLM_GOLDEN_DIR) + "/samplers/cases.json");
    return nlohmann::json::parse(in);
  }();
  return all;
}

inline std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& c : cases()["cases"]) names.push_back(c["name"].get<std::string>());
  return names;
}

inline const nlohmann::json& find_case(const std::string& name) {
  for (const auto& c : cases()["cases"]) {
    if (c["name"] == name) return c;
  }
  throw std::runtime_error("no golden case " + name);
}

// The case's settings through the real config reader: JSON scalars are valid YAML flow scalars.
inline SamplingConfig read_settings(const nlohmann::json& settings) {
  std::string yaml = "sampler:\n";
  for (const auto& [key, value] : settings.items()) yaml += fmt::format("  {}: {}\n", key, value.dump());
  return parse_generation_config(yaml, "golden settings").sampler;
}

// A case ready to decode on `backend`.
struct Run {
  LoadedModel model;
  DecodeContext context;
  SamplingConfig config;
  std::vector<GenerationRequest> requests;
};

inline Run prepare(const nlohmann::json& c, Backend& backend, const ModelLoadOptions& options = {}) {
  Run run;
  run.model = load_model(
      backend, std::string(DLM_GOLDEN_DIR) + "/parity/models/" + c["model"].get<std::string>(), options);
  run.context.mask_id = c["mask_id"].get<int32_t>();
  run.context.stop_ids = c["stop_ids"].get<std::vector<int32_t>>();
  run.context.logit_shift = c["shift"].get<int64_t>();
  EXPECT_EQ(run.context.logit_shift, run.model.spec.logit_shift) << "the case's shift is the model's";
  if (run.model.spec.mask_token_id) {
    EXPECT_EQ(run.context.mask_id, *run.model.spec.mask_token_id);
  }
  run.config = resolve_sampling(read_settings(c["settings"]),
                                ModelDefaults{own_method(run.model.spec), run.model.spec.block_size},
                                run.context, run.model.backbone->vocab_size());
  for (const auto& r : c["requests"]) run.requests.push_back({r["prompt"].get<std::vector<int32_t>>(), 0});
  return run;
}

// Decodes the case's requests together, two rows at a time (freed rows refilled mid-run) and each alone, on
// the backend the run's model was loaded on: every way must give the reference's tokens and forward count,
// which is also the batch-invariance check. Requests in `near_ties` (decisions closer than the precision
// the model runs at can resolve) need only give the same tokens and count every way.
inline void expect_reference_decoding(const nlohmann::json& c, const Run& run, Backend& backend,
                                      const std::set<size_t>& near_ties = {}) {
  Sampler sampler(*run.model.backbone, backend, run.context, run.config);
  const std::vector<GenerationRequest>& requests = run.requests;
  const std::vector<GenerationResult> together =
      sampler.generate(requests, static_cast<int64_t>(requests.size()));
  const std::vector<GenerationResult> pairs = sampler.generate(requests, 2);
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationResult alone = sampler.generate(std::span(&requests[i], 1), 1).front();
    const nlohmann::json& want = c["requests"][i];
    std::vector<int32_t> want_tokens = want["tokens"].get<std::vector<int32_t>>();
    int64_t want_nfe = want["nfe"].get<int64_t>();
    std::string against = fmt::format("the reference (min gap {})", want["min_gap"].dump());
    if (near_ties.count(i) != 0) {
      want_tokens = together[i].tokens;
      want_nfe = together[i].nfe;
      against = fmt::format("the batch of all (a near tie, min gap {})", want["min_gap"].dump());
    }
    for (const auto& [got, how] : {std::pair{&together[i], "in one batch"},
                                   std::pair{&pairs[i], "two rows at a time"}, std::pair{&alone, "alone"}}) {
      EXPECT_EQ(got->tokens, want_tokens) << "request " << i << " " << how << " against " << against;
      EXPECT_EQ(got->nfe, want_nfe) << "request " << i << " " << how << " against " << against;
    }
  }
}

}  // namespace dlm::golden
