#include "engine/cli/compare_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "engine/cli/percentile.h"
#include "engine/cli/sampling_record.h"

namespace dlm::cli {

namespace {

using Json = nlohmann::ordered_json;

std::string_view trim(std::string_view text) {
  const size_t begin = text.find_first_not_of(" \t\n\r\f\v");
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(" \t\n\r\f\v") + 1 - begin);
}

Json optional_json(const std::optional<double>& value) {
  return value ? Json(*value) : Json(nullptr);
}

// The settings that tell runs apart, in a few words: "llada, 24 steps, block 1, threshold 0.9".
std::string describe(const SamplingConfig& s) {
  std::string out(enum_name(s.method, kMethodNames));
  switch (s.method) {
    case Method::Autoregressive:
      break;
    case Method::Dream:
      out += fmt::format(", {} steps", s.steps);
      break;
    case Method::BlockDiffusion:
      out += fmt::format(", {} steps/block, block {}", s.steps, s.block_length);
      if (s.sub_block_length > 0) out += fmt::format(", sub-block {}", s.sub_block_length);
      break;
    default:
      out += fmt::format(", {} steps, block {}", s.steps, s.block_length);
  }
  if (s.method != Method::Autoregressive) {
    switch (s.commit) {
      case CommitRule::Threshold:
      case CommitRule::Dynamic:
        out += fmt::format(", {} {:g}", enum_name(s.commit, kCommitRuleNames), s.threshold);
        break;
      case CommitRule::Factor:
        out += fmt::format(", factor {:g}", s.factor);
        break;
      case CommitRule::EntropyBound:
        out += fmt::format(", entropy bound {:g}", s.entropy_bound);
        break;
      case CommitRule::Schedule:
        break;
    }
  }
  if (s.cache != CacheMode::None) out += fmt::format(", {} cache", enum_name(s.cache, kCacheModeNames));
  if (s.temperature > 0) out += fmt::format(", T {:g}", s.temperature);
  return out;
}

Json metrics_json(const RunMetrics& m, const RunOutcome& run) {
  return {{"decoded", m.decoded},
          {"failed", m.failed},
          {"wall_seconds", run.wall_seconds},
          {"generated_tokens", m.generated_tokens},
          {"tokens_per_second", optional_json(m.tokens_per_second)},
          {"latency_p50_seconds", optional_json(m.latency_p50)},
          {"latency_p95_seconds", optional_json(m.latency_p95)},
          {"mean_nfe", optional_json(m.mean_nfe)},
          {"tokens_per_nfe", optional_json(m.tokens_per_nfe)},
          {"exact_match", optional_json(m.exact_match.value())},
          {"exact_match_items", m.exact_match.count},
          {"ar_text_agreement", optional_json(m.ar_text_agreement.value())},
          {"ar_token_agreement", optional_json(m.ar_token_agreement)},
          {"perplexity", optional_json(m.perplexity)},
          {"judged_items", m.judged}};
}

Json output_json(const PromptItem& item, const RunOutcome& run, const ItemOutput& output, bool judged) {
  Json out = {{"run", run.spec.name}};
  if (!output.ok()) {
    out["error"] = output.error;
    return out;
  }
  out["text"] = output.text;
  out["exact_match"] = item.expected ? Json(exact_match(output.text, *item.expected)) : Json(nullptr);
  out["nfe"] = output.nfe;
  out["committed"] = output.committed;
  out["seconds"] = output.seconds;
  if (judged) {
    out["perplexity"] = output.judged ? Json(output.judged->perplexity()) : Json(nullptr);
    out["judged_tokens"] = output.judged ? output.judged->tokens : 0;
    if (!output.judge_error.empty()) out["perplexity_error"] = output.judge_error;
  }
  return out;
}

std::string model_name(const std::string& dir) {
  return std::filesystem::path(dir).lexically_normal().filename().string();
}

std::string percent(const std::optional<double>& value) {
  return value ? fmt::format("{:.1f}%", *value * 100) : "n/a";
}

std::string rate_cell(const Rate& rate) {
  return rate.count > 0 ? fmt::format("{} ({}/{})", percent(rate.value()), rate.hits, rate.count) : "n/a";
}

std::string number(const std::optional<double>& value, int decimals) {
  return value ? fmt::format("{:.{}f}", *value, decimals) : "n/a";
}

}  // namespace

bool exact_match(std::string_view text, std::string_view expected) {
  return trim(text) == trim(expected);
}

double token_agreement(const std::vector<int32_t>& tokens, const std::vector<int32_t>& reference) {
  if (reference.empty()) return tokens.empty() ? 1.0 : 0.0;
  size_t equal = 0;
  for (size_t i = 0; i < reference.size() && i < tokens.size(); ++i) equal += tokens[i] == reference[i];
  return static_cast<double>(equal) / static_cast<double>(reference.size());
}

std::vector<RunMetrics> measure_runs(const Comparison& comparison, const Tokenizer& tokenizer) {
  const RunOutcome& ar = comparison.runs.front();
  std::vector<RunMetrics> all;
  for (const RunOutcome& run : comparison.runs) {
    RunMetrics m;
    std::vector<double> seconds;
    int64_t nfe = 0;
    double agreement_sum = 0.0;
    ContinuationScore judged;
    for (size_t i = 0; i < run.items.size(); ++i) {
      const ItemOutput& out = run.items[i];
      if (!out.ok()) {
        ++m.failed;
        continue;
      }
      ++m.decoded;
      m.generated_tokens += out.committed;
      nfe += out.nfe;
      seconds.push_back(out.seconds);
      if (const std::optional<std::string>& expected = comparison.items[i].expected) {
        ++m.exact_match.count;
        m.exact_match.hits += exact_match(out.text, *expected);
      }
      if (const ItemOutput& base = ar.items[i]; base.ok()) {
        ++m.ar_text_agreement.count;
        m.ar_text_agreement.hits += out.text == base.text;
        agreement_sum += token_agreement(tokenizer.encode(out.text, SpecialText::AsPlainText),
                                         tokenizer.encode(base.text, SpecialText::AsPlainText));
      }
      if (out.judged) {
        judged += *out.judged;
        ++m.judged;
      }
    }
    if (m.decoded > 0) {
      if (run.wall_seconds > 0)
        m.tokens_per_second = static_cast<double>(m.generated_tokens) / run.wall_seconds;
      m.latency_p50 = percentile(seconds, 0.50);
      m.latency_p95 = percentile(seconds, 0.95);
      m.mean_nfe = static_cast<double>(nfe) / static_cast<double>(m.decoded);
      if (nfe > 0) m.tokens_per_nfe = static_cast<double>(m.generated_tokens) / static_cast<double>(nfe);
    }
    if (m.ar_text_agreement.count > 0) m.ar_token_agreement = agreement_sum / m.ar_text_agreement.count;
    if (judged.tokens > 0) m.perplexity = judged.perplexity();
    all.push_back(m);
  }
  return all;
}

std::string format_table(const Comparison& comparison, const std::vector<RunMetrics>& metrics) {
  std::vector<std::vector<std::string>> rows = {{"run", "settings", "tokens/s", "p50 s", "p95 s", "NFE",
                                                 "tokens/NFE", "exact match", "= AR text", "AR token agr.",
                                                 "gen. ppl", "failed"}};
  for (size_t r = 0; r < comparison.runs.size(); ++r) {
    const RunMetrics& m = metrics[r];
    rows.push_back({comparison.runs[r].spec.name, describe(comparison.runs[r].settings.sampling),
                    number(m.tokens_per_second, 1), number(m.latency_p50, 3), number(m.latency_p95, 3),
                    number(m.mean_nfe, 1), number(m.tokens_per_nfe, 2), rate_cell(m.exact_match),
                    rate_cell(m.ar_text_agreement), percent(m.ar_token_agreement), number(m.perplexity, 2),
                    std::to_string(m.failed)});
  }
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  // Text columns align left, figures right.
  auto line = [&](const std::vector<std::string>& row) {
    std::string out = "|";
    for (size_t c = 0; c < row.size(); ++c) {
      out += c < 2 ? fmt::format(" {:<{}} |", row[c], width[c]) : fmt::format(" {:>{}} |", row[c], width[c]);
    }
    return out + "\n";
  };
  std::string table = line(rows.front()) + "|";
  for (size_t c = 0; c < width.size(); ++c) {
    table += c < 2 ? fmt::format(":{}|", std::string(width[c] + 1, '-'))
                   : fmt::format("{}:|", std::string(width[c] + 1, '-'));
  }
  table += "\n";
  for (size_t r = 1; r < rows.size(); ++r) table += line(rows[r]);
  return table;
}

Json report_json(const Comparison& comparison, const std::vector<RunMetrics>& metrics) {
  const bool judged = !comparison.judge_model.empty();
  Json runs = Json::array();
  for (size_t r = 0; r < comparison.runs.size(); ++r) {
    const RunOutcome& run = comparison.runs[r];
    runs.push_back({{"name", run.spec.name},
                    {"role", r == 0 ? "autoregressive" : "parallel"},
                    {"model", r == 0 ? comparison.ar_model : comparison.parallel_model},
                    {"swept_value", optional_json(run.spec.x)},
                    {"settings", sampling_record(run.settings.sampling, run.settings.seed)},
                    {"metrics", metrics_json(metrics[r], run)}});
  }
  Json items = Json::array();
  for (size_t i = 0; i < comparison.items.size(); ++i) {
    const PromptItem& item = comparison.items[i];
    Json entry = {{"id", item.id}, {"source", item.source}};
    if (!item.prompt.empty()) entry["prompt"] = item.prompt;
    entry["expected"] = item.expected ? Json(*item.expected) : Json(nullptr);
    Json outputs = Json::array();
    for (const RunOutcome& run : comparison.runs)
      outputs.push_back(output_json(item, run, run.items[i], judged));
    entry["outputs"] = std::move(outputs);
    items.push_back(std::move(entry));
  }
  Json sweep = nullptr;
  if (comparison.sweep_key) {
    Json values = Json::array();
    for (size_t r = 1; r < comparison.runs.size(); ++r)
      values.push_back(optional_json(comparison.runs[r].spec.x));
    sweep = {{"key", *comparison.sweep_key}, {"values", values}};
  }
  return {{"models",
           {{"parallel", comparison.parallel_model},
            {"autoregressive", comparison.ar_model},
            {"judge", judged ? Json(comparison.judge_model) : Json(nullptr)}}},
          {"sweep", sweep},
          {"items", comparison.items.size()},
          {"runs", runs},
          {"outputs", items}};
}

LineChart comparison_chart(const Comparison& comparison, const std::vector<RunMetrics>& metrics) {
  const bool scored = metrics.front().exact_match.count > 0;
  auto quality = [&](const RunMetrics& m) { return scored ? m.exact_match.value() : m.ar_token_agreement; };
  LineChart chart;
  chart.title = fmt::format("{}: parallel vs autoregressive decoding", model_name(comparison.parallel_model));
  chart.x_label = comparison.x_key;
  chart.series_label =
      fmt::format("parallel ({})", enum_name(comparison.runs.back().settings.sampling.method, kMethodNames));
  chart.baseline_label = fmt::format("autoregressive baseline: {} ({})", model_name(comparison.ar_model),
                                     describe(comparison.runs.front().settings.sampling));
  ChartPanel quality_panel{
      scored ? "exact match" : "token agreement with AR", {}, quality(metrics.front()), true};
  ChartPanel speed_panel{"tokens/s", {}, metrics.front().tokens_per_second, false};
  for (size_t r = 1; r < comparison.runs.size(); ++r) {
    chart.x.push_back(comparison.runs[r].spec.x.value_or(0.0));
    quality_panel.values.push_back(quality(metrics[r]));
    speed_panel.values.push_back(metrics[r].tokens_per_second);
  }
  chart.panels = {quality_panel, speed_panel};
  return chart;
}

}  // namespace dlm::cli
