#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "engine/ops/vocab.h"

namespace dlm {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

HostTensor logits_of(const std::vector<std::vector<float>>& rows) {
  std::vector<float> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  return HostTensor::from(Shape{int64_t(rows.size()), int64_t(rows.front().size())}, flat);
}

struct Stats {
  std::vector<int32_t> argmax;
  std::vector<float> max_prob, entropy, margin;
};

class VocabTest : public ::testing::Test {
 protected:
  std::vector<int32_t> argmax(const HostTensor& logits) {
    HostTensor out(DType::I32, Shape{logits.tensor().dim(0)});
    ops::argmax(backend_, logits, out);
    return out.to_vector<int32_t>();
  }

  std::pair<std::vector<float>, std::vector<int32_t>> top_k(const HostTensor& logits, int64_t k) {
    HostTensor values(DType::F32, Shape{logits.tensor().dim(0), k});
    HostTensor indices(DType::I32, Shape{logits.tensor().dim(0), k});
    ops::top_k(backend_, logits, k, values, indices);
    return {values.to_vector<float>(), indices.to_vector<int32_t>()};
  }

  Stats stats(const HostTensor& logits) {
    const Shape rows{logits.tensor().dim(0)};
    HostTensor argmax(DType::I32, rows), max_prob(DType::F32, rows), entropy(DType::F32, rows),
        margin(DType::F32, rows);
    ops::vocab_stats(backend_, logits, {argmax, max_prob, entropy, margin});
    return {argmax.to_vector<int32_t>(), max_prob.to_vector<float>(), entropy.to_vector<float>(),
            margin.to_vector<float>()};
  }

  CpuBackend backend_{4};
};

TEST_F(VocabTest, ArgmaxTakesTheFirstOfTiedMaxima) {
  auto logits = logits_of({{1, 3, 3, 2}, {7, 7, 7, 7}, {-1, -5, -1, -9}, {0, 0, 0, 2}});
  EXPECT_EQ(argmax(logits), (std::vector<int32_t>{1, 0, 0, 3}));
}

TEST_F(VocabTest, ArgmaxTreatsNaNAsTheMaximumLikeTorch) {
  // torch.argmax(torch.tensor([1., nan, 5., nan])) == 1; infinities order as numbers.
  auto logits =
      logits_of({{1, kNaN, 5, kNaN}, {kInf, 2, kNaN, 1}, {1, kInf, kInf, 2}, {-kInf, -kInf, -kInf, -kInf}});
  EXPECT_EQ(argmax(logits), (std::vector<int32_t>{1, 2, 1, 0}));
}

TEST_F(VocabTest, ArgmaxFindsAMaximumInTheTailAndInTheVectorBody) {
  // 19 entries: 16 go through the vectorized loop, 3 through the tail.
  std::vector<float> row(19, 0.0f);
  row[18] = 1.0f;
  std::vector<float> body(19, 0.0f);
  body[9] = 1.0f;
  body[17] = kNaN;
  EXPECT_EQ(argmax(logits_of({row, body})), (std::vector<int32_t>{18, 17}));
}

TEST_F(VocabTest, TopKOrdersDescendingWithTiesToTheLowerIndex) {
  auto [values, indices] = top_k(logits_of({{1, 3, 3, 2, 5}, {0, 0, 0, 0, 0}}), 3);
  EXPECT_EQ(values, (std::vector<float>{5, 3, 3, 0, 0, 0}));
  EXPECT_EQ(indices, (std::vector<int32_t>{4, 1, 2, 0, 1, 2}));
}

TEST_F(VocabTest, TopKOfTheWholeRowIsAStableDescendingSort) {
  auto [values, indices] = top_k(logits_of({{2, -kInf, 2, 9, -1, 2}}), 6);
  EXPECT_EQ(values, (std::vector<float>{9, 2, 2, 2, -1, -kInf}));
  EXPECT_EQ(indices, (std::vector<int32_t>{3, 0, 2, 5, 4, 1}));
}

TEST_F(VocabTest, TopKRanksNaNFirst) {
  auto [values, indices] = top_k(logits_of({{1, kNaN, 3, kNaN, kInf}}), 3);
  EXPECT_TRUE(std::isnan(values[0]) && std::isnan(values[1]));
  EXPECT_EQ(values[2], kInf);
  EXPECT_EQ(indices, (std::vector<int32_t>{1, 3, 4}));
}

TEST_F(VocabTest, TopKOfOne) {
  auto [values, indices] = top_k(logits_of({{4}, {-2}}), 1);
  EXPECT_EQ(values, (std::vector<float>{4, -2}));
  EXPECT_EQ(indices, (std::vector<int32_t>{0, 0}));
}

TEST_F(VocabTest, StatsByHand) {
  // Logits (0, ln 2, ln 3): p = (1, 2, 3) / 6. max_prob 1/2, margin 1/2 - 1/3 = 1/6,
  // entropy = -(1/6 ln 1/6 + 1/3 ln 1/3 + 1/2 ln 1/2) = 1.0114042647073518.
  // Shifting the logits by 1000 changes nothing.
  const float ln2 = std::log(2.0f), ln3 = std::log(3.0f);
  Stats s = stats(logits_of({{0, ln2, ln3}, {1000, 1000 + ln2, 1000 + ln3}}));
  for (int row = 0; row < 2; ++row) {
    const float tol = row == 0 ? 1e-6f : 1e-4f;  // 1000 + ln 3 carries f32 rounding of ~3e-5
    EXPECT_EQ(s.argmax[row], 2);
    EXPECT_NEAR(s.max_prob[row], 0.5f, tol);
    EXPECT_NEAR(s.margin[row], 1.0f / 6.0f, tol);
    EXPECT_NEAR(s.entropy[row], 1.0114042647073518f, tol);
  }
}

TEST_F(VocabTest, UniformRowHasEntropyLogV) {
  // V = 1000 equal logits: entropy ln 1000 = 6.907755278982137, p = 1/1000, margin 0, argmax the first.
  Stats s = stats(logits_of({std::vector<float>(1000, 0.25f), std::vector<float>(1000, -7.0f)}));
  for (int row = 0; row < 2; ++row) {
    EXPECT_EQ(s.argmax[row], 0);
    EXPECT_NEAR(s.entropy[row], 6.907755278982137f, 1e-5f);
    EXPECT_NEAR(s.max_prob[row], 1e-3f, 1e-9f);
    EXPECT_EQ(s.margin[row], 0.0f);
  }
}

TEST_F(VocabTest, SingleEntryVocabulary) {
  Stats s = stats(logits_of({{3.5f}, {-1e30f}}));
  for (int row = 0; row < 2; ++row) {
    EXPECT_EQ(s.argmax[row], 0);
    EXPECT_EQ(s.max_prob[row], 1.0f);
    EXPECT_EQ(s.entropy[row], 0.0f);
    EXPECT_EQ(s.margin[row], 1.0f);
  }
}

TEST_F(VocabTest, HugeLogitsStayFinite) {
  // (1e30, 0, -1e30): all mass on the first. (3e38, 3e38): two halves, entropy ln 2, margin 0.
  // (-3e38, 3e38): the difference overflows f32 to -inf, which still means probability 0.
  Stats s = stats(logits_of({{1e30f, 0.0f, -1e30f}, {3e38f, 0.0f, 3e38f}, {-3e38f, 0.0f, 3e38f}}));
  EXPECT_EQ(s.argmax, (std::vector<int32_t>{0, 0, 2}));
  EXPECT_EQ(s.max_prob[0], 1.0f);
  EXPECT_EQ(s.entropy[0], 0.0f);
  EXPECT_EQ(s.margin[0], 1.0f);
  EXPECT_FLOAT_EQ(s.max_prob[1], 0.5f);
  EXPECT_FLOAT_EQ(s.entropy[1], 0.6931471805599453f);
  EXPECT_EQ(s.margin[1], 0.0f);
  EXPECT_EQ(s.max_prob[2], 1.0f);
  EXPECT_EQ(s.entropy[2], 0.0f);
  EXPECT_EQ(s.margin[2], 1.0f);
}

TEST_F(VocabTest, NegativeInfinityHasProbabilityZero) {
  // (0, -inf, 0): p = (1/2, 0, 1/2).
  Stats s = stats(logits_of({{0, -kInf, 0}}));
  EXPECT_EQ(s.argmax[0], 0);
  EXPECT_FLOAT_EQ(s.max_prob[0], 0.5f);
  EXPECT_FLOAT_EQ(s.entropy[0], 0.6931471805599453f);
  EXPECT_EQ(s.margin[0], 0.0f);
}

TEST_F(VocabTest, NonFiniteRowsGiveNaNStatisticsLikeSoftmax) {
  // A NaN, a +inf or nothing but -inf make torch.softmax NaN; argmax still follows torch.argmax.
  Stats s = stats(logits_of({{1, kNaN, 2}, {1, kInf, 2}, {-kInf, -kInf, -kInf}}));
  EXPECT_EQ(s.argmax, (std::vector<int32_t>{1, 1, 0}));
  for (int row = 0; row < 3; ++row) {
    EXPECT_TRUE(std::isnan(s.max_prob[row])) << row;
    EXPECT_TRUE(std::isnan(s.entropy[row])) << row;
    EXPECT_TRUE(std::isnan(s.margin[row])) << row;
  }
}

TEST_F(VocabTest, MarginOfNearlyTiedLogitsKeepsItsDigits) {
  // Two logits 1e-6 apart, the rest far below: margin = tanh(1e-6 / 2) = 5.0e-7 (to 1e-19).
  std::vector<float> row(64, -100.0f);
  row[5] = 1e-6f;
  row[40] = 0.0f;
  Stats s = stats(logits_of({row}));
  EXPECT_EQ(s.argmax[0], 5);
  EXPECT_NEAR(s.margin[0], std::tanh(double(row[5]) / 2), 1e-12);
}

// Large vocabulary, odd row count: checked against a plain double-precision softmax and a stable sort.
TEST_F(VocabTest, LargeVocabularyMatchesPlainComputation) {
  const int64_t rows = 7, vocab = 262144;
  std::mt19937 gen(11);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  std::vector<std::vector<float>> data(rows, std::vector<float>(vocab));
  for (auto& row : data) {
    for (float& x : row) x = normal(gen);
  }
  data[3][vocab - 1] = 40.0f;  // a peaked row whose maximum is the very last entry
  data[5][0] = 40.0f;
  data[5][vocab / 2] = 40.0f;  // tied maxima far apart
  HostTensor logits = logits_of(data);
  Stats s = stats(logits);
  const auto plain_argmax = argmax(logits);
  const int64_t k = 17;
  auto [values, indices] = top_k(logits, k);

  for (int64_t r = 0; r < rows; ++r) {
    const auto& x = data[r];
    int32_t best = 0;
    for (int32_t i = 1; i < vocab; ++i) {
      if (x[i] > x[best]) best = i;
    }
    double m = x[best], z = 0.0;
    for (float v : x) z += std::exp(double(v) - m);
    double entropy = 0.0;
    std::vector<double> p(vocab);
    for (int64_t i = 0; i < vocab; ++i) {
      p[i] = std::exp(double(x[i]) - m) / z;
      if (p[i] > 0) entropy -= p[i] * std::log(p[i]);
    }
    std::vector<int32_t> order(vocab);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });

    SCOPED_TRACE(::testing::Message() << "row " << r);
    EXPECT_EQ(plain_argmax[r], best);
    EXPECT_EQ(s.argmax[r], best);
    EXPECT_NEAR(s.max_prob[r], p[best], 1e-6 * std::max(1.0, p[best]));
    EXPECT_NEAR(s.entropy[r], entropy, 1e-5 * std::max(1.0, entropy));
    EXPECT_NEAR(s.margin[r], p[order[0]] - p[order[1]], 1e-6);
    for (int64_t j = 0; j < k; ++j) {
      EXPECT_EQ(indices[r * k + j], order[j]) << "rank " << j;
      EXPECT_EQ(values[r * k + j], x[order[j]]) << "rank " << j;
    }
  }
  EXPECT_EQ(s.argmax[3], vocab - 1);
  EXPECT_EQ(s.argmax[5], 0);
  EXPECT_EQ(s.margin[5], 0.0f);
}

// ---- validation ----

void expect_error(const std::function<void(Backend&)>& call, const std::vector<std::string>& words) {
  CpuBackend backend(1);
  try {
    call(backend);
    ADD_FAILURE() << "no error; expected one mentioning " << ::testing::PrintToString(words);
  } catch (const Error& e) {
    const std::string message = e.what();
    for (const auto& word : words) EXPECT_NE(message.find(word), std::string::npos) << message;
  }
}

TEST(VocabValidation, RejectsBadArguments) {
  HostTensor logits(DType::F32, Shape{3, 10});
  HostTensor rows_i32(DType::I32, Shape{3});
  HostTensor rows_f32(DType::F32, Shape{3});
  expect_error([&](Backend& b) { ops::argmax(b, HostTensor(DType::F32, Shape{30}), rows_i32); },
               {"argmax: ", "logits", "rank 2"});
  expect_error(
      [&](Backend& b) {
        ops::argmax(b, HostTensor(DType::I32, Shape{3, 10}), rows_i32);
      },
      {"argmax: ", "logits", "f32"});
  expect_error(
      [&](Backend& b) {
        ops::argmax(b, HostTensor(DType::F32, Shape{3, 0}), rows_i32);
      },
      {"argmax: ", "vocabulary", "[3,0]"});
  expect_error([&](Backend& b) { ops::argmax(b, logits, HostTensor(DType::I32, Shape{4})); },
               {"argmax: ", "out", "[3]"});
  expect_error([&](Backend& b) { ops::argmax(b, logits, rows_f32); }, {"argmax: ", "out", "i32"});

  HostTensor values(DType::F32, Shape{3, 2}), indices(DType::I32, Shape{3, 2});
  expect_error([&](Backend& b) { ops::top_k(b, logits, 0, values, indices); },
               {"top_k: ", "k", "[1, 10]", "0"});
  expect_error([&](Backend& b) { ops::top_k(b, logits, 11, values, indices); }, {"top_k: ", "k", "11"});
  expect_error([&](Backend& b) { ops::top_k(b, logits, 3, values, indices); },
               {"top_k: ", "values", "[3,3]"});
  expect_error(
      [&](Backend& b) {
        ops::top_k(b, logits, 2, values, HostTensor(DType::I64, Shape{3, 2}));
      },
      {"top_k: ", "indices", "i32"});

  expect_error(
      [&](Backend& b) {
        ops::vocab_stats(b, logits, {rows_i32, rows_f32, rows_f32, HostTensor(DType::F32, Shape{2})});
      },
      {"vocab_stats: ", "margin", "[3]"});
  expect_error(
      [&](Backend& b) {
        ops::vocab_stats(b, logits, {rows_f32, rows_f32, rows_f32, rows_f32});
      },
      {"vocab_stats: ", "argmax", "i32"});
  expect_error(
      [&](Backend& b) {
        ops::vocab_stats(b, logits, {rows_i32, rows_f32, Tensor(), rows_f32});
      },
      {"vocab_stats: ", "entropy"});
}

TEST(VocabValidation, AcceptsNoRows) {
  CpuBackend backend(1);
  HostTensor logits(DType::F32, Shape{0, 5});
  HostTensor out(DType::I32, Shape{0});
  EXPECT_NO_THROW(ops::argmax(backend, logits, out));
}

// The front-end names the rule and the field it cannot apply; a valid rule on the CPU, whose samplers read
// the logits themselves, is refused by name.
TEST(PredictTokens, NamesTheBadRuleAndRefusesTheCpu) {
  CpuBackend backend(1);
  const HostTensor logits = HostTensor::from(Shape{2, 4}, std::vector<float>(8, 0.5f));
  std::vector<TokenPrediction> out(2);
  std::vector<int32_t> penalized = {0, 2, 3, 1, 1};
  const auto message = [&](std::vector<TokenRule> rules) {
    try {
      ops::predict_tokens(backend, logits, rules, penalized, out);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  std::vector<TokenRule> rules(2);
  EXPECT_NE(message(rules).find("the cpu backend has no token rules"), std::string::npos) << message(rules);
  rules[1].suppress_before_scores[2] = 4;
  EXPECT_NE(message(rules).find("rule 1: suppress_before_scores id 4 is outside [-1, 4)"), std::string::npos)
      << message(rules);
  rules[1] = TokenRule{};
  rules[0].guidance_row = 0;
  EXPECT_NE(message(rules).find("rule 0: guidance_row 0 is not another of the 2 rows"), std::string::npos)
      << message(rules);
  rules[0] = TokenRule{};
  rules[0].draw = TokenDraw::Gumbel;
  EXPECT_NE(message(rules).find("rule 0: a draw or division needs a positive finite temperature, got 0"),
            std::string::npos)
      << message(rules);
  rules[0].temperature = 0.5;
  rules[0].draw = TokenDraw::Categorical;
  rules[0].suppress_before_scores[0] = 1;
  EXPECT_NE(message(rules).find("takes no score-only suppressions"), std::string::npos) << message(rules);
  EXPECT_NE(message({TokenRule{}}).find("1 rules and 2 outputs"), std::string::npos);

  // Filters out of range.
  const auto refused = [&](void (*change)(TokenRule&), const std::string& expected) {
    std::vector<TokenRule> bad(2);
    change(bad[1]);
    const std::string got = message(bad);
    EXPECT_NE(got.find(expected), std::string::npos) << got;
  };
  refused([](TokenRule& r) { r.top_k = -1; }, "rule 1: top_k -1 is negative");
  refused([](TokenRule& r) { r.top_p = 1.5; }, "rule 1: top_p 1.5 is outside [0, 1]");
  refused([](TokenRule& r) { r.top_p = std::nan(""); }, "rule 1: top_p nan is outside [0, 1]");
  refused([](TokenRule& r) { r.min_p = -0.1; }, "rule 1: min_p -0.1 is outside [0, 1]");
  refused([](TokenRule& r) { r.filter_order = static_cast<FilterOrder>(7); },
          "rule 1: unknown filter order 7");
  // The penalty: positive and finite, its ids an ascending slice of the given ids inside the vocabulary.
  refused([](TokenRule& r) { r.repetition_penalty = 0.0; },
          "rule 1: repetition_penalty 0 is not a positive finite number");
  // Rule 1 penalizing ids [begin, begin + count) of `penalized`.
  const auto refused_slice = [&](int32_t begin, int32_t count, const std::string& expected) {
    std::vector<TokenRule> bad(2);
    bad[1].repetition_penalty = 1.2;
    bad[1].penalized_begin = begin;
    bad[1].penalized_count = count;
    const std::string got = message(bad);
    EXPECT_NE(got.find(expected), std::string::npos) << got;
  };
  refused_slice(3, 3, "rule 1: penalized ids [3, +3) are outside the 5 given");
  refused_slice(2, 2, "rule 1: penalized ids must ascend, got 1 after 3");
  refused_slice(3, 2, "rule 1: penalized ids must ascend, got 1 after 1");
  penalized[4] = 4;
  refused_slice(3, 2, "rule 1: penalized id 4 is outside [0, 4)");
  // A penalized or divided row changes in place: it may neither be guided nor guide another row.
  const std::string no_guidance =
      "rule 0: guidance cannot be combined with a repetition penalty or a division by the temperature";
  std::vector<TokenRule> guided(2);
  guided[0].guidance_row = 1;
  guided[1].repetition_penalty = 1.1;
  EXPECT_NE(message(guided).find(no_guidance + " (guidance row 1)"), std::string::npos) << message(guided);
  guided[0].repetition_penalty = 1.1;
  guided[1].repetition_penalty = 1.0;
  EXPECT_NE(message(guided).find(no_guidance), std::string::npos) << message(guided);
  guided[0].repetition_penalty = 1.0;
  guided[1].divide_by_temperature = true;
  guided[1].temperature = 0.5;
  EXPECT_NE(message(guided).find(no_guidance), std::string::npos) << message(guided);
  // Valid filters and penalty ids reach the backend, which here has no token rules.
  std::vector<TokenRule> valid(2);
  valid[0].top_k = 2;
  valid[0].top_p = 0.5;
  valid[0].min_p = 0.1;
  valid[1].repetition_penalty = 1.3;
  valid[1].penalized_begin = 0;
  valid[1].penalized_count = 3;
  penalized = {0, 2, 3};
  EXPECT_NE(message(valid).find("the cpu backend has no token rules"), std::string::npos) << message(valid);
}

}  // namespace
}  // namespace dlm
