// `dlm bench` end to end: the real binary on the tiny model written by dlm_make_tiny_model. Only the shape of
// the tables is checked, never a time: benchmarks are not tests.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/tiny_model_e2e.h"

namespace {

namespace e2e = dlm::e2e;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using Row = std::vector<std::string>;

std::string trimmed(const std::string& text) {
  const size_t begin = text.find_first_not_of(' ');
  return begin == std::string::npos ? "" : text.substr(begin, text.find_last_not_of(' ') - begin + 1);
}

// The cells of every table line ("| a | b |"), the header first, without the rule line under it.
std::vector<Row> markdown_rows(const std::string& text) {
  std::vector<Row> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| ---", 0) == 0 || line.rfind("|", 0) != 0) continue;
    Row cells;
    for (size_t begin = 1, end; (end = line.find(" |", begin)) != std::string::npos; begin = end + 2) {
      cells.push_back(trimmed(line.substr(begin, end - begin)));
    }
    rows.push_back(cells);
  }
  return rows;
}

// CSV lines split at commas (the rows checked here hold no quoted fields).
std::vector<Row> csv_rows(const std::string& text) {
  std::vector<Row> rows;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    Row fields;
    std::istringstream cells(line);
    for (std::string field; std::getline(cells, field, ',');) fields.push_back(field);
    if (!line.empty() && line.back() == ',') fields.emplace_back();
    rows.push_back(fields);
  }
  return rows;
}

const std::vector<std::string> kSettingTitles = {"method", "batch", "prompt", "gen",
                                                 "block",  "steps", "commit", "cache"};
const std::vector<std::string> kMetricTitles = {"median s", "min s",  "max s", "tok/s", "NFE/req",
                                                "tok/NFE",  "ms/fwd", "p50 s", "p95 s"};
const std::vector<std::string> kKeys = {"method",
                                        "batch_size",
                                        "prompt_length",
                                        "gen_length",
                                        "block_length",
                                        "steps",
                                        "commit",
                                        "cache",
                                        "median_seconds",
                                        "min_seconds",
                                        "max_seconds",
                                        "tokens_per_second",
                                        "nfe_per_request",
                                        "tokens_per_nfe",
                                        "ms_per_forward",
                                        "latency_p50_seconds",
                                        "latency_p95_seconds",
                                        "error"};

class BenchE2e : public e2e::TinyModelE2e {
 protected:
  // `dlm bench` on the tiny model with one quick run per point, plus the extra arguments.
  std::vector<std::string> bench_args(const std::vector<std::string>& extra) const {
    std::vector<std::string> args = {"bench",
                                     "-m",
                                     DLM_E2E_MODEL_DIR,
                                     "--prompt-length",
                                     "8",
                                     "--gen-length",
                                     "16",
                                     "--block-length",
                                     "8",
                                     "--warmup",
                                     "1",
                                     "--repeat",
                                     "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  e2e::DlmRun bench(const std::vector<std::string>& extra) const { return dlm(bench_args(extra)); }

  // The command line the run was given, as a shell would read it back.
  std::string command_of(const std::vector<std::string>& extra) const {
    std::string command = DLM_BINARY;
    for (const std::string& arg : bench_args(extra)) command += " " + arg;
    return command;
  }
};

void expect_number_at_least(const std::string& text, double least) {
  size_t used = 0;
  const double value = std::stod(text, &used);
  EXPECT_EQ(used, text.size()) << text;
  EXPECT_GE(value, least) << text;
}

TEST_F(BenchE2e, MarkdownHasOneRowPerPointAndTheCommand) {
  const std::vector<std::string> extra = {"--batch-size", "1,2", "--steps", "8,16"};
  const e2e::DlmRun run = bench(extra);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_THAT(run.out, StartsWith(fmt::format("- command: `{}`\n", command_of(extra))));
  EXPECT_THAT(run.out, HasSubstr(fmt::format("- model: {}\n", DLM_E2E_MODEL_DIR)));
  EXPECT_THAT(run.out, HasSubstr("- runs per point: 1 warm-up, 2 timed"));

  const std::vector<Row> rows = markdown_rows(run.out);
  ASSERT_EQ(rows.size(), 5u) << run.out;  // the header and four points
  Row titles = kSettingTitles;
  titles.insert(titles.end(), kMetricTitles.begin(), kMetricTitles.end());
  EXPECT_EQ(rows[0], titles);
  // The batch size varies fastest.
  const std::vector<std::pair<std::string, std::string>> batch_steps = {
      {"1", "8"}, {"2", "8"}, {"1", "16"}, {"2", "16"}};
  for (size_t i = 0; i < batch_steps.size(); ++i) {
    const Row& row = rows[i + 1];
    ASSERT_EQ(row.size(), titles.size());
    EXPECT_EQ(Row(row.begin(), row.begin() + 8), Row({"llada", batch_steps[i].first, "8", "16", "8",
                                                      batch_steps[i].second, "schedule", "none"}));
    for (size_t c = 8; c < row.size(); ++c) expect_number_at_least(row[c], 0.0);
    // 16 tokens over the steps: one forward per step, the same number of tokens at each.
    EXPECT_EQ(row[12], batch_steps[i].second + ".0");
    EXPECT_EQ(row[13], batch_steps[i].second == "8" ? "2.00" : "1.00");
  }
  // Progress goes to stderr, one line per point after the first.
  EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 5) << run.err;
}

TEST_F(BenchE2e, CsvHasAHeaderAndOneRowPerPoint) {
  const std::vector<std::string> extra = {"--cache", "none,prefix", "--method", "llada",
                                          "--steps", "8",           "--format", "csv"};
  const e2e::DlmRun run = bench(extra);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::vector<Row> rows = csv_rows(run.out);
  ASSERT_EQ(rows.size(), 3u) << run.out;
  EXPECT_EQ(rows[0], kKeys);
  for (size_t i = 1; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].size(), kKeys.size()) << run.out;
    EXPECT_EQ(Row(rows[i].begin(), rows[i].begin() + 8),
              Row({"llada", "1", "8", "16", "8", "8", "schedule", i == 1 ? "none" : "prefix"}));
    for (size_t c = 8; c + 1 < kKeys.size(); ++c) expect_number_at_least(rows[i][c], 0.0);
    EXPECT_EQ(rows[i].back(), "");  // no error
  }
  // The rows alone on stdout; the command with the progress on stderr.
  EXPECT_THAT(run.err, HasSubstr(command_of(extra) + "\n"));
}

TEST_F(BenchE2e, JsonHoldsTheRowsAndACommandThatReproducesThem) {
  // A list with a space in it makes the command need quoting.
  const std::vector<std::string> extra = {"--batch-size", "1, 2", "--steps", "8", "--format", "json"};
  const e2e::DlmRun run = bench(extra);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  EXPECT_EQ(report.at("model"), DLM_E2E_MODEL_DIR);
  EXPECT_EQ(report.at("warmup"), 1);
  EXPECT_EQ(report.at("repeat"), 2);
  EXPECT_TRUE(report.at("date").is_string());
  const json& rows = report.at("rows");
  ASSERT_EQ(rows.size(), 2u);
  for (size_t i = 0; i < rows.size(); ++i) {
    const json& row = rows[i];
    EXPECT_EQ(row.at("method"), "llada");
    EXPECT_EQ(row.at("batch_size"), i + 1);
    EXPECT_EQ(row.at("prompt_length"), 8);
    EXPECT_EQ(row.at("gen_length"), 16);
    EXPECT_EQ(row.at("block_length"), 8);
    EXPECT_EQ(row.at("steps"), 8);
    EXPECT_EQ(row.at("nfe_per_request"), 8.0);
    EXPECT_EQ(row.at("tokens_per_nfe"), 2.0);
    EXPECT_GT(row.at("median_seconds").get<double>(), 0.0);
    EXPECT_FALSE(row.contains("error"));
  }

  const std::string command = report.at("command");
  EXPECT_THAT(command, HasSubstr(" --batch-size '1, 2' "));
  const e2e::DlmRun again = e2e::run_program("/bin/sh", {"-c", command}, dir_);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  const json repeated = json::parse(again.out);
  EXPECT_EQ(repeated.at("command"), command);
  ASSERT_EQ(repeated.at("rows").size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    for (const char* key : {"method", "batch_size", "prompt_length", "gen_length", "block_length", "steps"}) {
      EXPECT_EQ(repeated.at("rows")[i].at(key), rows[i].at(key)) << key;
    }
  }
}

// --profile: one more run per point with every backend op timed. Its op counts follow from the model and the
// run's forwards: per LLaDA layer 4 linears (q, k and v as one product, out, gate and up as one, down: the
// tiny model stores each group back to back), one rope_qkv (q and k rotated, v copied out of the q/k/v
// product) and one attention, plus the LM head once per forward; every residual add but the last is fused
// with the norm after it. The ops' time is part of the run's.
TEST_F(BenchE2e, ProfileCountsEveryOpOfTheProfiledRun) {
  const json config = json::parse(std::ifstream(std::filesystem::path(DLM_E2E_MODEL_DIR) / "config.json"));
  const int64_t layers = config.at("n_layers");
  const e2e::DlmRun run = bench({"--batch-size", "2", "--steps", "8", "--format", "json", "--profile"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const json report = json::parse(run.out);
  const json& profile = report.at("rows").at(0).at("profile");
  const int64_t forwards = profile.at("forwards");
  EXPECT_EQ(forwards, 8);
  std::map<std::string, int64_t> calls;
  double op_seconds = 0;
  for (const json& op : profile.at("ops")) {
    calls[op.at("op")] += op.at("calls").get<int64_t>();
    op_seconds += op.at("seconds").get<double>();
    EXPECT_FALSE(op.at("operands").get<std::string>().empty());
  }
  EXPECT_EQ(calls["linear"], forwards * (4 * layers + 1));
  EXPECT_EQ(calls["rope_qkv"], forwards * layers);
  EXPECT_EQ(calls["rope"], 0);
  EXPECT_EQ(calls["attention"], forwards * layers);
  EXPECT_EQ(calls["add_rms_norm"], forwards * (2 * layers - 1));
  EXPECT_EQ(calls["rms_norm"], forwards * 2);  // the first layer's input norm and the final norm
  EXPECT_EQ(calls["add"], forwards);
  EXPECT_GT(op_seconds, 0.0);
  EXPECT_LE(op_seconds, profile.at("run_seconds").get<double>());

  const e2e::DlmRun markdown = bench({"--batch-size", "2", "--steps", "8", "--profile"});
  ASSERT_EQ(markdown.exit_code, 0) << markdown.err;
  EXPECT_THAT(markdown.out,
              HasSubstr("### Where the time goes: point 1 (method llada, batch 2, prompt 8, gen 16, "
                        "block 8, steps 8, commit schedule, cache none)"));
  EXPECT_THAT(markdown.out, HasSubstr(fmt::format("| attention | {} |", forwards * layers)));
}

TEST_F(BenchE2e, APointThatCannotRunGetsAnErrorRowAndTheOthersAreMeasured) {
  // 16 tokens in blocks of 8 need an even number of steps; the tiny model is not autoregressive.
  const e2e::DlmRun run = bench({"--steps", "8,3", "--method", "llada,autoregressive", "--format", "json"});
  EXPECT_EQ(run.exit_code, 1) << run.err;
  const json rows = json::parse(run.out).at("rows");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_GT(rows[0].at("median_seconds").get<double>(), 0.0);
  EXPECT_FALSE(rows[0].contains("error"));
  EXPECT_THAT(rows[1].at("error").get<std::string>(), HasSubstr("sampler.steps: must be a multiple"));
  EXPECT_FALSE(rows[1].contains("median_seconds"));
  for (size_t i : {2, 3}) {
    EXPECT_EQ(rows[i].at("method"), "autoregressive");
    EXPECT_THAT(rows[i].at("error").get<std::string>(), HasSubstr("method autoregressive needs a model"));
  }
  EXPECT_THAT(run.err, HasSubstr("skipped: "));

  // In markdown the reason is in an error column of its own.
  const e2e::DlmRun table = bench({"--steps", "8,3"});
  EXPECT_EQ(table.exit_code, 1) << table.err;
  const std::vector<Row> md = markdown_rows(table.out);
  ASSERT_EQ(md.size(), 3u) << table.out;
  EXPECT_EQ(md[0].back(), "error");
  EXPECT_EQ(md[1].back(), "");
  EXPECT_THAT(md[2].back(), HasSubstr("sampler.steps"));
  EXPECT_EQ(md[2][8], "-");
}

TEST_F(BenchE2e, WritesTheTableToTheOutputFile) {
  const std::string path = (dir_ / "bench.csv").string();
  const e2e::DlmRun run = bench({"--steps", "8", "--format", "csv", "-o", path});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(csv_rows(e2e::read_file(path)).size(), 2u);
}

TEST_F(BenchE2e, BadFlagsFailWithOneLineNamingTheFlag) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--batch-size", "0"},   {"--batch-size", "1,,2"}, {"--steps", ""},     {"--prompt-length", "x"},
      {"--gen-length", "-4"},  {"--repeat", "0"},        {"--warmup", "-1"},  {"--format", "xml"},
      {"--method", "fastest"}, {"--cache", "all"},       {"--threads", "-2"},
  };
  for (const auto& [flag, value] : cases) {
    const e2e::DlmRun run = bench({flag, value});
    EXPECT_EQ(run.exit_code, 2) << flag << " " << value;
    EXPECT_THAT(run.err, StartsWith("dlm: error: " + flag + ": ")) << flag << " " << value;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    EXPECT_EQ(run.out, "");
  }
  const e2e::DlmRun no_model = dlm({"bench", "--steps", "8"});
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_THAT(no_model.err, HasSubstr("--model"));
}

}  // namespace
