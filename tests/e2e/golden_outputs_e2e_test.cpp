// `dlm generate` reproduces the reference decoders' tokens at temperature 0, end to end: every case of
// tests/golden/samplers/cases.json (written by tools/reference, pinned to transformers) run through the CLI
// on its tiny parity checkpoint, with the case's prompt ids and settings as JSONL items and its stop ids in a
// model overlay.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/e2e/dlm_process.h"

namespace {

namespace fs = std::filesystem;
namespace e2e = dlm::e2e;
using nlohmann::json;

const json& golden_cases() {
  static const json cases =
      json::parse(e2e::read_file(fs::path(DLM_GOLDEN_DIR) / "samplers/cases.json"))["cases"];
  return cases;
}

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const json& c : golden_cases()) names.push_back(c["name"].get<std::string>());
  return names;
}

class GoldenOutputs : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenOutputs, GenerateReproducesTheReferenceTokens) {
  const json* found = nullptr;
  for (const json& c : golden_cases()) {
    if (c["name"] == GetParam()) found = &c;
  }
  ASSERT_NE(found, nullptr);
  const json& c = *found;
  const fs::path dir = e2e::fresh_work_dir(DLM_E2E_WORK_DIR);
  const fs::path overlay = dir / "stops.yaml", prompts = dir / "prompts.jsonl";
  std::ofstream(overlay) << fmt::format("stop_token_ids: {}\n", c["stop_ids"].dump());
  std::ofstream items(prompts);
  for (size_t i = 0; i < c["requests"].size(); ++i) {
    json item = c["settings"];  // per-item settings: the case's keys are the sampler's
    item["id"] = i;
    item["prompt_ids"] = c["requests"][i]["prompt"];
    items << item.dump() << "\n";
  }
  items.close();
  const fs::path model = fs::path(DLM_GOLDEN_DIR) / "parity/models" / c["model"].get<std::string>();
  const e2e::DlmRun run =
      e2e::run_program(DLM_BINARY,
                       {"generate", "--model", model.string(), "--model-config", overlay.string(),
                        "--prompts", prompts.string(), "--batch-size", "2"},
                       dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<json> records = e2e::parse_jsonl(run.out);
  ASSERT_EQ(records.size(), c["requests"].size());
  for (size_t i = 0; i < records.size(); ++i) {
    const json& want = c["requests"][i];
    EXPECT_EQ(records[i]["id"], i);
    EXPECT_EQ(records[i]["token_ids"], want["tokens"])
        << "request " << i << " (min gap " << want["min_gap"] << ")";
    EXPECT_EQ(records[i]["nfe"], want["nfe"]) << "request " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Samplers, GoldenOutputs, ::testing::ValuesIn(case_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
