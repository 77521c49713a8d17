// `dlm info` end to end: the real binary on the tiny model dlm_make_tiny_model writes, and on broken copies
// of it, each of which must fail with exit code 2 and one line on stderr naming the directory or file and the
// fault.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "engine/core/buffer.h"
#include "engine/io/safetensors.h"
#include "tests/e2e/dlm_process.h"

namespace dlm {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// The fixture's shapes (tests/fixtures/make_tiny_model.cpp), counted by hand:
//   embeddings and LM head: 2 x 512 x 64                              = 65536
//   final norm: 64                                                    =    64
//   per layer: norms 2 x 64 = 128; q 64x64 = 4096; k, v 2 x 32x64 = 4096; o 64x64 = 4096;
//              gate, up, down 3 x 128x64 = 24576                      = 36992, two layers = 73984
constexpr int64_t kParameters = 65536 + 64 + 2 * 36992;  // 139584
constexpr int64_t kTensors = 1 + 2 * 9 + 1 + 1;          // embeddings, 9 per layer, final norm, LM head
// One cached position: K and V for 2 layers x 2 KV heads x head size 16, in f32.
constexpr int64_t kCacheBytesPerPosition = 2 * 2 * 2 * 16 * 4;

using e2e::DlmRun;

// The text report's lines by key: "key" padded to 15 columns, a space, the value.
std::map<std::string, std::string> report_lines(const std::string& out) {
  std::map<std::string, std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.size() < 17) {
      ADD_FAILURE() << "short report line: " << line;
      continue;
    }
    std::string key = line.substr(0, 15);
    key.erase(key.find_last_not_of(' ') + 1);
    lines[key] = line.substr(16);
  }
  return lines;
}

class InfoE2e : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = e2e::fresh_work_dir(DLM_E2E_WORK_DIR);
    ASSERT_TRUE(fs::exists(fs::path(DLM_E2E_MODEL_DIR) / "model.safetensors"))
        << "the e2e_make_tiny_model fixture has not run";
  }

  DlmRun run(const std::string& program, const std::vector<std::string>& args) const {
    return e2e::run_program(program, args, dir_);
  }

  DlmRun info(const std::string& model, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"info", "-m", model};
    args.insert(args.end(), extra.begin(), extra.end());
    return run(DLM_BINARY, args);
  }

  // A copy of the tiny model to break.
  fs::path copy_model(const std::string& name = "model") const {
    const fs::path copy = dir_ / name;
    fs::copy(DLM_E2E_MODEL_DIR, copy, fs::copy_options::recursive);
    return copy;
  }

  static json read_json(const fs::path& path) { return json::parse(e2e::read_file(path)); }
  static void write_text(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  fs::path dir_;
};

// A failure of the whole command: exit code 2, nothing on stdout, one line on stderr in the documented form.
void expect_usage_error(const DlmRun& run, const std::vector<std::string>& mentions) {
  EXPECT_EQ(run.exit_code, 2) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_THAT(run.err, StartsWith("dlm: error: "));
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
  for (const std::string& text : mentions) EXPECT_THAT(run.err, HasSubstr(text));
}

TEST_F(InfoE2e, TextReport) {
  const DlmRun run = info(DLM_E2E_MODEL_DIR);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  std::map<std::string, std::string> lines = report_lines(run.out);
  EXPECT_EQ(lines["model"], DLM_E2E_MODEL_DIR);
  EXPECT_EQ(lines["family"], "LLaDA (LLaDAModelLM), masked diffusion, bidirectional attention");
  EXPECT_EQ(lines["backbone"],
            "dense transformer: 2 layers, hidden 64, 4 heads (2 KV heads, head size 16), SwiGLU MLP 128, "
            "RoPE default theta 10000, untied embeddings, vocabulary 512, context 512");
  EXPECT_EQ(lines["parameters"], fmt::format("{} (139.6 K)", kParameters));
  // 139584 f32 values are 558336 bytes = 545.25 KiB.
  EXPECT_EQ(lines["weights"], fmt::format("545.25 KiB in all: f32 545.25 KiB ({} tensors)", kTensors));
  EXPECT_EQ(lines["KV cache"], fmt::format("{} B per position (f32), 256.00 KiB at the full context of 512",
                                           kCacheBytesPerPosition));
  EXPECT_EQ(lines["tokenizer"], "SentencePiece, 512 tokens");
  // The fixture's tokenizer is trained with bos_id 1 and eos_id 2; the mask token is its first user-defined
  // symbol, next after them. The config pads with EOS, as LLaDA's does.
  EXPECT_EQ(lines["special tokens"], R"(bos 1 "<s>", mask 3 "<|mdm_mask|>", pad 2 "</s>", stop 2 "</s>")");
  EXPECT_EQ(lines["logit shift"], "none: row i predicts position i");
  EXPECT_EQ(lines["chat template"], "none");
  EXPECT_EQ(lines.count("block size"), 0u) << "a masked-diffusion model has no block size";
  EXPECT_EQ(lines["sampler"],
            "llada, gen_length 128, steps 128, block_length 32, low_confidence remasking, commit schedule, "
            "temperature 0");
}

TEST_F(InfoE2e, JsonReportHasTheSameNumbers) {
  const DlmRun run = info(DLM_E2E_MODEL_DIR, {"--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.err, "");
  const json report = json::parse(run.out);  // throws if invalid
  EXPECT_EQ(report.at("model"), DLM_E2E_MODEL_DIR);
  EXPECT_EQ(report.at("family"), "llada");
  EXPECT_EQ(report.at("architecture"), "LLaDAModelLM");
  EXPECT_EQ(report.at("decoding"), "masked diffusion");
  EXPECT_EQ(report.at("attention"), "bidirectional");
  EXPECT_THAT(report.at("backbone").get<std::string>(),
              HasSubstr("2 layers, hidden 64, 4 heads (2 KV heads"));
  EXPECT_EQ(report.at("parameters"), kParameters);
  EXPECT_EQ(report.at("weights"), json::parse(fmt::format(R"({{"f32": {{"tensors": {}, "bytes": {}}}}})",
                                                          kTensors, kParameters * 4)));
  EXPECT_EQ(report.at("weight_bytes"), kParameters * 4);
  EXPECT_EQ(report.at("cache_bytes_per_position"), kCacheBytesPerPosition);
  EXPECT_EQ(report.at("context"), 512);
  EXPECT_EQ(report.at("tokenizer_tokens"), 512);
  EXPECT_EQ(report.at("special_tokens"), json::parse(R"([{"role": "bos", "id": 1, "text": "<s>"},
                                                         {"role": "mask", "id": 3, "text": "<|mdm_mask|>"},
                                                         {"role": "pad", "id": 2, "text": "</s>"},
                                                         {"role": "stop", "id": 2, "text": "</s>"}])"));
  EXPECT_EQ(report.at("logit_shift"), 0);
  EXPECT_EQ(report.at("block_size"), 0);
  EXPECT_EQ(report.at("chat_template"), false);
  EXPECT_EQ(report.at("tokenizer"), "SentencePiece");
  EXPECT_EQ(report.at("default_sampler").at("method"), "llada");
  EXPECT_EQ(report.at("default_sampler").at("block_length"), 32) << "resolved: 32 divides gen_length 128";
}

TEST_F(InfoE2e, DefaultSamplerFollowsTheModelOverlay) {
  const fs::path overlay = dir_ / "overlay.yaml";
  std::ofstream(overlay) << "sampler:\n  gen_length: 48\n  steps: 24\n  commit: threshold\n";
  const DlmRun run = info(DLM_E2E_MODEL_DIR, {"--json", "--model-config", overlay.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json sampler = json::parse(run.out).at("default_sampler");
  EXPECT_EQ(sampler.at("gen_length"), 48);
  EXPECT_EQ(sampler.at("steps"), 24);
  EXPECT_EQ(sampler.at("block_length"), 48) << "32 does not divide 48: one block";
  EXPECT_EQ(sampler.at("commit"), "threshold");
  EXPECT_EQ(sampler.at("threshold"), 0.9);
}

// Every supported family, on the tiny models of tests/golden/parity (tools/parity/transformers_parity.py).
// Parameter counts by hand: embeddings 320 x 64 = 20480 (twice when untied); final norm 64; per layer norms
// 128, MLP 3 x 96 x 64 = 18432, and attention q/o 64 x 4h x 16 plus k/v 2 x 64 x 2h x 16 for head size h:
// 12288 at head size 16, 24576 at 32 (Qwen3 and SDAR, whose q/k norms add 2 x 32 per layer); Qwen2's QKV
// biases add 64 + 32 + 32 per layer.
TEST_F(InfoE2e, DescribesEverySupportedFamily) {
  struct Expected {
    const char* dir;
    const char* family;
    const char* decoding;
    const char* attention;
    int64_t parameters;
    const char* mask;
    int64_t logit_shift, block_size;
    const char* default_method;
  };
  const int64_t layer16 = 128 + 18432 + 12288, layer32 = 128 + 18432 + 24576 + 64;
  const Expected models[] = {
      {"llama", "llama", "autoregressive", "causal", 2 * 20480 + 64 + 2 * layer16, nullptr, 0, 0,
       "autoregressive"},
      {"qwen2", "qwen2", "autoregressive", "causal", 20480 + 64 + 2 * (layer16 + 128), nullptr, 0, 0,
       "autoregressive"},
      {"qwen3", "qwen3", "autoregressive", "causal", 2 * 20480 + 64 + 2 * layer32, nullptr, 0, 0,
       "autoregressive"},
      {"llada", "llada", "masked diffusion", "bidirectional", 2 * 20480 + 64 + 2 * layer16, "<|mdm_mask|>", 0,
       0, "llada"},
      {"dream", "dream", "masked diffusion", "bidirectional", 2 * 20480 + 64 + 2 * (layer16 + 128),
       "<|mask|>", 1, 0, "dream"},
      {"sdar", "sdar", "block diffusion", "block-causal (block 4)", 2 * 20480 + 64 + 2 * layer32, "<|MASK|>",
       0, 4, "block_diffusion"},
      {"fast_dllm_v2", "fast_dllm_v2", "block diffusion", "block-causal (block 4)",
       2 * 20480 + 64 + 2 * (layer16 + 128), "|<MASK>|", 1, 4, "block_diffusion"},
  };
  for (const Expected& expected : models) {
    const std::string dir = std::string(DLM_GOLDEN_DIR) + "/parity/models/" + expected.dir;
    const DlmRun run = info(dir, {"--json"});
    ASSERT_EQ(run.exit_code, 0) << expected.dir << ": " << run.err;
    const json report = json::parse(run.out);
    EXPECT_EQ(report.at("family"), expected.family) << expected.dir;
    EXPECT_EQ(report.at("decoding"), expected.decoding) << expected.dir;
    EXPECT_EQ(report.at("attention"), expected.attention) << expected.dir;
    EXPECT_EQ(report.at("parameters"), expected.parameters) << expected.dir;
    EXPECT_EQ(report.at("logit_shift"), expected.logit_shift) << expected.dir;
    EXPECT_EQ(report.at("block_size"), expected.block_size) << expected.dir;
    std::string mask;
    for (const json& token : report.at("special_tokens")) {
      if (token.at("role") == "mask") mask = token.at("text");
    }
    EXPECT_EQ(mask, expected.mask ? expected.mask : "") << expected.dir;
    EXPECT_EQ(report.at("tokenizer"), "byte-level BPE") << expected.dir;
    EXPECT_EQ(report.at("default_sampler").at("method"), expected.default_method) << expected.dir;
  }
}

TEST_F(InfoE2e, Bf16Weights) {
  const fs::path model = dir_ / "bf16";
  const DlmRun made = run(DLM_MAKE_TINY_MODEL, {model.string(), "--dtype", "bf16"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const DlmRun run = info(model.string(), {"--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  EXPECT_EQ(report.at("parameters"), kParameters);
  EXPECT_EQ(report.at("weights"), json::parse(fmt::format(R"({{"bf16": {{"tensors": {}, "bytes": {}}}}})",
                                                          kTensors, kParameters * 2)));
  EXPECT_EQ(report.at("weight_bytes"), kParameters * 2);
}

// The same weights split over two shards with an index report the same model.
TEST_F(InfoE2e, ShardedCheckpoint) {
  const fs::path model = copy_model();
  {
    const SafetensorsFile single((model / "model.safetensors").string());
    std::vector<NamedTensor> first, second;
    json weight_map = json::object();
    for (const TensorEntry& entry : single.entries()) {
      const bool in_first = entry.name.starts_with("model.transformer.blocks.0.") ||
                            entry.name == "model.transformer.wte.weight";
      (in_first ? first : second).push_back({entry.name, single.tensor(entry.name)});
      weight_map[entry.name] =
          in_first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    write_safetensors((model / "model-00001-of-00002.safetensors").string(), first);
    write_safetensors((model / "model-00002-of-00002.safetensors").string(), second);
    write_text(model / "model.safetensors.index.json",
               json{{"metadata", {{"total_size", kParameters * 4}}}, {"weight_map", weight_map}}.dump(2));
  }
  fs::remove(model / "model.safetensors");
  const DlmRun run = info(model.string(), {"--json"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  EXPECT_EQ(report.at("parameters"), kParameters);
  EXPECT_EQ(report.at("weight_bytes"), kParameters * 4);
  EXPECT_EQ(report.at("weights").at("f32").at("tensors"), kTensors);

  fs::remove(model / "model-00002-of-00002.safetensors");
  expect_usage_error(info(model.string()), {(model / "model.safetensors.index.json").string(),
                                            "shard 'model-00002-of-00002.safetensors'", "is missing"});
}

TEST_F(InfoE2e, NotADirectory) {
  const std::string missing = (dir_ / "no_such_model").string();
  expect_usage_error(info(missing), {missing, "not a model directory"});
  const std::string file = (fs::path(DLM_E2E_MODEL_DIR) / "config.json").string();
  expect_usage_error(info(file), {file, "not a model directory"});
}

TEST_F(InfoE2e, NoConfigJson) {
  const fs::path model = copy_model();
  fs::remove(model / "config.json");
  expect_usage_error(info(model.string()), {model.string(), "no config.json"});
}

TEST_F(InfoE2e, MalformedConfigJson) {
  const fs::path model = copy_model();
  write_text(model / "config.json", R"({"model_type": "llada", "d_model": 64,)");
  expect_usage_error(info(model.string()), {(model / "config.json").string()});
}

TEST_F(InfoE2e, UnknownModelType) {
  const fs::path model = copy_model();
  json config = read_json(model / "config.json");
  config["model_type"] = "gpt2";
  write_text(model / "config.json", config.dump(2));
  expect_usage_error(info(model.string()),
                     {(model / "config.json").string(), "model_type 'gpt2' is not supported",
                      "supported: llama, qwen2, qwen3, llada, Dream, sdar, Fast_dLLM_Qwen"});
}

TEST_F(InfoE2e, MissingModelType) {
  const fs::path model = copy_model();
  json config = read_json(model / "config.json");
  config.erase("model_type");
  write_text(model / "config.json", config.dump(2));
  expect_usage_error(info(model.string()), {(model / "config.json").string(), "'model_type'", "missing"});
}

// One tensor of the wrong shape and one missing are reported together, each with the shape expected.
TEST_F(InfoE2e, WrongShapeAndMissingTensorListedTogether) {
  const fs::path model = copy_model();
  {
    const SafetensorsFile original((fs::path(DLM_E2E_MODEL_DIR) / "model.safetensors").string());
    const HostTensor wide = HostTensor::from(Shape{48, 64}, std::vector<float>(48 * 64, 0.0f));
    std::vector<NamedTensor> tensors;
    for (const TensorEntry& entry : original.entries()) {
      if (entry.name == "model.transformer.blocks.1.up_proj.weight") continue;
      tensors.push_back({entry.name, entry.name == "model.transformer.blocks.0.k_proj.weight"
                                         ? wide.tensor()
                                         : original.tensor(entry.name)});
    }
    write_safetensors((model / "model.safetensors").string(), tensors);
  }
  expect_usage_error(info(model.string()),
                     {model.string(), "2 weight problems",
                      "model.transformer.blocks.0.k_proj.weight: expected shape [32,64], got [48,64]",
                      "model.transformer.blocks.1.up_proj.weight: missing (expected shape [128,64])"});
}

// A config.json that disagrees with every MLP tensor: all six are listed in the one message.
TEST_F(InfoE2e, ConfigShapesDisagreeingWithTheWeights) {
  const fs::path model = copy_model();
  json config = read_json(model / "config.json");
  config["mlp_hidden_size"] = 96;
  write_text(model / "config.json", config.dump(2));
  const DlmRun run = info(model.string());
  expect_usage_error(run, {model.string(), "6 weight problems",
                           "model.transformer.blocks.0.ff_proj.weight: expected shape [96,64], got [128,64]",
                           "model.transformer.blocks.1.ff_out.weight: expected shape [64,96], got [64,128]"});
}

TEST_F(InfoE2e, NoTokenizerFiles) {
  const fs::path model = copy_model();
  fs::remove(model / "tokenizer.model");
  expect_usage_error(info(model.string()), {model.string(), "no tokenizer.json or tokenizer.model"});
}

TEST_F(InfoE2e, NoWeights) {
  const fs::path model = copy_model();
  fs::remove(model / "model.safetensors");
  expect_usage_error(info(model.string()),
                     {model.string(), "neither model.safetensors nor model.safetensors.index.json"});
}

TEST_F(InfoE2e, TruncatedWeights) {
  const fs::path model = copy_model();
  fs::resize_file(model / "model.safetensors", 4096);
  expect_usage_error(info(model.string()), {(model / "model.safetensors").string()});
}

}  // namespace
}  // namespace dlm
