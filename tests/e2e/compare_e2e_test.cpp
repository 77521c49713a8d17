// `dlm compare` end to end on the shipped models (models/diffusion-11m, models/ar-11m): held-out reversal
// prompts with their answers, a prose prompt without one and a malformed line. Figures in the report are
// recomputed here from its per-item outputs; the same-model baseline is checked against `dlm generate` with
// the settings it stands for. Timings are only reported, never asserted.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/dlm_process.h"
#include "tests/unit/xml_check.h"

namespace {

namespace fs = std::filesystem;
namespace e2e = dlm::e2e;
using nlohmann::json;
using ::testing::HasSubstr;

const std::string kDiffusion = std::string(DLM_MODELS_DIR) + "/diffusion-11m";
const std::string kAr = std::string(DLM_MODELS_DIR) + "/ar-11m";
constexpr int kGenLength = 16;  // the longest answer below is 9 letters and EOS

// "reverse a b c:" -> "c b a".
std::string reversal(const std::string& prompt) {
  std::istringstream words(prompt.substr(8, prompt.size() - 9));
  std::vector<std::string> letters;
  for (std::string letter; words >> letter;) letters.push_back(letter);
  std::reverse(letters.begin(), letters.end());
  std::string out;
  for (const std::string& letter : letters) out += (out.empty() ? "" : " ") + letter;
  return out;
}

// The first reversal prompts of the held-out test split.
std::vector<std::string> reversal_prompts(size_t count) {
  std::ifstream in(std::string(DLM_TEST_DATA_DIR) + "/default_models/reverse_test.txt");
  std::vector<std::string> prompts;
  for (std::string line; prompts.size() < count && std::getline(in, line);) prompts.push_back(line);
  return prompts;
}

std::string trimmed(const std::string& text) {
  const size_t begin = text.find_first_not_of(" \t\n\r\f\v");
  return begin == std::string::npos ? ""
                                    : text.substr(begin, text.find_last_not_of(" \t\n\r\f\v") + 1 - begin);
}

bool one_line(const std::string& text) {
  return !text.empty() && std::count(text.begin(), text.end(), '\n') == 1 && text.back() == '\n';
}

e2e::DlmRun run_dlm(const std::vector<std::string>& args, const fs::path& dir) {
  return e2e::run_program(DLM_BINARY, args, dir);
}

// The diffusion model against itself one token at a time, over a sweep of steps; ctest runs each case in a
// process of its own, so each compares in its own work directory.
class CompareSameModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = e2e::fresh_work_dir(DLM_E2E_WORK_DIR);
    prompts_ = reversal_prompts(3);
    std::ofstream items(dir_ / "tasks.jsonl");
    for (size_t i = 0; i < prompts_.size(); ++i) {
      items << json{{"id", fmt::format("r{}", i)},
                    {"prompt", prompts_[i]},
                    {"expected", reversal(prompts_[i])}}
                   .dump()
            << "\n";
    }
    items << json{{"id", "prose"}, {"prompt", "The river ran slowly past the old mill, and"}}.dump() << "\n";
    items << "{\"id\": \"broken\", \"prompt\": 3}\n";
    items.close();
    run_ = run_dlm({"compare", "-m", kDiffusion, "--prompts", (dir_ / "tasks.jsonl").string(), "--gen-length",
                    std::to_string(kGenLength), "--sweep", "steps=16,4", "--report",
                    (dir_ / "r.json").string(), "--chart", (dir_ / "r.svg").string(), "--batch-size", "4"},
                   dir_);
    ASSERT_EQ(run_.exit_code, 1) << "one malformed line: some items failed\n" << run_.err;
    report_ = json::parse(e2e::read_file(dir_ / "r.json"), nullptr, false);
    ASSERT_FALSE(report_.is_discarded()) << "the report is not JSON";
  }

  const json& run(size_t index) const { return report_.at("runs").at(index); }
  const json& output(size_t item, size_t run) const {
    return report_.at("outputs").at(item).at("outputs").at(run);
  }

  fs::path dir_;
  std::vector<std::string> prompts_;
  e2e::DlmRun run_;
  json report_;
};

TEST_F(CompareSameModel, ReportHoldsEveryRunAndItem) {
  EXPECT_EQ(report_.at("items"), 5);
  EXPECT_EQ(report_.at("sweep"), json::parse(R"({"key": "steps", "values": [4.0, 16.0]})"));
  ASSERT_EQ(report_.at("runs").size(), 3u);
  EXPECT_EQ(run(0).at("name"), "ar");
  EXPECT_EQ(run(0).at("role"), "autoregressive");
  EXPECT_EQ(run(1).at("name"), "steps=4");
  EXPECT_EQ(run(2).at("name"), "steps=16");
  EXPECT_EQ(run(1).at("settings").at("steps"), 4);
  EXPECT_EQ(run(2).at("settings").at("steps"), 16);
  ASSERT_EQ(report_.at("outputs").size(), 5u);
  for (size_t r = 0; r < 3; ++r) {
    const json& metrics = run(r).at("metrics");
    EXPECT_EQ(metrics.at("decoded"), 4) << r;
    EXPECT_EQ(metrics.at("failed"), 1) << r;
    EXPECT_THAT(output(4, r).at("error").get<std::string>(), HasSubstr("tasks.jsonl:5"));
    for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(output(i, r).contains("text")) << i << " " << r;
    EXPECT_GT(metrics.at("tokens_per_second").get<double>(), 0.0);  // a figure: its size is not checked
  }
}

TEST_F(CompareSameModel, ExactMatchIsTheShareOfAnswersGiven) {
  for (size_t r = 0; r < 3; ++r) {
    int hits = 0;
    for (size_t i = 0; i < prompts_.size(); ++i) {
      const bool match = trimmed(output(i, r).at("text")) == reversal(prompts_[i]);
      EXPECT_EQ(output(i, r).at("exact_match"), match) << i << " " << r;
      hits += match;
    }
    EXPECT_TRUE(output(3, r).at("exact_match").is_null()) << "the prose item has no expected answer";
    const json& metrics = run(r).at("metrics");
    EXPECT_EQ(metrics.at("exact_match_items"), 3);
    EXPECT_DOUBLE_EQ(metrics.at("exact_match").get<double>(), hits / 3.0) << r;
  }
  // The model reverses held-out lists (models/README.md): some answers must be right.
  EXPECT_GT(run(2).at("metrics").at("exact_match").get<double>(), 0.0);
}

TEST_F(CompareSameModel, NfeFollowsTheSchedule) {
  // One block of kGenLength: each step is one forward, and every position is filled.
  EXPECT_DOUBLE_EQ(run(1).at("metrics").at("mean_nfe").get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(run(1).at("metrics").at("tokens_per_nfe").get<double>(), kGenLength / 4.0);
  EXPECT_DOUBLE_EQ(run(2).at("metrics").at("mean_nfe").get<double>(), 16.0);
  // One token per forward; early stop can end a request before kGenLength.
  EXPECT_DOUBLE_EQ(run(0).at("metrics").at("tokens_per_nfe").get<double>(), 1.0);
  EXPECT_LE(run(0).at("metrics").at("mean_nfe").get<double>(), kGenLength);
}

TEST_F(CompareSameModel, AgreementWithTheBaselineIsCountedFromTheTexts) {
  EXPECT_DOUBLE_EQ(run(0).at("metrics").at("ar_text_agreement").get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(run(0).at("metrics").at("ar_token_agreement").get<double>(), 1.0);
  for (size_t r = 1; r < 3; ++r) {
    int equal = 0;
    for (size_t i = 0; i < 4; ++i) equal += output(i, r).at("text") == output(i, 0).at("text");
    EXPECT_DOUBLE_EQ(run(r).at("metrics").at("ar_text_agreement").get<double>(), equal / 4.0) << r;
    const double tokens = run(r).at("metrics").at("ar_token_agreement").get<double>();
    EXPECT_GE(tokens, equal / 4.0) << "equal texts agree on every token";
    EXPECT_LE(tokens, 1.0);
  }
}

TEST_F(CompareSameModel, BaselineIsLladaOneTokenPerStep) {
  EXPECT_EQ(run(0).at("settings").at("method"), "llada");
  EXPECT_EQ(run(0).at("settings").at("block_length"), 1);
  EXPECT_EQ(run(0).at("settings").at("steps"), kGenLength);
  std::vector<std::string> args = {"generate",
                                   "-m",
                                   kDiffusion,
                                   "--method",
                                   "llada",
                                   "--block-length",
                                   "1",
                                   "--steps",
                                   std::to_string(kGenLength),
                                   "--gen-length",
                                   std::to_string(kGenLength)};
  for (const std::string& prompt : prompts_) args.insert(args.end(), {"-p", prompt});
  args.insert(args.end(), {"-p", "The river ran slowly past the old mill, and"});
  const e2e::DlmRun generate = run_dlm(args, dir_);
  ASSERT_EQ(generate.exit_code, 0) << generate.err;
  std::istringstream lines(generate.out);
  size_t item = 0;
  for (std::string line; std::getline(lines, line); ++item) {
    ASSERT_LT(item, 4u);
    EXPECT_EQ(json::parse(line).at("text"), output(item, 0).at("text")) << item;
  }
  EXPECT_EQ(item, 4u);
}

TEST_F(CompareSameModel, TablePrintsARowPerRun) {
  std::istringstream lines(run_.out);
  std::vector<std::string> rows;
  for (std::string line; std::getline(lines, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 5u) << run_.out;
  EXPECT_THAT(rows[0], HasSubstr("tokens/s"));
  EXPECT_THAT(rows[2], HasSubstr("| ar "));
  EXPECT_THAT(rows[3], HasSubstr("| steps=4 "));
  EXPECT_THAT(rows[4], HasSubstr("| steps=16 "));
  for (const std::string& row : rows) EXPECT_EQ(row.size(), rows[0].size()) << "aligned columns";
}

TEST_F(CompareSameModel, ChartHasAPointPerSweepValue) {
  const std::string svg = e2e::read_file(dir_ / "r.svg");
  EXPECT_TRUE(svg.starts_with("<svg ")) << svg.substr(0, 40);
  EXPECT_EQ(dlm::xml_tag_error(svg), "");
  EXPECT_EQ(dlm::count_of(svg, "<g class=\"panel\""), 2u);
  EXPECT_EQ(dlm::count_of(svg, "<circle class=\"point\""), 4u);
  EXPECT_EQ(dlm::count_of(svg, "data-x=\"4\""), 2u);
  EXPECT_EQ(dlm::count_of(svg, "data-x=\"16\""), 2u);
  EXPECT_EQ(dlm::count_of(svg, "class=\"baseline\""), 2u);
}

TEST(CompareOtherModels, ArModelBaselineThresholdSweepAndJudge) {
  const fs::path dir = e2e::fresh_work_dir(DLM_E2E_WORK_DIR);
  const std::vector<std::string> prompts = reversal_prompts(2);
  std::vector<std::string> args = {"compare",
                                   "-m",
                                   kDiffusion,
                                   "--ar-model",
                                   kAr,
                                   "--judge",
                                   kAr,
                                   "--gen-length",
                                   std::to_string(kGenLength),
                                   "--sweep",
                                   "threshold=0.9,0.5",
                                   "--report",
                                   (dir / "r.json").string()};
  for (const std::string& prompt : prompts) args.insert(args.end(), {"-p", prompt});
  const e2e::DlmRun run = run_dlm(args, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(e2e::read_file(dir / "r.json"));
  const json& runs = report.at("runs");
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0].at("model"), kAr);
  EXPECT_EQ(runs[0].at("settings").at("method"), "autoregressive");
  EXPECT_EQ(runs[0].at("settings").at("gen_length"), kGenLength);
  for (size_t r = 1; r < 3; ++r) {
    EXPECT_EQ(runs[r].at("settings").at("commit"), "threshold");
    EXPECT_EQ(runs[r].at("settings").at("threshold"), r == 1 ? 0.5 : 0.9);
  }

  // The baseline is what `dlm generate` gives on the AR model.
  std::vector<std::string> generate_args = {"generate", "-m", kAr, "--gen-length",
                                            std::to_string(kGenLength)};
  for (const std::string& prompt : prompts) generate_args.insert(generate_args.end(), {"-p", prompt});
  const e2e::DlmRun generate = run_dlm(generate_args, dir);
  ASSERT_EQ(generate.exit_code, 0) << generate.err;
  std::istringstream lines(generate.out);
  std::string line;
  for (size_t i = 0; i < prompts.size() && std::getline(lines, line); ++i) {
    EXPECT_EQ(json::parse(line).at("text"), report.at("outputs")[i].at("outputs")[0].at("text")) << i;
  }

  // Corpus perplexity pools the items' NLLs: exp(sum n_i log ppl_i / sum n_i).
  for (size_t r = 0; r < 3; ++r) {
    double nll = 0.0;
    int64_t tokens = 0;
    for (const json& item : report.at("outputs")) {
      const json& out = item.at("outputs")[r];
      ASSERT_FALSE(out.at("perplexity").is_null()) << out.dump();
      EXPECT_GE(out.at("perplexity").get<double>(), 1.0);
      nll += std::log(out.at("perplexity").get<double>()) * out.at("judged_tokens").get<int64_t>();
      tokens += out.at("judged_tokens").get<int64_t>();
    }
    EXPECT_NEAR(runs[r].at("metrics").at("perplexity").get<double>(), std::exp(nll / tokens), 1e-9) << r;
    EXPECT_EQ(runs[r].at("metrics").at("judged_items"), 2);
  }
}

TEST(CompareErrors, BadInputIsOneLineAndExitTwo) {
  const fs::path dir = e2e::fresh_work_dir(DLM_E2E_WORK_DIR);
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"-m", kDiffusion, "-p", "x", "--sweep", "steps=4,x"}, "--sweep 'steps=4,x': 'x' is not an integer"},
      {{"-m", kDiffusion, "-p", "x", "--sweep", "temperature=1"}, "unknown key 'temperature'"},
      {{"-m", kDiffusion, "-p", "x", "--sweep", "steps"}, "expected KEY=V1,V2,..."},
      {{"-m", kDiffusion, "-p", "x", "--gen-length", "16", "--block-length", "8", "--sweep", "steps=3"},
       "run steps=3"},
      {{"-m", "no-such-model", "-p", "x"}, "model 'no-such-model'"},
      {{"-m", kAr, "-p", "x"}, "an autoregressive model has nothing to decode in parallel"},
      {{"-m", kDiffusion, "--ar-model", kDiffusion, "-p", "x"}, "--ar-model"},
      {{"-m", kDiffusion, "--judge", kDiffusion, "-p", "x"}, "a judge must be an autoregressive model"},
      {{"-m", kDiffusion, "-p", "x", "--report", (dir / "missing/r.json").string()},
       "cannot open for writing"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"compare"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const e2e::DlmRun run = run_dlm(args, dir);
    EXPECT_EQ(run.exit_code, 2) << c.message << "\n" << run.err;
    EXPECT_TRUE(one_line(run.err)) << run.err;
    EXPECT_THAT(run.err, HasSubstr(c.message));
    EXPECT_EQ(run.out, "") << "nothing is decoded";
  }
}

}  // namespace
