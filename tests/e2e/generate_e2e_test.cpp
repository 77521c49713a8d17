// `dlm generate` end to end: the real binary on a tiny random-weight model written by dlm_make_tiny_model.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/e2e/tiny_model_e2e.h"

namespace {

namespace e2e = dlm::e2e;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using e2e::DlmRun;

class GenerateE2e : public e2e::TinyModelE2e {};

// One line on stderr, in the documented form.
void expect_one_line_error(const DlmRun& run, const std::string& mentions) {
  EXPECT_THAT(run.err, StartsWith("dlm: error: "));
  EXPECT_THAT(run.err, HasSubstr(mentions));
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  EXPECT_EQ(run.out, "");
}

const std::string kPrompts = "The river ran slowly past the old mill\n\nWhat is the capital?\n   \nA map\n";

TEST_F(GenerateE2e, WritesOneValidRecordPerPrompt) {
  const DlmRun run = generate({"--prompts", write("prompts.txt", kPrompts), "--seed", "5"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const std::vector<json> records = run.records();
  ASSERT_EQ(records.size(), 3u);  // blank lines skipped
  const std::vector<std::string> prompts = {"The river ran slowly past the old mill", "What is the capital?",
                                            "A map"};
  for (size_t i = 0; i < records.size(); ++i) {
    const json& r = records[i];
    EXPECT_EQ(r.at("id"), i);
    EXPECT_EQ(r.at("prompt"), prompts[i]);
    EXPECT_TRUE(r.at("text").is_string());
    // All 16 tokens, or up to the first stop token when a block held one (which ends the request).
    const auto& ids = r.at("token_ids");
    EXPECT_EQ(r.at("finish"), ids.size() == 16u ? "length" : "stop_token");
    EXPECT_TRUE(ids.size() == 16u || ids.size() <= 8u) << "a stop ends the request after its block";
    for (const json& id : ids) EXPECT_TRUE(id.is_number_integer() && id >= 0 && id < 512);
    // One forward per step: 16 masks over 8 steps commits 2 at every step (4 per block of 8).
    EXPECT_EQ(r.at("nfe"), ids.size() == 16u ? 8 : 4);
    EXPECT_EQ(r.at("tokens_per_nfe"), 2.0);
    EXPECT_GE(r.at("seconds").get<double>(), 0.0);
    for (const char* phase : {"queued", "prefill", "denoise", "commit"}) {
      EXPECT_GE(r.at("timings").at(phase).get<double>(), 0.0) << phase;
    }
    EXPECT_GT(r.at("timings").at("denoise").get<double>(), 0.0);
    EXPECT_EQ(r.at("settings"), json::parse(R"({"method": "llada", "gen_length": 16, "steps": 8,
                                              "block_length": 8, "temperature": 0.0,
                                              "remasking": "low_confidence", "commit": "schedule",
                                              "cache": "none", "seed": 5})"));
  }
}

TEST_F(GenerateE2e, GreedyIsDeterministicAndBatchInvariant) {
  const DlmRun batch = generate({"--prompts", write("prompts.txt", kPrompts)});
  ASSERT_EQ(batch.exit_code, 0) << batch.err;
  EXPECT_EQ(generate({"--prompts", write("prompts.txt", kPrompts)}).untimed_records(),
            batch.untimed_records());
  const auto batched = batch.token_ids();
  // Each prompt alone, and the batch split differently, give the same tokens as the three together.
  EXPECT_EQ(generate({"-p", "What is the capital?"}).token_ids()[0], batched[1]);
  EXPECT_EQ(generate({"-p", "A map"}).token_ids()[0], batched[2]);
  EXPECT_EQ(generate({"--prompts", write("prompts.txt", kPrompts), "--batch-size", "2"}).token_ids(),
            batched);
}

TEST_F(GenerateE2e, SamplingIsReproducibleBySeed) {
  auto sample = [&](const std::string& seed) {
    const DlmRun run =
        generate({"--prompts", write("prompts.txt", kPrompts), "--temperature", "1", "--seed", seed});
    EXPECT_EQ(run.exit_code, 0) << run.err;
    return run.token_ids();
  };
  const auto first = sample("7");
  EXPECT_EQ(sample("7"), first);
  EXPECT_NE(sample("8"), first);
  // Reproducible per prompt, whatever else is in the batch.
  const DlmRun alone = generate({"-p", "A map", "--temperature", "1", "--seed", "7"});
  EXPECT_EQ(alone.token_ids()[0], first[2]);
}

TEST_F(GenerateE2e, AnOverlongPromptGetsAnErrorRecordAndTheOthersSucceed) {
  std::string words;
  for (int i = 0; i < 600; ++i) words += "river ";
  const DlmRun run =
      generate({"--prompts", write("prompts.txt", "A map\n" + words + "\nWhat is the capital?\n")});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  const std::vector<json> records = run.records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].size(), 2u);
  EXPECT_EQ(records[1].at("id"), 1);
  EXPECT_THAT(records[1].at("error").get<std::string>(),
              HasSubstr("exceeds the model's context of 512 positions"));
  EXPECT_EQ(records[0].at("token_ids").size(), 16u);
  EXPECT_EQ(records[2].at("token_ids").size(), 16u);
}

TEST_F(GenerateE2e, OutputFileHoldsTheSameRecords) {
  const std::string out = (dir_ / "out.jsonl").string();
  const DlmRun to_file = generate({"--prompts", write("prompts.txt", kPrompts), "--out", out});
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_EQ(to_file.out, "");
  const DlmRun to_stdout = generate({"--prompts", write("prompts.txt", kPrompts)});
  DlmRun from_file;
  from_file.out = e2e::read_file(out);
  EXPECT_EQ(from_file.untimed_records(), to_stdout.untimed_records());
}

TEST_F(GenerateE2e, FlagsOverrideTheRunConfig) {
  const std::string config =
      write("run.yaml", fmt::format("model: {}\nseed: 3\nsampler:\n  gen_length: 8\n"
                                    "  steps: 4\n  block_length: 4\n  remasking: random\n",
                                    DLM_E2E_MODEL_DIR));
  const DlmRun run = dlm({"generate", "--config", config, "-p", "A map", "--steps", "8"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.records()[0].at("settings"),
            json::parse(R"({"method": "llada", "gen_length": 8, "steps": 8, "block_length": 4,
                            "temperature": 0.0, "remasking": "random", "commit": "schedule",
                            "cache": "none", "seed": 3})"));
  const DlmRun bad = dlm({"generate", "--config", write("bad.yaml", "sampler:\n  stepz: 4\n"), "-p", "x"});
  EXPECT_EQ(bad.exit_code, 2);
  expect_one_line_error(bad, "stepz");
}

TEST_F(GenerateE2e, MalformedPromptsFileIsAUsageError) {
  const DlmRun run = generate({"--prompts", write("prompts.txt", "fine\nbad \xff\xfe bytes\n")});
  EXPECT_EQ(run.exit_code, 2);
  expect_one_line_error(run, "prompts.txt:2: not valid UTF-8");
}

TEST_F(GenerateE2e, MissingModelDirectoryIsAUsageError) {
  const std::string missing = (dir_ / "no_such_model").string();
  const DlmRun run = dlm({"generate", "--model", missing, "-p", "hello"});
  EXPECT_EQ(run.exit_code, 2);
  expect_one_line_error(run, missing);
}

TEST_F(GenerateE2e, UnknownFlagIsAUsageError) {
  const DlmRun run = generate({"-p", "hello", "--no-such-flag"});
  EXPECT_EQ(run.exit_code, 2);
  expect_one_line_error(run, "--no-such-flag");
}

TEST_F(GenerateE2e, InconsistentScheduleIsAUsageError) {
  const DlmRun run = generate({"-p", "hello", "--steps", "3"});  // 2 blocks of 8: steps must be even
  EXPECT_EQ(run.exit_code, 2);
  expect_one_line_error(run, "sampler.steps");
}

TEST_F(GenerateE2e, HelpDescribesTheCommand) {
  const DlmRun top = dlm({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("generate"));
  EXPECT_THAT(top.out, HasSubstr("Exit codes"));
  const DlmRun command = dlm({"generate", "--help"});
  EXPECT_EQ(command.exit_code, 0);
  for (const char* flag : {"--model", "--prompts", "--out", "--gen-length", "--steps", "--block-length",
                           "--temperature", "--remasking", "--seed", "--config"}) {
    EXPECT_THAT(command.out, HasSubstr(flag));
  }
}

// Every family decodes with its own method by default; a method the model was not trained for is refused.
TEST_F(GenerateE2e, EveryFamilyDecodesWithItsOwnMethod) {
  const std::string parity_models = std::string(DLM_GOLDEN_DIR) + "/parity/models/";
  for (auto [model, method] : {std::pair{"qwen2", "autoregressive"}, std::pair{"dream", "dream"},
                               std::pair{"sdar", "block_diffusion"},
                               std::pair{"fast_dllm_v2", "block_diffusion"}, std::pair{"llada", "llada"}}) {
    const DlmRun run =
        dlm({"generate", "-m", parity_models + model, "-p", "A map", "--gen-length", "16", "--steps", "16"});
    ASSERT_EQ(run.exit_code, 0) << model << ": " << run.err;
    const json record = run.records().at(0);
    EXPECT_EQ(record.at("settings").at("method"), method) << model;
    EXPECT_FALSE(record.at("token_ids").empty()) << model;
  }
  const DlmRun llada_on_ar =
      dlm({"generate", "-m", parity_models + "qwen2", "-p", "A map", "--method", "llada"});
  EXPECT_EQ(llada_on_ar.exit_code, 2);
  expect_one_line_error(llada_on_ar,
                        "method llada needs a model trained for masked diffusion decoding; this Qwen2 model "
                        "decodes by autoregressive (method autoregressive)");
  const DlmRun ar_on_sdar =
      dlm({"generate", "-m", parity_models + "sdar", "-p", "A map", "--method", "autoregressive"});
  EXPECT_EQ(ar_on_sdar.exit_code, 2);
  expect_one_line_error(ar_on_sdar, "block_diffusion with block_length 1 decodes it one token at a time");
}

}  // namespace
