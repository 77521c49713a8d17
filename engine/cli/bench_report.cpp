#include "engine/cli/bench_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <span>

namespace dlm::cli {

namespace {

using Cell = nlohmann::ordered_json;
enum class Align { Left, Right };

// One column of every format: a markdown title, a CSV and JSON key, and the cell of a row.
struct Column {
  std::string_view title, key;
  Align align;
  int decimals;  // digits after the point of a fractional value in markdown and CSV
  Cell (*cell)(const BenchRow&);
};

// A key the row's method does not read (configs/README.md) is blank ("-" in markdown, null in JSON), so a
// table mixing methods does not suggest, say, that autoregressive decoding took 64 steps.
Cell if_read(bool read, Cell value) {
  return read ? std::move(value) : Cell();
}
bool reads_block(Method m) {
  return m != Method::Dream && m != Method::Autoregressive;
}
bool reads_schedule(Method m) {  // steps and commit
  return m != Method::Autoregressive;
}
bool reads_cache(Method m) {
  return m == Method::Llada || m == Method::Dream || m == Method::Auto;
}

const Column kSettingColumns[] = {
    {"method", "method", Align::Left, 0,
     [](const BenchRow& r) { return Cell(std::string(enum_name(r.point.sampling.method, kMethodNames))); }},
    {"batch", "batch_size", Align::Right, 0, [](const BenchRow& r) { return Cell(r.point.batch_size); }},
    {"prompt", "prompt_length", Align::Right, 0,
     [](const BenchRow& r) { return Cell(r.point.prompt_length); }},
    {"gen", "gen_length", Align::Right, 0,
     [](const BenchRow& r) { return Cell(r.point.sampling.gen_length); }},
    {"block", "block_length", Align::Right, 0,
     [](const BenchRow& r) {
       const SamplingConfig& s = r.point.sampling;
       return if_read(reads_block(s.method), s.block_length);
     }},
    {"steps", "steps", Align::Right, 0,
     [](const BenchRow& r) {
       const SamplingConfig& s = r.point.sampling;
       return if_read(reads_schedule(s.method), s.steps);
     }},
    {"commit", "commit", Align::Left, 0,
     [](const BenchRow& r) {
       const SamplingConfig& s = r.point.sampling;
       return if_read(reads_schedule(s.method), std::string(enum_name(s.commit, kCommitRuleNames)));
     }},
    {"cache", "cache", Align::Left, 0,
     [](const BenchRow& r) {
       const SamplingConfig& s = r.point.sampling;
       return if_read(reads_cache(s.method), std::string(enum_name(s.cache, kCacheModeNames)));
     }},
};

// Called for measured rows only.
const Column kMetricColumns[] = {
    {"median s", "median_seconds", Align::Right, 4,
     [](const BenchRow& r) { return Cell(r.measured->median_seconds); }},
    {"min s", "min_seconds", Align::Right, 4,
     [](const BenchRow& r) { return Cell(r.measured->min_seconds); }},
    {"max s", "max_seconds", Align::Right, 4,
     [](const BenchRow& r) { return Cell(r.measured->max_seconds); }},
    {"tok/s", "tokens_per_second", Align::Right, 1,
     [](const BenchRow& r) { return Cell(r.measured->tokens_per_second); }},
    {"NFE/req", "nfe_per_request", Align::Right, 1,
     [](const BenchRow& r) { return Cell(r.measured->nfe_per_request); }},
    {"tok/NFE", "tokens_per_nfe", Align::Right, 2,
     [](const BenchRow& r) { return Cell(r.measured->tokens_per_nfe); }},
    {"ms/fwd", "ms_per_forward", Align::Right, 3,
     [](const BenchRow& r) { return Cell(r.measured->ms_per_forward); }},
    {"p50 s", "latency_p50_seconds", Align::Right, 4,
     [](const BenchRow& r) { return Cell(r.measured->latency_p50); }},
    {"p95 s", "latency_p95_seconds", Align::Right, 4,
     [](const BenchRow& r) { return Cell(r.measured->latency_p95); }},
};

std::string cell_text(const Cell& cell, int decimals) {
  if (cell.is_null()) return "";
  if (cell.is_string()) return cell.get<std::string>();
  if (cell.is_number_float()) return fmt::format("{:.{}f}", cell.get<double>(), decimals);
  return cell.dump();
}

// The row's text cells: settings, metrics (empty when it did not run), then the error when `with_error`.
std::vector<std::string> row_texts(const BenchRow& row, bool with_error) {
  std::vector<std::string> texts;
  for (const Column& column : kSettingColumns) texts.push_back(cell_text(column.cell(row), column.decimals));
  for (const Column& column : kMetricColumns) {
    texts.push_back(row.measured ? cell_text(column.cell(row), column.decimals) : "");
  }
  if (with_error) texts.push_back(row.error);
  return texts;
}

std::string markdown_cell(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  std::string escaped;
  for (char c : text) escaped += c == '|' ? std::string("\\|") : std::string(1, c);
  return escaped;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

std::string describe(const SweepPoint& point) {
  const SamplingConfig& s = point.sampling;
  return fmt::format("method {}, batch {}, prompt {}, gen {}, block {}, steps {}, commit {}, cache {}",
                     enum_name(s.method, kMethodNames), point.batch_size, point.prompt_length, s.gen_length,
                     s.block_length, s.steps, enum_name(s.commit, kCommitRuleNames),
                     enum_name(s.cache, kCacheModeNames));
}

namespace {

// One profiled point: the time by op, then the costliest op shapes.
std::string profile_markdown(size_t index, const BenchRow& row) {
  const PointProfile& p = *row.profile;
  double op_seconds = 0;
  std::map<std::string, OpTime> by_op;
  for (const OpTime& t : p.ops) {
    op_seconds += t.seconds;
    OpTime& sum = by_op[t.op];
    sum.op = t.op;
    sum.calls += t.calls;
    sum.seconds += t.seconds;
  }
  std::vector<OpTime> ops;
  for (const auto& [name, t] : by_op) ops.push_back(t);
  std::stable_sort(ops.begin(), ops.end(),
                   [](const OpTime& a, const OpTime& b) { return a.seconds > b.seconds; });
  const double forwards = static_cast<double>(std::max<int64_t>(p.forwards, 1));
  const auto share = [&](double seconds) {
    return p.run_seconds > 0 ? 100.0 * seconds / p.run_seconds : 0.0;
  };
  std::string out = fmt::format(
      "\n### Where the time goes: point {} ({})\n\n"
      "One more run with every backend op timed alone (the device waited for before and after each): {:.4f} "
      "s "
      "for {} forwards. The ops take {:.4f} s ({:.1f}%); the rest ({:.4f} s) is host work between them: "
      "building batches, sampling on the host, bookkeeping.\n\n"
      "| op | calls | ms | ms/forward | share |\n| --- | ---: | ---: | ---: | ---: |\n",
      index + 1, describe(row.point), p.run_seconds, p.forwards, op_seconds, share(op_seconds),
      p.run_seconds - op_seconds);
  for (const OpTime& t : ops) {
    out += fmt::format("| {} | {} | {:.3f} | {:.3f} | {:.1f}% |\n", t.op, t.calls, 1e3 * t.seconds,
                       1e3 * t.seconds / forwards, share(t.seconds));
  }
  constexpr size_t kShapes = 12;
  out += fmt::format(
      "\nThe {} costliest op shapes:\n\n| op | operands | calls | ms | share |\n"
      "| --- | --- | ---: | ---: | ---: |\n",
      std::min(kShapes, p.ops.size()));
  for (size_t i = 0; i < p.ops.size() && i < kShapes; ++i) {
    const OpTime& t = p.ops[i];
    out += fmt::format("| {} | {} | {} | {:.3f} | {:.1f}% |\n", t.op, t.shape, t.calls, 1e3 * t.seconds,
                       share(t.seconds));
  }
  return out;
}

}  // namespace

std::string report_markdown(const BenchReport& report) {
  const bool any_error =
      std::any_of(report.rows.begin(), report.rows.end(), [](const auto& r) { return !r.measured; });
  std::vector<std::string> titles;
  std::vector<Align> aligns;
  for (std::span<const Column> columns :
       {std::span<const Column>(kSettingColumns), std::span<const Column>(kMetricColumns)}) {
    for (const Column& column : columns) {
      titles.emplace_back(column.title);
      aligns.push_back(column.align);
    }
  }
  if (any_error) {
    titles.emplace_back("error");
    aligns.push_back(Align::Left);
  }
  // A blank setting or metric reads as "-"; the error column stays blank for a point that ran.
  const size_t dashed_columns = std::size(kSettingColumns) + std::size(kMetricColumns);
  std::vector<std::vector<std::string>> lines;
  for (const BenchRow& row : report.rows) {
    lines.push_back(row_texts(row, any_error));
    for (size_t c = 0; c < lines.back().size(); ++c) {
      std::string& text = lines.back()[c];
      text = text.empty() && c < dashed_columns ? "-" : markdown_cell(std::move(text));
    }
  }
  std::vector<size_t> widths;
  for (size_t c = 0; c < titles.size(); ++c) {
    widths.push_back(std::max<size_t>(titles[c].size(), 3));
    for (const auto& line : lines) widths[c] = std::max(widths[c], line[c].size());
  }
  auto render = [&](const std::vector<std::string>& texts) {
    std::string out = "|";
    for (size_t c = 0; c < texts.size(); ++c) {
      out += aligns[c] == Align::Left ? fmt::format(" {:<{}} |", texts[c], widths[c])
                                      : fmt::format(" {:>{}} |", texts[c], widths[c]);
    }
    return out + "\n";
  };
  // A code span holding a backtick needs a longer fence.
  const bool backtick = report.command.find('`') != std::string::npos;
  std::string out = fmt::format(
      "- command: {}{}{}\n- model: {}\n- machine: {}\n- date: {}\n"
      "- runs per point: {} warm-up, {} timed (times are their median)\n\n",
      backtick ? "`` " : "`", report.command, backtick ? " ``" : "`", report.model,
      report.device == "cuda" ? std::string("CUDA backend, GPU 0")
                              : fmt::format("CPU backend, {} threads", report.threads),
      report.date, report.runs.warmup, report.runs.repeat);
  out += render(titles);
  std::string rule = "|";
  for (size_t c = 0; c < titles.size(); ++c) {
    rule += aligns[c] == Align::Left ? fmt::format(" {:-<{}} |", "", widths[c])
                                     : fmt::format(" {:-<{}}: |", "", widths[c] - 1);
  }
  out += rule + "\n";
  for (const auto& line : lines) out += render(line);
  for (size_t i = 0; i < report.rows.size(); ++i) {
    if (report.rows[i].profile) out += profile_markdown(i, report.rows[i]);
  }
  return out;
}

std::string report_csv(const BenchReport& report) {
  std::vector<std::string> keys;
  for (const Column& column : kSettingColumns) keys.emplace_back(column.key);
  for (const Column& column : kMetricColumns) keys.emplace_back(column.key);
  keys.emplace_back("error");
  std::string out = fmt::format("{}\n", fmt::join(keys, ","));
  for (const BenchRow& row : report.rows) {
    std::vector<std::string> fields;
    for (const std::string& text : row_texts(row, true)) fields.push_back(csv_field(text));
    out += fmt::format("{}\n", fmt::join(fields, ","));
  }
  return out;
}

std::string report_json(const BenchReport& report) {
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const BenchRow& row : report.rows) {
    nlohmann::ordered_json record;
    for (const Column& column : kSettingColumns) record[std::string(column.key)] = column.cell(row);
    if (row.measured) {
      for (const Column& column : kMetricColumns) record[std::string(column.key)] = column.cell(row);
    } else {
      record["error"] = row.error;
    }
    if (row.profile) {
      nlohmann::ordered_json ops = nlohmann::ordered_json::array();
      for (const OpTime& t : row.profile->ops) {
        ops.push_back({{"op", t.op}, {"operands", t.shape}, {"calls", t.calls}, {"seconds", t.seconds}});
      }
      record["profile"] = {{"run_seconds", row.profile->run_seconds},
                           {"forwards", row.profile->forwards},
                           {"ops", std::move(ops)}};
    }
    rows.push_back(std::move(record));
  }
  nlohmann::ordered_json out;
  out["command"] = report.command;
  out["model"] = report.model;
  out["backend"] = report.device;
  out["threads"] = report.threads;
  out["date"] = report.date;
  out["warmup"] = report.runs.warmup;
  out["repeat"] = report.runs.repeat;
  out["rows"] = std::move(rows);
  return out.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

}  // namespace dlm::cli
