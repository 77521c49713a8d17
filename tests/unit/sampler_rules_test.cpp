// The pure pieces of decoding (samplers/token_rules.h, selection.h, schedule.h, prediction.h): every value is
// worked by hand in a comment, and the stochastic paths are checked statistically with fixed seeds against
// bounds of five binomial standard deviations.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "engine/core/error.h"
#include "samplers/masked_diffusion.h"
#include "samplers/prediction.h"
#include "samplers/schedule.h"
#include "samplers/selection.h"
#include "samplers/token_rules.h"

namespace dlm {
namespace {

using ::testing::ElementsAre;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Logits whose softmax is exactly the given probabilities (up to float rounding of the logs).
std::vector<float> logits_of(const std::vector<double>& probabilities) {
  std::vector<float> row;
  for (double p : probabilities) row.push_back(static_cast<float>(std::log(p)));
  return row;
}

// Five standard deviations of the proportion of `n` Bernoulli(p) draws.
double five_sigma(double p, int64_t n) {
  return 5.0 * std::sqrt(p * (1.0 - p) / static_cast<double>(n));
}

// ---------------------------------------------------------------------------------------------------------
// token_rules

TEST(TokenRules, SuppressSetsOneLogitToMinusInfinity) {
  std::vector<float> row = {1.0f, 2.0f, 3.0f};
  suppress(row, 1);
  EXPECT_THAT(row, ElementsAre(1.0f, -kInf, 3.0f));
  EXPECT_THROW(suppress(row, 3), Error);
  EXPECT_THROW(suppress(row, -1), Error);
}

TEST(TokenRules, RepetitionPenaltyMultipliesNegativesDividesPositivesOncePerDistinctId) {
  // History {1, 3, 1, 7, -1, 3, 4} with penalty 2 over 5 ids: id 1 (-1.0) becomes -1.0 * 2 = -2.0 and id 3
  // (3.0) becomes 3.0 / 2 = 1.5, once each although both occur twice (twice would give -4.0 and 0.75); id 4
  // (0.0, not negative) is divided: 0.0; ids 7 and -1 are outside the row and ignored; ids 0, 2 untouched.
  std::vector<float> row = {2.0f, -1.0f, 0.5f, 3.0f, 0.0f};
  const std::vector<int32_t> history = {1, 3, 1, 7, -1, 3, 4};
  apply_repetition_penalty(row, history, 2.0);
  EXPECT_THAT(row, ElementsAre(2.0f, -2.0f, 0.5f, 1.5f, 0.0f));
  // A penalty below 1 favours the repeated ids: -2.0 * 0.5 = -1.0, 1.5 / 0.5 = 3.0.
  apply_repetition_penalty(row, history, 0.5);
  EXPECT_THAT(row, ElementsAre(2.0f, -1.0f, 0.5f, 3.0f, 0.0f));
  apply_repetition_penalty(row, history, 1.0);
  EXPECT_THAT(row, ElementsAre(2.0f, -1.0f, 0.5f, 3.0f, 0.0f));
}

TEST(TokenRules, TopKKeepsEveryTieOfTheKthLargest) {
  // Sorted descending: 3, 3, 2, 1, 0. k = 2: the 2nd largest is 3, so both 3s stay and the rest go.
  std::vector<float> row = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  filter_top_k(row, 2);
  EXPECT_THAT(row, ElementsAre(-kInf, 3.0f, -kInf, 3.0f, -kInf));
  // k = 2 over 1, 2, 2, 2, 0: the 2nd largest is 2, tied three times: all three 2s stay.
  row = {1.0f, 2.0f, 2.0f, 2.0f, 0.0f};
  filter_top_k(row, 2);
  EXPECT_THAT(row, ElementsAre(-kInf, 2.0f, 2.0f, 2.0f, -kInf));
  // k = 3: the 3rd largest of 1, 3, 2, 3, 0 is 2.
  row = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
  filter_top_k(row, 3);
  EXPECT_THAT(row, ElementsAre(-kInf, 3.0f, 2.0f, 3.0f, -kInf));
  // k <= 0 or k >= size: off.
  for (int64_t k : {0, -1, 5, 9}) {
    row = {1.0f, 3.0f, 2.0f, 3.0f, 0.0f};
    filter_top_k(row, k);
    EXPECT_THAT(row, ElementsAre(1.0f, 3.0f, 2.0f, 3.0f, 0.0f)) << "k " << k;
  }
  // A NaN has no rank, so a row holding one has no k-th largest: it stays as it is.
  row = {1.0f, std::nanf(""), 2.0f, 3.0f, 0.0f};
  filter_top_k(row, 2);
  EXPECT_EQ(row[0], 1.0f);
  EXPECT_TRUE(std::isnan(row[1]));
  EXPECT_THAT(std::vector<float>(row.begin() + 2, row.end()), ElementsAre(2.0f, 3.0f, 0.0f));
}

TEST(TokenRules, TopPKeepsTheNucleusOfAWorkedFourTokenExample) {
  // Probabilities 0.5, 0.2, 0.25, 0.05. Sorted: id 0 (0.5), id 2 (0.25), id 1 (0.2), id 3 (0.05); the mass
  // before each: 0, 0.5, 0.75, 0.95. A token goes when the mass before it exceeds p.
  const std::vector<float> logits = logits_of({0.5, 0.2, 0.25, 0.05});
  auto kept = [&](double p) {
    std::vector<float> row = logits;
    filter_top_p(row, p);
    std::vector<int> out;
    for (size_t v = 0; v < row.size(); ++v) {
      if (row[v] != -kInf) {
        EXPECT_EQ(row[v], logits[v]) << "a kept logit is unchanged";
        out.push_back(static_cast<int>(v));
      }
    }
    return out;
  };
  EXPECT_THAT(kept(0.7), ElementsAre(0, 2));         // 0.75 and 0.95 exceed 0.7
  EXPECT_THAT(kept(0.8), ElementsAre(0, 1, 2));      // only 0.95 exceeds 0.8
  EXPECT_THAT(kept(0.4), ElementsAre(0));            // 0.5 already exceeds 0.4
  EXPECT_THAT(kept(0.01), ElementsAre(0));           // the most likely always stays
  EXPECT_THAT(kept(0.97), ElementsAre(0, 1, 2, 3));  // nothing exceeds 0.97
  EXPECT_THAT(kept(1.0), ElementsAre(0, 1, 2, 3));   // off
}

// The nucleus by its definition: every id sorted by logit (stable, so ties by the lower id), the mass before
// each summed in that order.
std::vector<float> nucleus_by_full_sort(std::vector<float> row, double p) {
  std::vector<double> probabilities;
  softmax(row, probabilities);
  std::vector<int32_t> order(row.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  double mass = 0.0;
  std::vector<float> out = row;
  for (size_t i = 0; i < order.size(); ++i) {
    if (i > 0 && mass > p) out[static_cast<size_t>(order[i])] = -kInf;
    mass += probabilities[static_cast<size_t>(order[i])];
  }
  return out;
}

// filter_top_p sorts only a prefix of the order, grown until its mass exceeds p: the same tokens go as by the
// definition, bit for bit, for peaked and flat rows of a large vocabulary (nuclei of a few tokens to tens of
// thousands), rows of many tied logits, rows already cut by top-k, rows whose finite logits are mostly of
// probability 0 in double, and rows with NaN or +inf (nothing goes).
TEST(TokenRules, TopPOnLargeRowsDropsWhatTheFullSortDrops) {
  std::mt19937 gen(2024);
  const auto row_of = [&](size_t size, float sigma, int ties) {
    std::normal_distribution<float> logit(0.0f, sigma);
    std::vector<float> row(size);
    for (float& v : row) v = ties > 0 ? static_cast<float>(static_cast<int>(logit(gen)) % ties) : logit(gen);
    return row;
  };
  std::vector<std::vector<float>> rows = {
      row_of(152064, 6.0f, 0), row_of(152064, 1.0f, 0), row_of(126464, 0.05f, 0), row_of(50000, 3.0f, 4),
      row_of(300, 2.0f, 0),    row_of(1, 1.0f, 0),      row_of(20000, 400.0f, 0)};
  std::vector<float> cut = row_of(152064, 2.0f, 0);
  filter_top_k(cut, 50);
  rows.push_back(cut);
  for (const std::vector<float>& row : rows) {
    for (double p : {0.0, 0.3, 0.9, 0.95, 0.999, 0.9999999}) {
      std::vector<float> got = row;
      filter_top_p(got, p);
      const std::vector<float> want = nucleus_by_full_sort(row, p);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
          << "row of " << row.size() << ", p " << p;
    }
  }
  // Two tokens of probability 1/2 and two of probability 0 in double: the mass before the zeros, 1, exceeds
  // 0.6, so they go, though no token of positive probability does.
  std::vector<float> zeros = {0.0f, 0.0f, -1000.0f, -1000.0f};
  filter_top_p(zeros, 0.6);
  EXPECT_THAT(zeros, ElementsAre(0.0f, 0.0f, -kInf, -kInf));
  for (float bad : {kNaN, kInf}) {
    std::vector<float> row = row_of(1000, 1.0f, 0);
    row[500] = bad;
    const std::vector<float> before = row;
    filter_top_p(row, 0.5);
    EXPECT_EQ(std::memcmp(row.data(), before.data(), row.size() * sizeof(float)), 0) << bad;
  }
  std::vector<float> empty;
  filter_top_p(empty, 0.5);
  EXPECT_TRUE(empty.empty());
}

TEST(TokenRules, MinPDropsTokensBelowAFractionOfTheLargestProbability) {
  // Probabilities 0.5, 0.2, 0.25, 0.05. min_p 0.45: floor 0.45 * 0.5 = 0.225 keeps 0.5 and 0.25;
  // min_p 0.3: floor 0.15 also keeps 0.2; min_p 0: off.
  const std::vector<float> logits = logits_of({0.5, 0.2, 0.25, 0.05});
  std::vector<float> row = logits;
  filter_min_p(row, 0.45);
  EXPECT_THAT(row, ElementsAre(logits[0], -kInf, logits[2], -kInf));
  row = logits;
  filter_min_p(row, 0.3);
  EXPECT_THAT(row, ElementsAre(logits[0], logits[1], logits[2], -kInf));
  row = logits;
  filter_min_p(row, 0.0);
  EXPECT_EQ(row, logits);
}

TEST(TokenRules, SoftmaxIsExactAndStable) {
  // exp(0) : exp(ln 3) : exp(ln 4) = 1 : 3 : 4, so 1/8, 3/8, 4/8.
  std::vector<double> p;
  softmax(std::vector<float>{0.0f, std::log(3.0f), std::log(4.0f)}, p);
  EXPECT_THAT(p, ElementsAre(testing::DoubleNear(0.125, 1e-7), testing::DoubleNear(0.375, 1e-7),
                             testing::DoubleNear(0.5, 1e-7)));
  // Large logits do not overflow; -inf gets probability 0.
  softmax(std::vector<float>{1000.0f, -kInf, 1000.0f}, p);
  EXPECT_THAT(p, ElementsAre(0.5, 0.0, 0.5));
}

TEST(TokenRules, ArgmaxTakesTheFirstMaximum) {
  EXPECT_EQ(argmax(std::vector<float>{1.0f, 3.0f, 3.0f, 2.0f}), 1);
  EXPECT_EQ(argmax(std::vector<float>{-kInf, 0.5f, -kInf, 0.5f}), 1);
  EXPECT_EQ(argmax(std::vector<float>{4.0f}), 0);
}

TEST(TokenRules, ConfidenceByRemaskingPolicy) {
  // p = 0.1, 0.7, 0.2 and the prediction is token 2:
  //   LowConfidence: p[2] = 0.2
  //   Margin: top-1 minus top-2 = 0.7 - 0.2 = 0.5 (whatever the token)
  //   Entropy (Dream): sum p ln(p + 1e-10) = 0.1 ln 0.1 + 0.7 ln 0.7 + 0.2 ln 0.2
  //                  = -0.2302585 - 0.2496725 - 0.3218876 = -0.8018186
  const std::vector<double> p = {0.1, 0.7, 0.2};
  EXPECT_DOUBLE_EQ(confidence(p, 2, Remasking::LowConfidence), 0.2);
  EXPECT_NEAR(confidence(p, 2, Remasking::Margin), 0.5, 1e-12);
  EXPECT_NEAR(confidence(p, 2, Remasking::Entropy), -0.8018186, 1e-6);
  // A tie at the top has margin 0.
  EXPECT_DOUBLE_EQ(confidence(std::vector<double>{0.4, 0.2, 0.4}, 0, Remasking::Margin), 0.0);
  // Dream's 1e-10 keeps p = 0 finite: 1 ln(1 + 1e-10) + 0 ln(1e-10) = 1e-10 (plain p ln p would be NaN).
  EXPECT_NEAR(confidence(std::vector<double>{1.0, 0.0}, 0, Remasking::Entropy), 1e-10, 1e-15);
  // Random and Origin draw their own.
  EXPECT_THROW(confidence(p, 0, Remasking::Random), Error);
  EXPECT_THROW(confidence(p, 0, Remasking::Origin), Error);
}

TEST(TokenRules, EntropyInNats) {
  // -(0.5 ln 0.5 + 0.5 ln 0.5) = ln 2; a certain prediction has entropy 0; -(sum above) = 0.8018186.
  EXPECT_NEAR(entropy(std::vector<double>{0.5, 0.5}), std::log(2.0), 1e-15);
  EXPECT_EQ(entropy(std::vector<double>{0.0, 1.0, 0.0}), 0.0);
  EXPECT_NEAR(entropy(std::vector<double>{0.1, 0.7, 0.2}), 0.8018186, 1e-6);
}

// ---------------------------------------------------------------------------------------------------------
// selection

std::vector<CandidateScore> by_confidence(const std::vector<double>& confidences) {
  std::vector<CandidateScore> out;
  for (double c : confidences) out.push_back({c, 0.0});
  return out;
}

std::vector<int64_t> commits(CommitRule rule, const std::vector<double>& confidences, int64_t count = 0,
                             double threshold = 0.9, double factor = 1.0) {
  return select_commits(by_confidence(confidences), CommitParams{rule, count, threshold, factor, 0.1});
}

TEST(Selection, TopKIndicesTieToTheLowerIndexAndRankNanLast) {
  const std::vector<double> values = {0.2, 0.9, NAN, 0.9, 0.5, -1.0};
  EXPECT_THAT(top_k_indices(values, 3), ElementsAre(1, 3, 4));
  EXPECT_THAT(top_k_indices(values, 6), ElementsAre(1, 3, 4, 0, 5, 2));
  EXPECT_THAT(top_k_indices(values, 0), ElementsAre());
  EXPECT_THROW(top_k_indices(values, 7), Error);
}

TEST(Selection, ScheduleCommitsTheCountHighestCappedAtTheCandidates) {
  const std::vector<double> c = {0.3, 0.8, 0.5, 0.8};
  EXPECT_THAT(commits(CommitRule::Schedule, c, 2), ElementsAre(1, 3));
  EXPECT_THAT(commits(CommitRule::Schedule, c, 10), ElementsAre(1, 3, 2, 0));
  EXPECT_THAT(commits(CommitRule::Schedule, c, 0), ElementsAre());
  EXPECT_THAT(commits(CommitRule::Schedule, {}, 3), ElementsAre());
}

TEST(Selection, ThresholdCommitsTheBestAndEveryOtherAtOrAboveTau) {
  // tau 0.6: the best (0.8) plus 0.7; 0.5 and 0.3 stay.
  EXPECT_THAT(commits(CommitRule::Threshold, {0.3, 0.8, 0.5, 0.7}, 0, 0.6), ElementsAre(1, 3));
  // Nothing reaches 0.9: the best alone.
  EXPECT_THAT(commits(CommitRule::Threshold, {0.3, 0.5}, 0, 0.9), ElementsAre(1));
  // Equal to tau counts.
  EXPECT_THAT(commits(CommitRule::Threshold, {0.6, 0.9, 0.59}, 0, 0.6), ElementsAre(1, 0));
  EXPECT_THAT(commits(CommitRule::Threshold, {}, 0, 0.6), ElementsAre());
}

TEST(Selection, FactorFollowsFastDllmIncludingItsLastRankQuirk) {
  // factor 1: 0-based rank i >= 1 needs 1 - 1/(i + 2): rank 1 0.6667, rank 2 0.75, rank 3 0.8; rank 0 -1.
  // 0.9, 0.7, 0.5, 0.4, 0.3: rank 1 passes (0.7 >= 0.6667), rank 2 fails (0.5 < 0.75): m = 2 -> 2.
  EXPECT_THAT(commits(CommitRule::Factor, {0.9, 0.7, 0.5, 0.4, 0.3}), ElementsAre(0, 1));
  // 0.9, 0.6, 0.2, 0.1: rank 1 fails (0.6 < 0.6667): m = 1 -> 1.
  EXPECT_THAT(commits(CommitRule::Factor, {0.9, 0.6, 0.2, 0.1}), ElementsAre(0));
  // The quirk: 0.9, 0.8, 0.1 first fails at rank 2 = n - 1, so m = 2 + 1 = 3 takes every candidate, 0.1 too.
  EXPECT_THAT(commits(CommitRule::Factor, {0.1, 0.9, 0.8}), ElementsAre(1, 2, 0));
  // Two candidates 0.9, 0.1: the failure at rank 1 is at the last rank: both.
  EXPECT_THAT(commits(CommitRule::Factor, {0.9, 0.1}), ElementsAre(0, 1));
  // Nothing fails: Fast-dLLM's loop ends at rank n - 1, then +1: all.
  EXPECT_THAT(commits(CommitRule::Factor, {0.95, 0.99, 0.9}), ElementsAre(1, 0, 2));
  // One candidate: m = 0 -> 1.
  EXPECT_THAT(commits(CommitRule::Factor, {0.01}), ElementsAre(0));
  // factor 2: rank 1 needs 1 - 2/3 = 0.3333, rank 2 needs 0.5. Sorted 0.9 (0), 0.45 (2), 0.4 (1), 0.3, 0.2:
  // rank 1 passes, rank 2 fails (0.4 < 0.5): m = 2 -> ids 0 and 2.
  EXPECT_THAT(commits(CommitRule::Factor, {0.9, 0.4, 0.45, 0.3, 0.2}, 0, 0.9, 2.0), ElementsAre(0, 2));
  // The same confidences with factor 1 fail at rank 1 (0.45 < 0.6667): 1.
  EXPECT_THAT(commits(CommitRule::Factor, {0.9, 0.4, 0.45, 0.3, 0.2}, 0, 0.9, 1.0), ElementsAre(0));
}

TEST(Selection, DynamicTakesEveryPositionAboveTauWhenThereAreAtLeastTheScheduledCount) {
  // tau 0.6, count 2: three above (0.9, 0.7, 0.65) >= 2: all three.
  EXPECT_THAT(commits(CommitRule::Dynamic, {0.7, 0.9, 0.65, 0.2}, 2, 0.6), ElementsAre(1, 0, 2));
  // One above (0.7) < 2: the two highest.
  EXPECT_THAT(commits(CommitRule::Dynamic, {0.7, 0.3, 0.2}, 2, 0.6), ElementsAre(0, 1));
  // Strictly above: 0.6 is not > 0.6, so none above and the count (1) decides.
  EXPECT_THAT(commits(CommitRule::Dynamic, {0.6, 0.6, 0.1}, 1, 0.6), ElementsAre(0));
  // The count is capped at the candidates: 5 of 3.
  EXPECT_THAT(commits(CommitRule::Dynamic, {0.7, 0.3, 0.2}, 5, 0.6), ElementsAre(0, 1, 2));
}

TEST(Selection, EntropyBoundTakesTheLowestEntropiesWhoseRunningSumStaysBelowTheBound) {
  // Entropies 0.5, 0.2, 0.6, 0.1 (confidences ranked the other way, to show they are not used). Ascending:
  // 0.1 (3), 0.2 (1), 0.5 (0), 0.6 (2); running sums 0.1, 0.3, 0.8, 1.4. Bound 1.0: three sums below.
  const std::vector<CandidateScore> c = {{0.9, 0.5}, {0.1, 0.2}, {0.8, 0.6}, {0.2, 0.1}};
  auto bounded = [&](const std::vector<CandidateScore>& candidates, double bound) {
    return select_commits(candidates, CommitParams{CommitRule::EntropyBound, 0, 0.9, 1.0, bound});
  };
  EXPECT_THAT(bounded(c, 1.0), ElementsAre(3, 1, 0));
  EXPECT_THAT(bounded(c, 0.8), ElementsAre(3, 1));  // 0.8 is not below 0.8
  // None below: at least one.
  EXPECT_THAT(bounded(c, 0.05), ElementsAre(3));
  // Ties: the lower position first. 0.3, 0.3 with bound 0.5: 0.3 < 0.5, 0.6 is not.
  EXPECT_THAT(bounded({{0.0, 0.3}, {0.0, 0.3}}, 0.5), ElementsAre(0));
  EXPECT_THAT(bounded({}, 0.5), ElementsAre());
}

// ---------------------------------------------------------------------------------------------------------
// schedule

TEST(Schedule, NumTransferTokensGivesTheRemainderToTheFirstSteps) {
  // base = masked / steps, the first masked % steps steps get one more.
  EXPECT_THAT(num_transfer_tokens(10, 4), ElementsAre(3, 3, 2, 2));  // 10 = 4 * 2 + 2
  EXPECT_THAT(num_transfer_tokens(7, 3), ElementsAre(3, 2, 2));      // 7 = 3 * 2 + 1
  EXPECT_THAT(num_transfer_tokens(3, 5), ElementsAre(1, 1, 1, 0, 0));
  EXPECT_THAT(num_transfer_tokens(8, 1), ElementsAre(8));
  EXPECT_THAT(num_transfer_tokens(0, 2), ElementsAre(0, 0));
  EXPECT_THROW(num_transfer_tokens(4, 0), Error);
}

TEST(Schedule, DreamTimestepsAreTorchLinspaceInFloat32) {
  // torch.linspace(1, 1e-3, 9), float32. end = float(1e-3) = 0.0010000000474974513; step = (end - 1) / 8 =
  // -0.12487500160932541; halfway = 9 / 2 = 4. Values 0..3 are fma(step, i, 1), values 4..8 are
  // fma(-step, 8 - i, end), each rounded once to float (torch's kernels compile to fused multiply-adds):
  //   fma(step, 1, 1) = 0.87512499094009399   fma(-step, 4, end) = 0.50050002336502075
  //   fma(step, 2, 1) = 0.75024998188018799   fma(-step, 3, end) = 0.37562501430511475
  //   fma(step, 3, 1) = 0.62537497282028198   fma(-step, 2, end) = 0.25075000524520874
  //                                           fma(-step, 1, end) = 0.12587499618530273
  // Unfused, 1 + 3 step rounds twice to 0.6253750324249268 and end - 3 step to 0.37562498450279236.
  EXPECT_THAT(dream_timesteps(8, 1e-3),
              ElementsAre(1.0f, 0.87512499094009399f, 0.75024998188018799f, 0.62537497282028198f,
                          0.50050002336502075f, 0.37562501430511475f, 0.25075000524520874f,
                          0.12587499618530273f, 0.0010000000474974513f));
  EXPECT_THROW(dream_timesteps(0, 1e-3), Error);
}

TEST(Schedule, DreamTransferCountTruncatesMaskedTimesOneMinusSOverTAndTakesAllAtTheLastStep) {
  const std::vector<float> t = dream_timesteps(8, 1e-3);
  // Step 0: 1 - t1/t0 = 1 - 0.87512499 = 0.12487501; 16 * 0.12487501 = 1.998 -> 1 (not rounded to 2).
  EXPECT_EQ(dream_transfer_count(16, t, 0), 1);
  // Step 4: t5/t4 = 0.37562498 / 0.50050002 = 0.75049943, 1 - it = 0.24950057; 16 * it = 3.992 -> 3;
  // 9 * it = 2.2455 -> 2.
  EXPECT_EQ(dream_transfer_count(16, t, 4), 3);
  EXPECT_EQ(dream_transfer_count(9, t, 4), 2);
  // Step 6: t7/t6 = 0.12587500 / 0.25075001 = 0.50199401, 1 - it = 0.49800599; 5 * it = 2.49 -> 2.
  EXPECT_EQ(dream_transfer_count(5, t, 6), 2);
  // Step 7 is the last: every masked position (1 - t8/t7 = 0.99205559 would give 16 * it = 15.87 -> 15).
  EXPECT_EQ(dream_transfer_count(16, t, 7), 16);
  EXPECT_EQ(dream_transfer_count(3, t, 7), 3);
  EXPECT_FLOAT_EQ(dream_reveal_probability(t, 0), 0.124875009059906f);
  EXPECT_EQ(dream_reveal_probability(t, 7), 1.0f);
}

// ---------------------------------------------------------------------------------------------------------
// the stochastic paths, statistically

constexpr int64_t kDraws = 20000;

// How often each token comes out of `draw(i)` for i in [0, kDraws).
template <class Draw>
std::vector<double> frequencies(int64_t vocab, Draw draw) {
  std::vector<double> counts(static_cast<size_t>(vocab), 0.0);
  for (int64_t i = 0; i < kDraws; ++i) counts.at(static_cast<size_t>(draw(i))) += 1.0;
  for (double& c : counts) c /= static_cast<double>(kDraws);
  return counts;
}

void expect_frequencies(const std::vector<double>& got, const std::vector<double>& want,
                        const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t v = 0; v < want.size(); ++v) {
    // Five standard deviations of a binomial proportion over kDraws: at most 5 * 0.5 / sqrt(20000) = 0.0177.
    EXPECT_NEAR(got[v], want[v], five_sigma(want[v], kDraws) + 1e-12) << what << ", token " << v;
  }
}

TEST(Stochastic, GumbelArgmaxSamplesSoftmaxOfLogitsOverTemperature) {
  // Logits 0, ln 2, ln 5. T = 1: softmax = 1/8, 2/8, 5/8. T = 0.5: l / T = 0, 2 ln 2, 2 ln 5, so
  // softmax = 1 : 4 : 25 = 1/30, 4/30, 25/30.
  const std::vector<float> row = {0.0f, std::log(2.0f), std::log(5.0f)};
  const RngStream rng{1234};
  expect_frequencies(frequencies(3, [&](int64_t i) { return gumbel_argmax(row, 1.0, rng, i, 0); }),
                     {1.0 / 8, 2.0 / 8, 5.0 / 8}, "T = 1");
  expect_frequencies(frequencies(3, [&](int64_t i) { return gumbel_argmax(row, 0.5, rng, i, 0); }),
                     {1.0 / 30, 4.0 / 30, 25.0 / 30}, "T = 0.5");
  // The address (step, base + v) decides the draw: the same address gives the same token.
  for (int64_t i = 0; i < 50; ++i)
    EXPECT_EQ(gumbel_argmax(row, 1.0, rng, i, 7), gumbel_argmax(row, 1.0, rng, i, 7));
}

TEST(Stochastic, SampleCategoricalFollowsTheProbabilities) {
  const std::vector<double> p = {0.2, 0.5, 0.3};
  // Inverse CDF by hand: [0, 0.2) -> 0, [0.2, 0.7) -> 1, [0.7, 1) -> 2.
  EXPECT_EQ(sample_categorical(p, 0.1), 0);
  EXPECT_EQ(sample_categorical(p, 0.2), 1);
  EXPECT_EQ(sample_categorical(p, 0.69), 1);
  EXPECT_EQ(sample_categorical(p, 0.71), 2);
  // Zero-probability ids are never returned, even for u beyond the rounded total mass.
  EXPECT_EQ(sample_categorical(std::vector<double>{0.0, 0.5, 0.0, 0.5, 0.0}, 1e-300), 1);
  EXPECT_EQ(sample_categorical(std::vector<double>{0.3, 0.3, 0.0}, 0.9), 1);
  // An id never drawn that holds nearly all the mass: u spans the other ids' 1e-13, of which id 0 holds
  // 0.3e-13, so u = 0.3002 lands on id 2. 1 - p[1] (9.992e-14 in doubles) would have scaled u into id 0.
  EXPECT_EQ(sample_categorical(std::vector<double>{0.3e-13, 1.0 - 1e-13, 0.7e-13}, 0.3002, 1), 2);
  EXPECT_EQ(sample_categorical(std::vector<double>{0.3e-13, 1.0 - 1e-13, 0.7e-13}, 0.2998, 1), 0);
  const RngStream rng{99};
  expect_frequencies(
      frequencies(3, [&](int64_t i) { return sample_categorical(p, rng.uniform_double_open(5, i)); }), p,
      "categorical");
}

TEST(Stochastic, SuppressedAndFilteredIdsAreNeverDrawn) {
  // Six ids with logits 2, 1.9, 1.8, 1.7, 0.5, 0; 5000 categorical and 5000 Gumbel draws from each filtered
  // row. Each filter's kept set is worked out below; every kept id is likely enough (>= 0.035) to show up.
  const std::vector<float> logits = {2.0f, 1.9f, 1.8f, 1.7f, 0.5f, 0.0f};
  const RngStream rng{7};
  auto drawn = [&](const std::vector<float>& row) {
    std::vector<double> p;
    softmax(row, p);
    std::vector<bool> seen(row.size(), false);
    for (int64_t i = 0; i < 5000; ++i) {
      seen[static_cast<size_t>(sample_categorical(p, rng.uniform_double_open(1, i)))] = true;
      seen[static_cast<size_t>(gumbel_argmax(row, 1.0, rng, i, 0))] = true;
    }
    return seen;
  };
  std::vector<float> row = logits;
  suppress(row, 0);  // id 0 would otherwise be the most likely
  EXPECT_THAT(drawn(row), ElementsAre(false, true, true, true, true, true));
  row = logits;
  filter_top_k(row, 3);  // ids 0, 1, 2
  EXPECT_THAT(drawn(row), ElementsAre(true, true, true, false, false, false));
  // Softmax of the logits: exp(2, 1.9, 1.8, 1.7, 0.5, 0) = 7.389, 6.686, 6.050, 5.474, 1.649, 1.000;
  // sum 28.248: 0.2616, 0.2367, 0.2142, 0.1938, 0.0584, 0.0354. top_p 0.6: masses before 0, 0.2616,
  // 0.4983, 0.7125, ...: ids 0, 1, 2 stay.
  row = logits;
  filter_top_p(row, 0.6);
  EXPECT_THAT(drawn(row), ElementsAre(true, true, true, false, false, false));
  // min_p 0.5: floor 0.1308 keeps ids 0..3.
  row = logits;
  filter_min_p(row, 0.5);
  EXPECT_THAT(drawn(row), ElementsAre(true, true, true, true, false, false));
}

DecodeContext test_context() {
  DecodeContext context;
  context.mask_id = 5;
  context.stop_ids = {4};
  return context;
}

TEST(Stochastic, DreamPredictorDrawsFromSoftmaxOfLogitsOverTemperature) {
  // Logits 0, ln 2, ln 5 at T = 0.5: 1/30, 4/30, 25/30 (as above). Each step is a new draw.
  SamplingConfig config;
  config.method = Method::Dream;
  config.temperature = 0.5;
  const DecodeContext context = test_context();
  Predictor predictor(config, context, Method::Dream);
  const RngStream rng{2024};
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(5.0f)};
  expect_frequencies(frequencies(3,
                                 [&](int64_t i) {
                                   std::vector<float> row = logits;
                                   return predictor.predict(row, rng, static_cast<uint64_t>(i), 3).token;
                                 }),
                     {1.0 / 30, 4.0 / 30, 25.0 / 30}, "dream T = 0.5");
}

TEST(Stochastic, LladaPredictorSamplesWithGumbelAndNeverOutsideTopK) {
  // LLaDA at T = 1 with top_k 2 over logits 0, ln 2, ln 5: ids 1 and 2 with 2/7 and 5/7, never id 0.
  SamplingConfig config;
  config.method = Method::Llada;
  config.temperature = 1.0;
  config.top_k = 2;
  const DecodeContext context = test_context();
  Predictor predictor(config, context, Method::Llada);
  const RngStream rng{31};
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(5.0f)};
  expect_frequencies(frequencies(3,
                                 [&](int64_t i) {
                                   std::vector<float> row = logits;
                                   return predictor.predict(row, rng, static_cast<uint64_t>(i), 0).token;
                                 }),
                     {0.0, 2.0 / 7, 5.0 / 7}, "llada T = 1, top_k 2");
}

TEST(Prediction, DreamFiltersTopPBeforeTopKAndBlockDiffusionTopKBeforeTopP) {
  // Probabilities 0.4, 0.3, 0.2, 0.1 with top_k 2 and top_p 0.5, greedy.
  // Dream (top_p first): masses before 0, 0.4, 0.7, 0.9 keep ids 0, 1; top_k 2 keeps them: p = 4/7, 3/7,
  //   entropy -(4/7 ln 4/7 + 3/7 ln 3/7) = 0.6829.
  // SDAR (top_k first): ids 0, 1 renormalized to 4/7, 3/7; the mass before id 1 is 4/7 > 0.5: id 0 alone,
  //   entropy 0.
  SamplingConfig config;
  config.top_k = 2;
  config.top_p = 0.5;
  const DecodeContext context = test_context();
  const std::vector<float> logits = logits_of({0.4, 0.3, 0.2, 0.1});
  Predictor dream(config, context, Method::Dream), sdar(config, context, Method::BlockDiffusion);
  std::vector<float> row = logits;
  const Prediction d = dream.predict(row, RngStream{1}, 0, 0);
  row = logits;
  const Prediction s = sdar.predict(row, RngStream{1}, 0, 0);
  EXPECT_EQ(d.token, 0);
  EXPECT_EQ(s.token, 0);
  EXPECT_NEAR(d.score.entropy, -(4.0 / 7 * std::log(4.0 / 7) + 3.0 / 7 * std::log(3.0 / 7)), 1e-6);
  EXPECT_NEAR(d.score.confidence, 4.0 / 7, 1e-6);
  EXPECT_EQ(s.score.entropy, 0.0);
  EXPECT_NEAR(s.score.confidence, 1.0, 1e-12);
}

TEST(Prediction, DeviceRulesAskForEntropiesOnlyWhereASettingReadsThem) {
  const DecodeContext context = test_context();
  const auto wants = [&](Method method, Remasking remasking, CommitRule commit) {
    SamplingConfig config;
    config.remasking = remasking;
    config.commit = commit;
    const Predictor predictor(config, context, method);
    const std::optional<TokenRule> rule = predictor.rule(RngStream{1}, 0, 0);
    EXPECT_TRUE(rule.has_value());
    return rule && rule->entropies;
  };
  for (const Method method : {Method::Llada, Method::Dream, Method::BlockDiffusion, Method::Autoregressive}) {
    EXPECT_FALSE(wants(method, Remasking::LowConfidence, CommitRule::Schedule));
    EXPECT_FALSE(wants(method, Remasking::Margin, CommitRule::Threshold));
    EXPECT_TRUE(wants(method, Remasking::Entropy, CommitRule::Schedule));
    EXPECT_TRUE(wants(method, Remasking::LowConfidence, CommitRule::EntropyBound));
  }
}

TEST(Stochastic, RandomRemaskingConfidencesAreUniform) {
  // U(0, 1): mean 1/2 with sd sqrt(1/12 / N) = 0.00204 over N = 20000 (5 sd: 0.0102); variance 1/12 with
  // sd sqrt((E(U - 1/2)^4 - 1/144) / N) = sqrt((1/80 - 1/144) / N) = sqrt(1/180 / N) = 0.000527 (5 sd:
  // 0.00264).
  SamplingConfig config;
  config.method = Method::Llada;
  config.remasking = Remasking::Random;
  const DecodeContext context = test_context();
  Predictor predictor(config, context, Method::Llada);
  const RngStream rng{555};
  double sum = 0.0, squares = 0.0;
  for (int64_t i = 0; i < kDraws; ++i) {
    std::vector<float> row = {0.0f, 1.0f, 2.0f};
    const double c = predictor.predict(row, rng, static_cast<uint64_t>(i / 10), i % 10).score.confidence;
    ASSERT_GE(c, 0.0);
    ASSERT_LT(c, 1.0);
    sum += c;
    squares += (c - 0.5) * (c - 0.5);
  }
  EXPECT_NEAR(sum / kDraws, 0.5, 0.0102);
  EXPECT_NEAR(squares / kDraws, 1.0 / 12, 0.00264);
}

// A backbone the test never runs: it drives a task's plan/consume by hand.
class NoForwardBackbone final : public Backbone {
 public:
  int64_t vocab_size() const override { return 8; }
  int64_t max_positions() const override { return 1024; }
  std::unique_ptr<SequenceCache> new_cache(int64_t) override { return nullptr; }
  ForwardResult forward(const ForwardBatch&) override {
    ADD_FAILURE() << "no forward expected";
    return {};
  }
  BackboneSummary summary() const override { return {}; }
};

TEST(Stochastic, DreamOriginRevealsEachMaskedPositionWithProbabilityOneMinusSOverT) {
  // 400 requests of 32 masked positions over 4 steps; every step each request's task is planned and fed
  // logits that predict token 1 everywhere. ts = linspace(1, 1e-3, 5): 1, 0.75025, 0.5005, 0.25075, 0.001;
  // reveal probabilities 1 - s/t = 0.24975, 0.33289, 0.49900, then 1 at the last step. The fraction revealed
  // at step i of the positions still masked must be within 5 binomial sd (step 0: n = 12800, 5 sd = 0.019).
  constexpr int64_t kRequests = 400, kGen = 32, kSteps = 4, kVocab = 8;
  SamplingConfig config;
  config.method = Method::Dream;
  config.remasking = Remasking::Origin;
  config.gen_length = kGen;
  config.steps = kSteps;
  DecodeContext context;
  context.mask_id = 0;
  NoForwardBackbone backbone;
  std::vector<std::unique_ptr<MaskedDiffusionTask>> tasks;
  for (int64_t r = 0; r < kRequests; ++r) {
    tasks.push_back(std::make_unique<MaskedDiffusionTask>(
        backbone, config, context, Method::Dream, GenerationRequest{{2, 3}, static_cast<uint64_t>(r)}));
  }
  const std::vector<float> ts = dream_timesteps(kSteps, 1e-3);
  std::vector<float> logits;
  for (int64_t step = 0; step < kSteps; ++step) {
    int64_t masked = 0, revealed = 0;
    for (auto& task : tasks) {
      if (task->finished()) continue;
      ForwardBatch batch;
      task->plan(batch);
      const int64_t rows = static_cast<int64_t>(batch.logit_rows.size());
      logits.assign(static_cast<size_t>(rows * kVocab), 0.0f);
      for (int64_t i = 0; i < rows; ++i) logits[static_cast<size_t>(i * kVocab + 1)] = 3.0f;
      StepRows step_rows;
      step_rows.logits = LogitRows{logits.data(), rows, kVocab};
      task->consume(step_rows);
      int64_t left = 0;
      if (!task->finished()) {
        ForwardBatch next;
        task->plan(next);
        left = static_cast<int64_t>(next.logit_rows.size());
      }
      masked += rows;
      revealed += rows - left;
    }
    const double p = step == kSteps - 1 ? 1.0 : 1.0 - static_cast<double>(ts[step + 1]) / ts[step];
    ASSERT_GT(masked, 0);
    EXPECT_NEAR(static_cast<double>(revealed) / masked, p, five_sigma(p, masked) + 1e-12)
        << "step " << step << " of " << masked << " masked";
  }
  for (auto& task : tasks) {
    ASSERT_TRUE(task->finished());
    EXPECT_THAT(task->output().tokens, ::testing::Each(1));
  }
}

// A model that ranks the mask id first everywhere must still fill its canvas: the draws skip the mask id
// (committing it would leave the position masked, and a step that fills nothing repeats itself forever).
TEST(NeverDrawn, MaskedDiffusionFinishesWhenTheMaskIdIsEveryArgmax) {
  constexpr int64_t kVocab = 8;
  constexpr int32_t kMask = 0;
  NoForwardBackbone backbone;
  DecodeContext context;
  context.mask_id = kMask;
  for (const auto& [method, commit, temperature] : {std::tuple{Method::Llada, CommitRule::Schedule, 0.0},
                                                    std::tuple{Method::Llada, CommitRule::Threshold, 0.8},
                                                    std::tuple{Method::Dream, CommitRule::Threshold, 0.0},
                                                    std::tuple{Method::Dream, CommitRule::Schedule, 0.9}}) {
    SamplingConfig config;
    config.gen_length = 8;
    config.steps = 4;
    config.block_length = 8;
    config.commit = commit;
    config.temperature = temperature;
    MaskedDiffusionTask task(backbone, config, context, method, GenerationRequest{{2, 3}, 5});
    std::vector<float> logits;
    for (int step = 0; step < 16 && !task.finished(); ++step) {
      ForwardBatch batch;
      task.plan(batch);
      const int64_t rows = static_cast<int64_t>(batch.logit_rows.size());
      logits.assign(static_cast<size_t>(rows * kVocab), 0.0f);
      for (int64_t i = 0; i < rows; ++i) {
        logits[static_cast<size_t>(i * kVocab + kMask)] = 9.0f;
        logits[static_cast<size_t>(i * kVocab + 1 + i % 7)] = 2.0f;
      }
      StepRows step_rows;
      step_rows.logits = LogitRows{logits.data(), rows, kVocab};
      task.consume(step_rows);
    }
    ASSERT_TRUE(task.finished()) << "method " << static_cast<int>(method) << " commit "
                                 << static_cast<int>(commit);
    EXPECT_THAT(task.output().tokens, ::testing::Each(::testing::Ne(kMask)));
  }
}

TEST(NeverDrawn, DrawsSkipTheIdAndRenormalizeTheRest) {
  EXPECT_EQ(argmax(std::vector<float>{5.0f, 1.0f, 3.0f}, 0), 2);
  EXPECT_EQ(argmax(std::vector<float>{5.0f, 3.0f, 3.0f}, 0), 1);
  const std::vector<double> p{0.5, 0.25, 0.25};
  // Without id 0 the others have mass 0.5: u = 0.4 lands at 0.2 (id 1), u = 0.6 at 0.3 (id 2).
  EXPECT_EQ(sample_categorical(p, 0.4, 0), 1);
  EXPECT_EQ(sample_categorical(p, 0.6, 0), 2);
  EXPECT_EQ(sample_categorical(p, 0.4), 0);
  const std::vector<float> row{30.0f, 0.0f, 0.0f};
  for (uint64_t step = 0; step < 50; ++step) {
    EXPECT_NE(gumbel_argmax(row, 1.0, RngStream{3}, step, 0, 0), 0);
  }
}

}  // namespace
}  // namespace dlm
