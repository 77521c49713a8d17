// `dlm generate` over batch inputs, end to end on the tiny model: JSONL items with their own settings,
// error records for bad lines, --resume after a killed run, the precedence of settings, --print-config,
// --visual, chat templates and model names.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/e2e/tiny_model_e2e.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
namespace e2e = dlm::e2e;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class BatchInputsE2e : public e2e::TinyModelE2e {};

std::vector<json> ok_records(const e2e::DlmRun& run) {
  EXPECT_EQ(run.exit_code, 0) << run.err;
  return run.records();
}

TEST_F(BatchInputsE2e, JsonlItemsKeepTheirIdsAndTheirOwnSettings) {
  const std::string prompts =
      write("items.jsonl",
            "{\"id\": \"first\", \"prompt\": \"A map\"}\n"
            "\n"
            "{\"id\": 42, \"prompt\": \"A map\", \"steps\": 16, \"expected\": \"x\"}\n"
            "{\"prompt\": \"The river\", \"seed\": 3, \"temperature\": 0.9}\n");
  const std::vector<json> records = ok_records(generate({"--prompts", prompts}));
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["id"], "first");
  EXPECT_EQ(records[1]["id"], 42);
  EXPECT_EQ(records[2]["id"], 2) << "an item without an id is numbered by its place";
  EXPECT_EQ(records[0]["settings"]["steps"], 8);
  EXPECT_EQ(records[1]["settings"]["steps"], 16) << "the item's key beats the flag";
  EXPECT_EQ(records[1]["expected"], "x");
  EXPECT_EQ(records[2]["settings"]["seed"], 3);
  // Each item decodes as a run with those settings as flags would.
  EXPECT_EQ(ok_records(generate({"-p", "A map", "--steps", "16"}))[0]["token_ids"], records[1]["token_ids"]);
  EXPECT_EQ(ok_records(generate({"-p", "The river", "--seed", "3", "--temperature", "0.9"}))[0]["token_ids"],
            records[2]["token_ids"]);
  EXPECT_EQ(ok_records(generate({"-p", "A map"}))[0]["token_ids"], records[0]["token_ids"]);
}

TEST_F(BatchInputsE2e, BadJsonlLinesGetErrorRecordsNamingTheLineAndTheOthersSucceed) {
  const std::string prompts =
      write("items.jsonl",
            "{\"id\": 1, \"prompt\": \"A map\"}\n"
            "{\"id\": 2, \"prompt\": \"A map\"\n"
            "[1, 2]\n"
            "{\"id\": 4}\n"
            "{\"id\": 5, \"prompt\": \"A map\", \"stpes\": 4}\n"
            "{\"id\": 6, \"prompt\": \"A map\", \"steps\": \"4\"}\n"
            "{\"id\": 1, \"prompt\": \"again\"}\n"
            "{\"id\": 8, \"prompt\": \"A map\", \"steps\": 7}\n"
            "{\"id\": 9, \"prompt_ids\": [0, 99999]}\n"
            "{\"id\": 10, \"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}\n"
            "{\"id\": 11, \"prompt\": \"The river\"}\n");
  const e2e::DlmRun run = generate({"--prompts", prompts});
  EXPECT_EQ(run.exit_code, 1) << "some items failed";
  const std::vector<json> records = run.records();
  ASSERT_EQ(records.size(), 11u);
  const std::vector<std::pair<int, std::vector<std::string>>> errors = {
      {1, {"items.jsonl:2", "not valid JSON"}},
      {2, {"items.jsonl:3", "expected a JSON object"}},
      {3, {"items.jsonl:4", "\"prompt\", \"messages\" or \"prompt_ids\""}},
      {4, {"items.jsonl:5", "unknown key 'stpes'", "steps"}},
      {5, {"items.jsonl:6", "steps", "expected an integer"}},
      {6, {"items.jsonl:7", "duplicate id 1", "items.jsonl:1"}},
      {7, {"items.jsonl:8", "steps", "multiple of the number of blocks"}},
      {8, {"items.jsonl:9", "99999", "vocabulary"}},
      {9, {"items.jsonl:10", "role", "robot"}},
  };
  for (const auto& [index, mentions] : errors) {
    const json& record = records[static_cast<size_t>(index)];
    ASSERT_TRUE(record.contains("error")) << record.dump();
    for (const std::string& text : mentions) EXPECT_THAT(record["error"].get<std::string>(), HasSubstr(text));
    EXPECT_FALSE(record.contains("text"));
  }
  EXPECT_EQ(records[0]["id"], 1);
  EXPECT_EQ(records[1]["id"], 1) << "an unreadable line is numbered by its place";
  EXPECT_EQ(records[4]["id"], 5) << "the id of a readable line is kept";
  for (size_t good : {0u, 10u}) EXPECT_TRUE(records[good].contains("text")) << records[good].dump();
}

TEST_F(BatchInputsE2e, ResumeFinishesAPartlyWrittenOutputWithTheSameRecords) {
  std::string prompts;
  for (int i = 0; i < 6; ++i) prompts += fmt::format("Prompt number {} about a map\n", i);
  const std::string prompts_file = write("prompts.txt", prompts);
  const std::vector<json> full = e2e::untimed(ok_records(generate({"--prompts", prompts_file})));
  ASSERT_EQ(full.size(), 6u);

  // What a run killed while writing its fourth record leaves: three whole lines and part of the fourth.
  const std::string out = (dir_ / "out.jsonl").string();
  ASSERT_EQ(generate({"--prompts", prompts_file, "-o", out}).exit_code, 0);
  const std::string written = e2e::read_file(out);
  size_t cut = 0;
  for (int line = 0; line < 3; ++line) cut = written.find('\n', cut) + 1;
  write("out.jsonl", written.substr(0, cut + 25));

  const e2e::DlmRun resumed = generate({"--prompts", prompts_file, "-o", out, "--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(e2e::untimed(e2e::parse_jsonl(e2e::read_file(out))), full);
  // Once everything is done, --resume adds nothing.
  ASSERT_EQ(generate({"--prompts", prompts_file, "-o", out, "--resume"}).exit_code, 0);
  EXPECT_EQ(e2e::parse_jsonl(e2e::read_file(out)).size(), 6u);
}

TEST_F(BatchInputsE2e, ResumeAfterAKilledRunLosesNothing) {
  std::string prompts;
  constexpr int kItems = 60;
  for (int i = 0; i < kItems; ++i)
    prompts += fmt::format("{{\"id\": \"p{}\", \"prompt\": \"Prompt {} of a map\"}}\n", i, i);
  const std::string prompts_file = write("prompts.jsonl", prompts);
  const std::string out = (dir_ / "out.jsonl").string();
  std::vector<std::string> args = generate_args(
      {"--prompts", prompts_file, "-o", out, "--batch-size", "1", "--gen-length", "64", "--steps", "64"});
  args.insert(args.begin(), DLM_BINARY);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, DLM_BINARY, nullptr, nullptr, argv.data(), environ), 0);
  // Kill it once a few records are on disk.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    const std::string text = e2e::read_file(out);
    if (std::count(text.begin(), text.end(), '\n') >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  const size_t before =
      e2e::parse_jsonl(e2e::read_file(out).substr(0, e2e::read_file(out).rfind('\n') + 1)).size();
  ASSERT_LT(before, static_cast<size_t>(kItems));

  args.erase(args.begin());
  args.push_back("--resume");
  ASSERT_EQ(dlm(args).exit_code, 0);
  const std::vector<json> records = e2e::parse_jsonl(e2e::read_file(out));
  ASSERT_EQ(records.size(), static_cast<size_t>(kItems));
  std::set<std::string> ids;
  for (const json& record : records) {
    EXPECT_TRUE(record.contains("text")) << record.dump();
    ids.insert(record["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kItems)) << "every item exactly once";
  // A resumed item decodes as it would have in the first run.
  const json last = records.back();
  EXPECT_EQ(
      ok_records(generate({"-p", last["prompt"], "--gen-length", "64", "--steps", "64"}))[0]["token_ids"],
      last["token_ids"]);
}

TEST_F(BatchInputsE2e, ResumeNeedsAnOutputFileOfRecords) {
  const std::string prompts = write("prompts.txt", "A map\n");
  const e2e::DlmRun no_out = generate({"--prompts", prompts, "--resume"});
  EXPECT_EQ(no_out.exit_code, 2);
  EXPECT_THAT(no_out.err, AllOf(StartsWith("dlm: error: "), HasSubstr("--resume needs --out")));
  const std::string foreign = write("notes.jsonl", "{\"id\": 0, \"text\": \"ok\"}\nhello\n");
  const e2e::DlmRun bad = generate({"--prompts", prompts, "-o", foreign, "--resume"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, AllOf(HasSubstr("notes.jsonl:2"), HasSubstr("not a dlm record")));
  EXPECT_EQ(e2e::read_file(foreign), "{\"id\": 0, \"text\": \"ok\"}\nhello\n") << "left as it was";
}

TEST_F(BatchInputsE2e, SettingsLayerModelThenConfigThenFlagsThenItem) {
  auto steps = [&](const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"generate", "--model", DLM_E2E_MODEL_DIR, "--print-config"};
    args.insert(args.end(), extra.begin(), extra.end());
    const e2e::DlmRun run = dlm(args);
    EXPECT_EQ(run.exit_code, 0) << run.err;
    const size_t at = run.out.find("  steps: ");
    return at == std::string::npos ? std::string("missing")
                                   : run.out.substr(at + 9, run.out.find('\n', at) - at - 9);
  };
  const std::string overlay =
      write("model.yaml", "sampler:\n  steps: 4\n  gen_length: 16\n  block_length: 8\n");
  const std::string config = write("run.yaml", "sampler:\n  steps: 8\n");
  EXPECT_EQ(steps({}), "128") << "the built-in default";
  EXPECT_EQ(steps({"--model-config", overlay}), "4") << "the model's own";
  EXPECT_EQ(steps({"--model-config", overlay, "--config", config}), "8") << "the run config over the model";
  EXPECT_EQ(steps({"--model-config", overlay, "--config", config, "--steps", "16"}), "16")
      << "flags over both";
  const std::string items = write("items.jsonl", "{\"prompt\": \"A map\", \"steps\": 2}\n");
  const std::vector<json> records =
      ok_records(dlm({"generate", "--model", DLM_E2E_MODEL_DIR, "--model-config", overlay, "--config", config,
                      "--steps", "16", "--prompts", items}));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["settings"]["steps"], 2) << "the item over everything";
  EXPECT_EQ(records[0]["settings"]["gen_length"], 16) << "the model's gen_length where nothing overrides it";
}

TEST_F(BatchInputsE2e, PrintConfigIsARunConfigThatReproducesTheRun) {
  const e2e::DlmRun printed = generate({"--print-config", "--seed", "11", "--temperature", "0.8"});
  ASSERT_EQ(printed.exit_code, 0) << printed.err;
  EXPECT_THAT(printed.out, HasSubstr("method: llada")) << "auto is resolved for the model";
  const std::string config = write("printed.yaml", printed.out);
  const e2e::DlmRun from_config = dlm({"generate", "--config", config, "-p", "A map"});
  const e2e::DlmRun from_flags = generate({"--seed", "11", "--temperature", "0.8", "-p", "A map"});
  EXPECT_EQ(e2e::untimed(ok_records(from_config)), e2e::untimed(ok_records(from_flags)));
}

TEST_F(BatchInputsE2e, VisualPrintsEveryStepOfTheCanvasOnStderr) {
  const e2e::DlmRun run = generate({"-p", "A map", "--visual", "--no-stop-early", "--block-length", "16"});
  const std::vector<json> records = ok_records(run);
  ASSERT_EQ(records.size(), 1u);
  std::vector<std::string> frames;
  std::istringstream lines(run.err);
  for (std::string line; std::getline(lines, line);) frames.push_back(line);
  ASSERT_EQ(frames.size(), records[0]["nfe"].get<size_t>()) << run.err;
  const std::string masked = "\u2591";
  auto count_masked = [&](const std::string& frame) {
    size_t n = 0;
    for (size_t at = frame.find(masked); at != std::string::npos; at = frame.find(masked, at + 1)) ++n;
    return n;
  };
  for (size_t step = 0; step < frames.size(); ++step) {
    EXPECT_THAT(frames[step], StartsWith(fmt::format("[0] step {}: ", step + 1)));
    // 16 positions, 2 committed per step.
    EXPECT_EQ(count_masked(frames[step]), 16 - 2 * (step + 1)) << frames[step];
  }
}

TEST_F(BatchInputsE2e, ChatRendersTheModelsTemplate) {
  const std::string overlay = write("chat.yaml",
                                    "chat:\n"
                                    "  system: \"S: {content}\\n\"\n"
                                    "  user: \"U: {content}\\n\"\n"
                                    "  assistant: \"A: {content}\\n\"\n"
                                    "  generation: \"A:\"\n"
                                    "  default_system: \"be kind\"\n");
  const std::vector<json> chat = ok_records(generate({"--model-config", overlay, "--chat", "-p", "a map"}));
  const std::vector<json> plain = ok_records(generate({"-p", "S: be kind\nU: a map\nA:"}));
  EXPECT_EQ(chat[0]["token_ids"], plain[0]["token_ids"]);
  EXPECT_EQ(chat[0]["prompt"], "a map") << "the record keeps the prompt as given";
  const std::string items = write("chat.jsonl",
                                  "{\"messages\": [{\"role\": \"system\", \"content\": \"terse\"}, "
                                  "{\"role\": \"user\", \"content\": \"a map\"}]}\n");
  const std::vector<json> messages = ok_records(generate({"--model-config", overlay, "--prompts", items}));
  EXPECT_EQ(messages[0]["token_ids"], ok_records(generate({"-p", "S: terse\nU: a map\nA:"}))[0]["token_ids"]);
  EXPECT_EQ(messages[0]["messages"][0]["role"], "system");

  const e2e::DlmRun no_template = generate({"--chat", "-p", "a map"});
  EXPECT_EQ(no_template.exit_code, 2);
  EXPECT_THAT(no_template.err, AllOf(HasSubstr("--chat"), HasSubstr("no chat template")));
}

TEST_F(BatchInputsE2e, ProgressBarIsDrawnOnATerminalAndNeverInTheOutput) {
  if (!fs::exists("/usr/bin/script"))
    GTEST_SKIP() << "needs script(1) from util-linux to give dlm a terminal";
  const std::string out = (dir_ / "out.jsonl").string();
  std::string command;
  for (const std::string& arg : generate_args({"-p", "A map", "-p", "The river", "-o", out})) {
    command += ' ';
    command += e2e::shell_quote(arg);
  }
  const e2e::DlmRun terminal = e2e::run_program(
      "/usr/bin/script", {"-qec", e2e::shell_quote(DLM_BINARY) + command, "/dev/null"}, dir_);
  ASSERT_EQ(terminal.exit_code, 0) << terminal.err;
  EXPECT_THAT(terminal.out, HasSubstr("] 2/2  ")) << "the bar reaches the total";
  EXPECT_THAT(terminal.out, HasSubstr(" tok/s"));
  const std::vector<json> records = e2e::parse_jsonl(e2e::read_file(out));
  ASSERT_EQ(records.size(), 2u) << "the output file holds records alone";
  const e2e::DlmRun redirected = generate({"-p", "A map"});
  EXPECT_EQ(redirected.err, "") << "no bar when stderr is not a terminal";
}

TEST_F(BatchInputsE2e, CudaDeviceDecodesAsTheCpuOrSaysWhyNot) {
  const std::vector<std::string> prompt = {"-p", "A map", "--precision", "f32"};
  std::vector<std::string> on_gpu = prompt;
  on_gpu.insert(on_gpu.end(), {"--device", "cuda"});
  const e2e::DlmRun gpu = generate(on_gpu);
  if (gpu.exit_code == 2) {
    EXPECT_THAT(gpu.err, StartsWith("dlm: error: --device cuda: "));
    EXPECT_EQ(std::count(gpu.err.begin(), gpu.err.end(), '\n'), 1) << gpu.err;
    GTEST_SKIP() << "no GPU here: " << gpu.err;
  }
  ASSERT_EQ(gpu.exit_code, 0) << gpu.err;
  const auto cpu_tokens = generate(prompt).token_ids();
  EXPECT_EQ(gpu.token_ids(), cpu_tokens) << "f32 activations: the CPU's tokens";
  on_gpu.insert(on_gpu.end(), {"--cuda-graphs", "off", "--cuda-tune-gemm", "--cuda-split-attention", "off",
                               "--steps", "16"});
  std::vector<std::string> on_cpu = prompt;
  on_cpu.insert(on_cpu.end(), {"--steps", "16"});
  EXPECT_EQ(generate(on_gpu).token_ids(), generate(on_cpu).token_ids())
      << "steps queued op by op, tuned products, unsplit attention: the same tokens";
}

TEST_F(BatchInputsE2e, CudaOnlyFlagsOnTheCpuAreRefused) {
  const e2e::DlmRun graphs = generate({"-p", "A map", "--cuda-graphs", "off"});
  EXPECT_EQ(graphs.exit_code, 2);
  EXPECT_EQ(graphs.err, "dlm: error: --cuda-graphs applies to --device cuda only\n");
  const e2e::DlmRun attention = generate({"-p", "A map", "--cuda-attention", "kernel"});
  EXPECT_EQ(attention.exit_code, 2);
  EXPECT_EQ(attention.err, "dlm: error: --cuda-attention applies to --device cuda only\n");
  const e2e::DlmRun tuning = generate({"-p", "A map", "--cuda-tune-gemm"});
  EXPECT_EQ(tuning.exit_code, 2);
  EXPECT_EQ(tuning.err, "dlm: error: --cuda-tune-gemm applies to --device cuda only\n");
  const e2e::DlmRun split = generate({"-p", "A map", "--cuda-split-attention", "off"});
  EXPECT_EQ(split.exit_code, 2);
  EXPECT_EQ(split.err, "dlm: error: --cuda-split-attention applies to --device cuda only\n");
  const e2e::DlmRun invariant = generate({"-p", "A map", "--cuda-batch-invariant"});
  EXPECT_EQ(invariant.exit_code, 2);
  EXPECT_EQ(invariant.err, "dlm: error: --cuda-batch-invariant applies to --device cuda only\n");
  const e2e::DlmRun tuned_invariant =
      generate({"-p", "A map", "--device", "cuda", "--cuda-batch-invariant", "--cuda-tune-gemm"});
  EXPECT_EQ(tuned_invariant.exit_code, 2);
  EXPECT_EQ(tuned_invariant.err,
            "dlm: error: --cuda-batch-invariant cannot be combined with "
            "--cuda-tune-gemm, whose candidates split K\n");
}

TEST_F(BatchInputsE2e, ABareModelNameIsAShippedModel) {
  const e2e::DlmRun named = dlm({"generate", "-m", "diffusion-11m", "--print-config"});
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_THAT(named.out, HasSubstr("models/diffusion-11m\""));
  const e2e::DlmRun unknown = dlm({"generate", "-m", "no-such-model", "-p", "x"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, AllOf(StartsWith("dlm: error: model 'no-such-model'"), HasSubstr("diffusion-11m"),
                                 HasSubstr("ar-11m")));
}

}  // namespace
