#pragma once
// What `dlm compare` makes of its runs: per-run metrics against the autoregressive baseline, the table it
// prints, the JSON report and the chart of quality and speed over the sweep.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/cli/compare_runs.h"
#include "engine/cli/svg_chart.h"

namespace dlm::cli {

struct Comparison {
  std::vector<PromptItem> items;
  std::string parallel_model, ar_model, judge_model;  // judge_model empty: no judge
  std::optional<std::string> sweep_key;               // the --sweep key, when one was given
  std::string x_key;                                  // the key the parallel runs are charted against
  std::vector<RunOutcome> runs;                       // the AR baseline first, then the parallel runs
};

// A rate over some items: `hits` of `count`; no value when count is 0.
struct Rate {
  int64_t hits = 0, count = 0;
  std::optional<double> value() const {
    return count > 0 ? std::optional<double>(static_cast<double>(hits) / count) : std::nullopt;
  }
};

struct RunMetrics {
  int64_t decoded = 0, failed = 0;
  int64_t generated_tokens = 0;                    // sum of committed positions over decoded items
  std::optional<double> tokens_per_second;         // generated tokens over the run's wall time
  std::optional<double> latency_p50, latency_p95;  // of the items' seconds
  std::optional<double> mean_nfe, tokens_per_nfe;
  Rate exact_match;                          // over decoded items that have `expected`
  Rate ar_text_agreement;                    // texts equal to the baseline's, over items both decoded
  std::optional<double> ar_token_agreement;  // mean share of the baseline's token positions matched
  std::optional<double> perplexity;          // corpus level: exp(sum NLL / tokens) over the judged items
  int64_t judged = 0;
};

// The text equals the expected answer once both are trimmed of surrounding whitespace.
bool exact_match(std::string_view text, std::string_view expected);
// The share of the reference's positions holding the same token; 1 when both are empty.
double token_agreement(const std::vector<int32_t>& tokens, const std::vector<int32_t>& reference);

// Metrics of every run, in order; texts are compared token by token as `tokenizer` splits them, so the
// baseline may come from another model.
std::vector<RunMetrics> measure_runs(const Comparison& comparison, const Tokenizer& tokenizer);

// An aligned markdown table, one row per run.
std::string format_table(const Comparison& comparison, const std::vector<RunMetrics>& metrics);

// Models, sweep, every run's settings and metrics, and every item's outputs.
nlohmann::ordered_json report_json(const Comparison& comparison, const std::vector<RunMetrics>& metrics);

// Quality (exact match when some items have an expected answer, else token agreement with the baseline)
// and tokens/s of the parallel runs against the swept value, the baseline dashed.
LineChart comparison_chart(const Comparison& comparison, const std::vector<RunMetrics>& metrics);

}  // namespace dlm::cli
