// predict_tokens on the CUDA backend against the samplers' host code, its reference: for every method's
// rule (LLaDA's Gumbel draw and EOS suppressions, Dream's and block diffusion's categorical draw after the
// temperature, greedy, classifier-free guidance, the mask id never drawn) and every remasking score, the
// kernel's token must be the host's and its scores must agree to float64 rounding of sums taken in another
// order (1e-10), on rows with ties, -inf, +inf and NaN, at vocabulary sizes from 1 to LLaDA's 126,464.
// Without a device every test skips.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "engine/ops/vocab.h"
#include "samplers/prediction.h"
#include "tests/gpu/shared_gpu.h"
#include "tests/parity/token_rule_reference.h"

namespace dlm {
namespace {

using gpu_test::gpu;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int32_t kEos = 2;
constexpr int32_t kEot = 5;
constexpr int32_t kMask = 11;  // never drawn, where the vocabulary has it

// Rows of every kind the kernel must treat as the host does.
std::vector<float> make_rows(int64_t rows, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> x(static_cast<size_t>(rows * vocab));
  for (float& v : x) v = normal(rng);
  const auto at = [&](int64_t r, int64_t v) -> float& { return x[static_cast<size_t>(r * vocab + v)]; };
  for (int64_t r = 0; r < rows; ++r) {
    switch (r % 9) {
      case 1:  // a repeated maximum: the first wins, the margin is 0
        at(r, vocab / 3) = at(r, vocab - 1) = 40.0f;
        break;
      case 2:  // the suppressed ids are the likeliest
        if (vocab > kEot) at(r, kEos) = at(r, kEot) = 30.0f;
        break;
      case 3:  // ids ruled out
        for (int64_t v = 0; v < vocab; v += 3) at(r, v) = -kInf;
        break;
      case 4:  // all equal
        for (int64_t v = 0; v < vocab; ++v) at(r, v) = 0.25f;
        break;
      case 5:
        at(r, vocab / 2) = kInf;
        break;
      case 6:
        at(r, vocab - 1) = std::numeric_limits<float>::quiet_NaN();
        break;
      case 7:  // the mask id is the likeliest
        if (vocab > kMask) at(r, kMask) = 50.0f;
        break;
      case 8:  // far below zero: exp underflows, so every Gumbel score is 0 and the first drawable id wins
        for (int64_t v = 0; v < vocab; ++v) at(r, v) -= 800.0f;
        break;
      default:
        break;
    }
  }
  return x;
}

bool same_number(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  // Sums over 126,464 terms in two orders: the host's sequential sum alone drifts by up to ~n ulp (1.4e-11).
  return std::abs(a - b) <= 1e-10 * std::max(1.0, std::abs(b));
}

struct Setting {
  const char* name;
  Method method;
  double temperature;
  Remasking remasking;
  bool suppress = false;  // LLaDA's EOS flags
  double cfg = 0.0;       // guidance, LLaDA only
  int64_t top_k = 0;
  double top_p = 1.0;
  CommitRule commit = CommitRule::Schedule;
};

const Setting kSettings[] = {
    {"llada_greedy", Method::Llada, 0.0, Remasking::LowConfidence},
    {"llada_greedy_margin_suppressed", Method::Llada, 0.0, Remasking::Margin, true},
    {"llada_gumbel", Method::Llada, 0.8, Remasking::LowConfidence},
    {"llada_gumbel_suppressed", Method::Llada, 0.5, Remasking::Entropy, true},
    {"llada_guided", Method::Llada, 0.7, Remasking::LowConfidence, false, 1.5},
    {"dream_greedy_entropy", Method::Dream, 0.0, Remasking::Entropy},
    {"dream_categorical", Method::Dream, 0.6, Remasking::Margin},
    {"block_categorical", Method::BlockDiffusion, 1.3, Remasking::LowConfidence},
    {"llada_gumbel_filtered", Method::Llada, 0.8, Remasking::LowConfidence, true, 0.0, 50, 0.95},
    {"dream_greedy_top_p", Method::Dream, 0.0, Remasking::Entropy, false, 0.0, 0, 0.37},
    {"dream_categorical_filtered", Method::Dream, 0.6, Remasking::Margin, false, 0.0, 40, 0.9},
    {"block_categorical_filtered", Method::BlockDiffusion, 1.1, Remasking::LowConfidence, false, 0.0, 7, 0.8},
    {"llada_greedy_entropy_bound", Method::Llada, 0.0, Remasking::LowConfidence, false, 0.0, 0, 1.0,
     CommitRule::EntropyBound},
};

class CudaTokenPrediction : public ::testing::TestWithParam<Setting> {};

void PrintTo(const Setting& s, std::ostream* os) {
  *os << s.name;
}

TEST_P(CudaTokenPrediction, MatchesTheHostPrediction) {
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  const Setting& setting = GetParam();
  SamplingConfig config;
  config.temperature = setting.temperature;
  config.remasking = setting.remasking;
  config.suppress_eos = config.suppress_eos_confidence = setting.suppress;
  config.cfg_scale = setting.cfg;
  config.top_k = setting.top_k;
  config.top_p = setting.top_p;
  config.commit = setting.commit;
  const RngStream rng{77};
  const uint64_t step = 9;

  for (const int64_t vocab : {int64_t{1}, int64_t{37}, int64_t{4099}, int64_t{126464}}) {
    DecodeContext context;
    context.stop_ids = {kEos, kEot};
    context.mask_id = vocab > kMask ? kMask : -1;
    Predictor predictor(config, context, setting.method);
    const int64_t candidates = vocab > 100000 ? 8 : 40;
    const bool guided = setting.cfg > 0.0;
    const int64_t rows = guided ? 2 * candidates : candidates;
    const std::vector<float> host = make_rows(rows, vocab, static_cast<uint32_t>(vocab));
    std::vector<TokenRule> rules;
    for (int64_t i = 0; i < candidates; ++i) {
      const std::optional<TokenRule> rule = predictor.rule(rng, step, 100 + 3 * i);
      ASSERT_TRUE(rule.has_value());
      rules.push_back(*rule);
      if (guided) {
        rules.back().guidance_row = static_cast<int32_t>(candidates + i);
        rules.back().guidance_scale = static_cast<float>(setting.cfg + 1.0);
      }
    }
    rules.resize(static_cast<size_t>(rows));  // the unconditional rows' own rules: plain argmax
    const bool suppressions_fit = vocab > kEot || !setting.suppress;
    if (!suppressions_fit) {
      for (TokenRule& r : rules) {  // ids the vocabulary lacks cannot be suppressed
        r.suppress_before_draw = -1;
        for (int32_t& id : r.suppress_before_scores) id = -1;
      }
    }
    Buffer device = gpu().allocate(host.size() * sizeof(float));
    const Tensor logits = device.view(DType::F32, Shape{rows, vocab});
    gpu().copy(HostTensor::from(Shape{rows, vocab}, host).tensor(), logits);
    std::vector<TokenPrediction> got(static_cast<size_t>(rows));
    ops::predict_tokens(gpu(), logits, rules, {}, got);

    for (int64_t i = 0; i < candidates; ++i) {
      if (!suppressions_fit) break;  // the host cannot suppress ids outside the row
      std::vector<float> row(host.begin() + i * vocab, host.begin() + (i + 1) * vocab);
      if (guided) {
        const float scale = static_cast<float>(setting.cfg + 1.0);
        for (int64_t v = 0; v < vocab; ++v) {
          const float u = host[static_cast<size_t>((candidates + i) * vocab + v)];
          row[static_cast<size_t>(v)] = u + scale * (row[static_cast<size_t>(v)] - u);
        }
      }
      const int64_t position = 100 + 3 * i;
      const Prediction want = predictor.predict(row, rng, step, position);
      const Prediction from_gpu = predictor.from_device(got[static_cast<size_t>(i)], rng, step, position);
      const std::string where = "vocab " + std::to_string(vocab) + " row " + std::to_string(i);
      EXPECT_EQ(from_gpu.token, want.token) << where;
      EXPECT_TRUE(same_number(from_gpu.score.confidence, want.score.confidence))
          << where << ": confidence " << from_gpu.score.confidence << " vs " << want.score.confidence;
      // Entropies only where the setting reads them (rule.entropies); else the device leaves them 0.
      const double want_entropy = rules[static_cast<size_t>(i)].entropies ? want.score.entropy : 0.0;
      EXPECT_TRUE(same_number(from_gpu.score.entropy, want_entropy))
          << where << ": entropy " << from_gpu.score.entropy << " vs " << want_entropy;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Settings, CudaTokenPrediction, ::testing::ValuesIn(kSettings),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(CudaTokenPrediction, RefusesARuleItCannotApply) {
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  Buffer device = gpu().allocate(2 * 10 * sizeof(float));
  const Tensor logits = device.view(DType::F32, Shape{2, 10});
  std::vector<TokenRule> rules(2);
  std::vector<TokenPrediction> out(2);
  rules[1].suppress_before_draw = 10;
  EXPECT_THROW(ops::predict_tokens(gpu(), logits, rules, {}, out), Error);
  rules[1] = TokenRule{};
  rules[0].guidance_row = 0;
  EXPECT_THROW(ops::predict_tokens(gpu(), logits, rules, {}, out), Error);
}

// Every filter and the repetition penalty, alone and together, in both orders and with every draw, against
// the rule applied on the host (tests/parity/token_rule_reference.h): same tokens, scores to 1e-10.
struct FilterCase {
  const char* name;
  void (*set)(TokenRule&);
};

const FilterCase kFilterCases[] = {
    {"top_k_1", [](TokenRule& r) { r.top_k = 1; }},
    {"top_k_50", [](TokenRule& r) { r.top_k = 50; }},
    {"top_k_all_but_one", [](TokenRule& r) { r.top_k = 1 << 30; }},  // cut to V - 1 below
    {"top_p_0.9", [](TokenRule& r) { r.top_p = 0.9; }},
    {"top_p_0.37_categorical",
     [](TokenRule& r) {
       r.top_p = 0.37;
       r.draw = TokenDraw::Categorical;
       r.temperature = 1.0;
     }},
    {"top_p_0", [](TokenRule& r) { r.top_p = 0.0; }},
    {"top_k_then_top_p",
     [](TokenRule& r) {
       r.top_k = 40;
       r.top_p = 0.95;
     }},
    {"top_p_then_top_k_scaled",
     [](TokenRule& r) {
       r.top_k = 3;
       r.top_p = 0.6;
       r.filter_order = FilterOrder::TopPFirst;
       r.divide_by_temperature = true;
       r.temperature = 2.5;
       r.draw = TokenDraw::Categorical;
     }},
    {"min_p", [](TokenRule& r) { r.min_p = 0.05; }},
    {"gumbel_filtered",
     [](TokenRule& r) {
       r.draw = TokenDraw::Gumbel;
       r.temperature = 0.9;
       r.top_k = 20;
       r.top_p = 0.8;
       r.suppress_before_draw = kEos;
       r.suppress_before_scores[0] = kEot;
     }},
    {"penalty_greedy", [](TokenRule& r) { r.repetition_penalty = 1.3; }},
    {"top_k_50_without_entropies",
     [](TokenRule& r) {
       r.top_k = 50;
       r.entropies = false;
     }},
    {"everything",
     [](TokenRule& r) {
       r.repetition_penalty = 0.8;
       r.divide_by_temperature = true;
       r.temperature = 1.1;
       r.draw = TokenDraw::Categorical;
       r.top_k = 20;
       r.top_p = 0.8;
       r.min_p = 0.05;
     }},
};

TEST(CudaTokenPrediction, FiltersAndPenaltiesMatchTheHost) {
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  for (const int64_t vocab : {int64_t{1}, int64_t{37}, int64_t{4099}, int64_t{152064}}) {
    const int64_t rows = vocab > 100000 ? 16 : 40;
    const std::vector<float> host = make_rows(rows, vocab, static_cast<uint32_t>(vocab) + 5);
    Buffer device = gpu().allocate(host.size() * sizeof(float));
    const Tensor logits = device.view(DType::F32, Shape{rows, vocab});
    for (const FilterCase& filter : kFilterCases) {
      std::vector<TokenRule> rules(static_cast<size_t>(rows));
      std::vector<int32_t> penalized;
      for (int64_t i = 0; i < rows; ++i) {
        TokenRule& rule = rules[static_cast<size_t>(i)];
        rule.seed = 91;
        rule.position = static_cast<uint64_t>(7 * i);
        filter.set(rule);
        // The step word as the samplers make it: the reference takes a Gumbel draw's step from it.
        rule.counter =
            draw_step(rule.draw == TokenDraw::Gumbel ? DrawPurpose::Gumbel : DrawPurpose::Categorical, 3);
        rule.top_k = static_cast<int32_t>(std::min<int64_t>(rule.top_k, vocab - 1));
        if (rule.suppress_before_draw >= vocab) rule.suppress_before_draw = -1;
        for (int32_t& id : rule.suppress_before_scores) id = id < vocab ? id : -1;
        if (rule.repetition_penalty != 1.0) {  // every third id, the row's top ones among them
          rule.penalized_begin = static_cast<int32_t>(penalized.size());
          for (int64_t v = i % 3; v < vocab; v += 3) penalized.push_back(static_cast<int32_t>(v));
          rule.penalized_count = static_cast<int32_t>(penalized.size()) - rule.penalized_begin;
        }
      }
      gpu().copy(HostTensor::from(Shape{rows, vocab}, host).tensor(), logits);  // penalties change it
      std::vector<TokenPrediction> got(static_cast<size_t>(rows));
      ops::predict_tokens(gpu(), logits, rules, penalized, got);
      for (int64_t i = 0; i < rows; ++i) {
        const TokenPrediction want =
            reference_prediction(host.data(), vocab, rules[static_cast<size_t>(i)], i, penalized);
        const TokenPrediction& g = got[static_cast<size_t>(i)];
        const std::string where =
            std::string(filter.name) + ", vocab " + std::to_string(vocab) + ", row " + std::to_string(i);
        EXPECT_EQ(g.token, want.token) << where;
        EXPECT_TRUE(same_number(g.probability, want.probability))
            << where << ": probability " << g.probability << " vs " << want.probability;
        EXPECT_TRUE(same_number(g.margin, want.margin))
            << where << ": margin " << g.margin << " vs " << want.margin;
        const bool entropies = rules[static_cast<size_t>(i)].entropies;
        EXPECT_TRUE(same_number(g.entropy, entropies ? want.entropy : 0.0))
            << where << ": entropy " << g.entropy << " vs " << want.entropy;
        EXPECT_TRUE(same_number(g.neg_entropy, entropies ? want.neg_entropy : 0.0))
            << where << ": neg_entropy " << g.neg_entropy << " vs " << want.neg_entropy;
      }
    }
  }
}

// Plain argmax rows (no filter, penalty or entropies) take several blocks a row where they are fewer than the
// device's multiprocessors, one block a row where they are more: both against the host, on every row kind,
// with the mask id never drawn and EOS suppressed before the draw or the scores.
TEST(CudaTokenPrediction, PlainArgmaxRowsMatchTheHostSplitOrNot) {
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  for (const int64_t vocab : {int64_t{37}, int64_t{152064}}) {
    for (const int64_t rows : {int64_t{3}, int64_t{20}, int64_t{300}}) {
      const std::vector<float> host = make_rows(rows, vocab, static_cast<uint32_t>(vocab + rows));
      Buffer device = gpu().allocate(host.size() * sizeof(float));
      const Tensor logits = device.view(DType::F32, Shape{rows, vocab});
      gpu().copy(HostTensor::from(Shape{rows, vocab}, host).tensor(), logits);
      std::vector<TokenRule> rules(static_cast<size_t>(rows));
      for (int64_t i = 0; i < rows; ++i) {
        TokenRule& rule = rules[static_cast<size_t>(i)];
        rule.entropies = false;
        if (i % 4 == 1) rule.never_drawn = kMask;
        if (i % 4 == 2) rule.suppress_before_draw = kEos;
        if (i % 4 == 3) rule.suppress_before_scores[0] = kEot;
      }
      std::vector<TokenPrediction> got(static_cast<size_t>(rows));
      ops::predict_tokens(gpu(), logits, rules, {}, got);
      for (int64_t i = 0; i < rows; ++i) {
        const TokenPrediction want =
            reference_prediction(host.data(), vocab, rules[static_cast<size_t>(i)], i, {});
        const TokenPrediction& g = got[static_cast<size_t>(i)];
        const std::string where = "vocab " + std::to_string(vocab) + ", " + std::to_string(rows) +
                                  " rows, row " + std::to_string(i);
        EXPECT_EQ(g.token, want.token) << where;
        EXPECT_TRUE(same_number(g.probability, want.probability))
            << where << ": probability " << g.probability << " vs " << want.probability;
        EXPECT_TRUE(same_number(g.margin, want.margin))
            << where << ": margin " << g.margin << " vs " << want.margin;
        EXPECT_EQ(g.entropy, 0.0) << where;
        EXPECT_EQ(g.neg_entropy, 0.0) << where;
      }
    }
  }
}

// A batch-invariant backend predicts a row to the same bits whatever the number of rows with it: a row
// alone would otherwise take several blocks and add their sums in another order than among 300 rows.
TEST(CudaTokenPrediction, BatchInvariantRowsGiveTheSameBitsAloneAndAmongMany) {
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  static CudaBackend invariant(0, CudaOptions{.batch_invariant = true});
  constexpr int64_t kVocab = 152064;
  constexpr int64_t kRows = 300;
  const std::vector<float> host = make_rows(kRows, kVocab, 41);
  const auto predict = [&](int64_t rows) {
    Buffer device = invariant.allocate(static_cast<size_t>(rows * kVocab) * sizeof(float));
    const Tensor logits = device.view(DType::F32, Shape{rows, kVocab});
    const std::vector<float> first(host.begin(), host.begin() + rows * kVocab);
    invariant.copy(HostTensor::from(Shape{rows, kVocab}, first).tensor(), logits);
    std::vector<TokenRule> rules(static_cast<size_t>(rows));
    for (TokenRule& rule : rules) rule.entropies = false;
    std::vector<TokenPrediction> got(static_cast<size_t>(rows));
    ops::predict_tokens(invariant, logits, rules, {}, got);
    return got;
  };
  const std::vector<TokenPrediction> many = predict(kRows);
  for (const int64_t rows : {int64_t{1}, int64_t{9}}) {
    const std::vector<TokenPrediction> few = predict(rows);
    for (int64_t i = 0; i < rows; ++i) {
      const TokenPrediction& a = few[static_cast<size_t>(i)];
      const TokenPrediction& b = many[static_cast<size_t>(i)];
      const std::string where = "row " + std::to_string(i) + " of " + std::to_string(rows);
      EXPECT_EQ(a.token, b.token) << where;
      EXPECT_EQ(std::memcmp(&a.probability, &b.probability, sizeof a.probability), 0) << where;
      EXPECT_EQ(std::memcmp(&a.margin, &b.margin, sizeof a.margin), 0) << where;
    }
  }
}

}  // namespace
}  // namespace dlm
