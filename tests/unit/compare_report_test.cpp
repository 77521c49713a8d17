// `dlm compare`'s figures from outcomes made up here, so each can be checked by hand: percentiles, exact
// match, agreement with the baseline, perplexity, the table, the report and the chart.
#include "engine/cli/compare_report.h"
#include "engine/cli/percentile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tests/unit/xml_check.h"

namespace dlm::cli {
namespace {

using ::testing::HasSubstr;

TEST(CompareFigures, PercentilesInterpolateBetweenRanks) {
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4, 1, 3, 2}, 0.95), 3.85);
  EXPECT_DOUBLE_EQ(percentile({7}, 0.95), 7);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3}, 1.0), 3);
}

TEST(CompareFigures, ExactMatchTrimsBothSides) {
  EXPECT_TRUE(exact_match(" 1234/3412 \n", "1234/3412"));
  EXPECT_TRUE(exact_match("", " \t"));
  EXPECT_FALSE(exact_match("1234 /3412", "1234/3412"));
  EXPECT_FALSE(exact_match("e d c", "E D C"));
}

TEST(CompareFigures, TokenAgreementCountsTheReferencesPositions) {
  EXPECT_DOUBLE_EQ(token_agreement({1, 2, 3}, {1, 5, 3, 4}), 0.5);
  EXPECT_DOUBLE_EQ(token_agreement({1, 2, 3, 4, 5}, {1, 2}), 1.0);
  EXPECT_DOUBLE_EQ(token_agreement({}, {}), 1.0);
  EXPECT_DOUBLE_EQ(token_agreement({1}, {}), 0.0);
}

ItemOutput decoded(std::string text, int64_t nfe, int64_t committed, double seconds) {
  ItemOutput out;
  out.text = std::move(text);
  out.nfe = nfe;
  out.committed = committed;
  out.seconds = seconds;
  return out;
}

ItemOutput failed(std::string error) {
  ItemOutput out;
  out.error = std::move(error);
  return out;
}

// Three items, two with an expected answer; a baseline and two parallel runs, one of which fails an item.
class CompareOutcomes : public ::testing::Test {
 protected:
  CompareOutcomes() : tokenizer_(load_tokenizer(std::string(DLM_MODELS_DIR) + "/ar-11m")) {
    c_.items.resize(3);
    c_.items[0].id = "a";
    c_.items[0].prompt = "reverse a b c:";
    c_.items[0].expected = "c b a";
    c_.items[1].id = "b";
    c_.items[1].prompt = "reverse x y:";
    c_.items[1].expected = "y x";
    c_.items[2].id = "c";
    c_.items[2].prompt = "Once upon a time";
    c_.parallel_model = "models/diffusion-11m";
    c_.ar_model = "models/diffusion-11m";
    c_.sweep_key = "steps";
    c_.x_key = "steps";
    c_.runs.resize(3);
    c_.runs[0].spec.name = "ar";
    c_.runs[0].items = {decoded("c b a", 4, 3, 0.3), decoded(" y x ", 3, 2, 0.2),
                        decoded("there was", 3, 2, 0.1)};
    c_.runs[0].wall_seconds = 0.5;
    c_.runs[1].spec = {"steps=2", nullptr, {}, 2.0};
    c_.runs[1].items = {decoded("c b b", 2, 3, 0.1), failed("x: too long"), decoded("there is", 2, 2, 0.1)};
    c_.runs[1].wall_seconds = 0.25;
    c_.runs[2].spec = {"steps=4", nullptr, {}, 4.0};
    c_.runs[2].items = {decoded("c b a", 4, 3, 0.2), decoded("y x", 4, 2, 0.4),
                        decoded("there was", 4, 2, 0.3)};
    c_.runs[2].wall_seconds = 0.5;
    for (RunOutcome& run : c_.runs) run.settings.sampling.method = Method::Llada;
    c_.runs[0].settings.sampling.block_length = 1;
  }

  std::vector<int32_t> ids(const std::string& text) const {
    return tokenizer_->encode(text, SpecialText::AsPlainText);
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  Comparison c_;
};

TEST_F(CompareOutcomes, MetricsAgainstTheBaseline) {
  const std::vector<RunMetrics> m = measure_runs(c_, *tokenizer_);
  ASSERT_EQ(m.size(), 3u);
  // The baseline against itself agrees everywhere.
  EXPECT_EQ(m[0].ar_text_agreement.hits, 3);
  EXPECT_DOUBLE_EQ(*m[0].ar_token_agreement, 1.0);
  EXPECT_DOUBLE_EQ(*m[0].exact_match.value(), 1.0);  // " y x " is "y x" once trimmed

  const RunMetrics& two = m[1];
  EXPECT_EQ(two.decoded, 2);
  EXPECT_EQ(two.failed, 1);
  EXPECT_EQ(two.generated_tokens, 5);
  EXPECT_DOUBLE_EQ(*two.tokens_per_second, 5 / 0.25);
  EXPECT_DOUBLE_EQ(*two.mean_nfe, 2.0);
  EXPECT_DOUBLE_EQ(*two.tokens_per_nfe, 5 / 4.0);
  EXPECT_EQ(two.exact_match.hits, 0);
  EXPECT_EQ(two.exact_match.count, 1);  // the failed item is not counted
  EXPECT_EQ(two.ar_text_agreement.hits, 0);
  EXPECT_EQ(two.ar_text_agreement.count, 2);
  const double expected_agreement =
      (token_agreement(ids("c b b"), ids("c b a")) + token_agreement(ids("there is"), ids("there was"))) / 2;
  EXPECT_DOUBLE_EQ(*two.ar_token_agreement, expected_agreement);
  EXPECT_LT(*two.ar_token_agreement, 1.0);

  const RunMetrics& four = m[2];
  EXPECT_DOUBLE_EQ(*four.latency_p50, 0.3);
  EXPECT_DOUBLE_EQ(*four.latency_p95, 0.39);
  EXPECT_EQ(four.exact_match.hits, 2);
  EXPECT_EQ(four.ar_text_agreement.hits, 2);  // " y x " differs from "y x" as text
  EXPECT_FALSE(four.perplexity);
}

TEST_F(CompareOutcomes, CorpusPerplexityPoolsTheJudgedTokens) {
  c_.runs[2].items[0].judged = ContinuationScore{3.0, 3};
  c_.runs[2].items[1].judged = ContinuationScore{1.0, 2};
  c_.runs[2].items[2].judge_error = "c: nothing to score";
  const RunMetrics m = measure_runs(c_, *tokenizer_)[2];
  EXPECT_EQ(m.judged, 2);
  EXPECT_DOUBLE_EQ(*m.perplexity, std::exp(4.0 / 5.0));
}

TEST_F(CompareOutcomes, TableHasARowPerRunAndMarksWhatIsMissing) {
  c_.items[0].expected.reset();
  c_.items[1].expected.reset();
  const std::string table = format_table(c_, measure_runs(c_, *tokenizer_));
  EXPECT_EQ(count_of(table, "\n"), 5u);  // header, rule, three runs
  EXPECT_THAT(table, HasSubstr("| steps=2 "));
  EXPECT_THAT(table, HasSubstr("| llada, 128 steps, block 1 "));
  EXPECT_THAT(table, HasSubstr(" n/a |"));  // no exact match without expected answers
}

TEST_F(CompareOutcomes, ReportHoldsEveryRunAndItem) {
  const nlohmann::ordered_json report = report_json(c_, measure_runs(c_, *tokenizer_));
  ASSERT_EQ(report.at("runs").size(), 3u);
  EXPECT_EQ(report.at("runs")[1].at("metrics").at("failed"), 1);
  EXPECT_EQ(report.at("sweep").at("values"), nlohmann::json::parse("[2.0, 4.0]"));
  const auto& outputs = report.at("outputs");
  ASSERT_EQ(outputs.size(), 3u);
  EXPECT_EQ(outputs[1].at("outputs")[1].at("error"), "x: too long");
  EXPECT_EQ(outputs[0].at("outputs")[1].at("exact_match"), false);
  EXPECT_EQ(outputs[0].at("outputs")[2].at("exact_match"), true);
  EXPECT_TRUE(outputs[2].at("outputs")[0].at("exact_match").is_null());
  EXPECT_FALSE(outputs[0].at("outputs")[0].contains("perplexity"));  // no judge
}

TEST_F(CompareOutcomes, ChartHasAPointPerSweepValueInEachPanel) {
  const LineChart chart = comparison_chart(c_, measure_runs(c_, *tokenizer_));
  EXPECT_EQ(chart.x, (std::vector<double>{2, 4}));
  ASSERT_EQ(chart.panels.size(), 2u);
  EXPECT_EQ(chart.panels[0].y_label, "exact match");
  EXPECT_DOUBLE_EQ(*chart.panels[0].baseline, 1.0);
  EXPECT_DOUBLE_EQ(*chart.panels[1].values[1], 7 / 0.5);
  c_.items[0].expected.reset();
  c_.items[1].expected.reset();
  EXPECT_EQ(comparison_chart(c_, measure_runs(c_, *tokenizer_)).panels[0].y_label, "token agreement with AR");
}

TEST(SvgChart, IsWellFormedWithAPointPerValue) {
  LineChart chart{"a <b> & c", "steps", "parallel", "AR", {16, 32, 64, 128}, {}};
  chart.panels.push_back({"exact match", {0.5, 0.75, std::nullopt, 1.0}, 0.9, true});
  chart.panels.push_back({"tokens/s", {400, 210, 101, 52}, 95, false});
  const std::string svg = render_svg(chart);
  EXPECT_TRUE(svg.starts_with("<svg ")) << svg.substr(0, 40);
  EXPECT_EQ(xml_tag_error(svg), "");
  EXPECT_EQ(count_of(svg, "<g class=\"panel\""), 2u);
  EXPECT_EQ(count_of(svg, "<circle class=\"point\""), 7u);  // the missing value has no point
  for (const char* x : {"16", "32", "64", "128"}) {
    EXPECT_EQ(count_of(svg, fmt::format("data-x=\"{}\"", x)), std::string(x) == "64" ? 1u : 2u) << x;
  }
  EXPECT_EQ(count_of(svg, "class=\"baseline\""), 2u);
  EXPECT_THAT(svg, HasSubstr("a &lt;b&gt; &amp; c"));
  EXPECT_THAT(svg, HasSubstr("steps (log scale)"));
  EXPECT_THAT(svg, HasSubstr(">100%<"));
}

TEST(SvgChart, TheCheckerCatchesMalformedDocuments) {
  EXPECT_NE(xml_tag_error("<svg><g></svg>"), "");
  EXPECT_NE(xml_tag_error("<svg><text>a & b</text></svg>"), "");
  EXPECT_NE(xml_tag_error("<svg><g x=\"1></g></svg>"), "");
  EXPECT_EQ(xml_tag_error("<svg><g x=\"a>b\"/><text>&lt;</text></svg>"), "");
}

}  // namespace
}  // namespace dlm::cli
