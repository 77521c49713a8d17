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
#include "engine/ops/attention.h"

namespace dlm {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const float kLn2 = std::log(2.0f);
const float kLn3 = std::log(3.0f);

struct Batch {
  HostTensor query_offsets, key_offsets, query_positions, key_positions;
  std::vector<int32_t> host_query_offsets, host_key_offsets;  // empty: not given

  AttentionBatch view() const {
    return {query_offsets, key_offsets, query_positions, key_positions, host_query_offsets, host_key_offsets};
  }
};

Batch make_batch(const std::vector<int32_t>& query_offsets, const std::vector<int32_t>& key_offsets,
                 const std::vector<int32_t>& query_positions, const std::vector<int32_t>& key_positions) {
  auto vec = [](const std::vector<int32_t>& v) { return HostTensor::from(Shape{int64_t(v.size())}, v); };
  return {vec(query_offsets), vec(key_offsets), vec(query_positions), vec(key_positions), {}, {}};
}

// One sequence, query i at position query_positions[i], key j at position j.
Batch single_sequence(const std::vector<int32_t>& query_positions, int32_t keys) {
  std::vector<int32_t> key_positions(keys);
  std::iota(key_positions.begin(), key_positions.end(), 0);
  return make_batch({0, int32_t(query_positions.size())}, {0, keys}, query_positions, key_positions);
}

struct Problem {
  int64_t tq, tk, hq, hkv, d, dv;
  std::vector<float> q, k, v;
};

Problem random_problem(int64_t tq, int64_t tk, int64_t hq, int64_t hkv, int64_t d, int64_t dv,
                       uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p{tq, tk, hq, hkv, d, dv, {}, {}, {}};
  p.q.resize(tq * hq * d);
  p.k.resize(tk * hkv * d);
  p.v.resize(tk * hkv * dv);
  for (auto* values : {&p.q, &p.k, &p.v}) {
    for (float& x : *values) x = normal(gen);
  }
  return p;
}

std::vector<float> run(Backend& backend, const Problem& p, const Batch& batch,
                       const AttentionParams& params) {
  HostTensor q = HostTensor::from(Shape{p.tq, p.hq, p.d}, p.q);
  HostTensor k = HostTensor::from(Shape{p.tk, p.hkv, p.d}, p.k);
  HostTensor v = HostTensor::from(Shape{p.tk, p.hkv, p.dv}, p.v);
  HostTensor out(DType::F32, Shape{p.tq, p.hq, p.dv});
  std::fill(out.data<float>(), out.data<float>() + out.tensor().numel(), -12345.0f);  // must be overwritten
  ops::attention(backend, q, k, v, batch.view(), params, out);
  return out.to_vector<float>();
}

// Explicit scores, mask and softmax in double, K/V heads repeated as in HF's eager attention.
std::vector<double> reference(const Problem& p, const Batch& batch, const AttentionParams& params) {
  const auto qo = batch.query_offsets.to_vector<int32_t>();
  const auto ko = batch.key_offsets.to_vector<int32_t>();
  const auto qpos = batch.query_positions.to_vector<int32_t>();
  const auto kpos = batch.key_positions.to_vector<int32_t>();
  const double scale = params.scale != 0.0f ? params.scale : 1.0 / std::sqrt(double(p.d));
  std::vector<double> out(p.tq * p.hq * p.dv, 0.0);
  for (size_t b = 0; b + 1 < qo.size(); ++b) {
    for (int64_t t = qo[b]; t < qo[b + 1]; ++t) {
      for (int64_t h = 0; h < p.hq; ++h) {
        const int64_t g = h / (p.hq / p.hkv);
        std::vector<double> scores;
        std::vector<int64_t> keys;
        for (int64_t j = ko[b]; j < ko[b + 1]; ++j) {
          if (!params.visibility.sees(qpos[t], kpos[j])) continue;
          double s = 0.0;
          for (int64_t x = 0; x < p.d; ++x)
            s += double(p.q[(t * p.hq + h) * p.d + x]) * p.k[(j * p.hkv + g) * p.d + x];
          s *= scale;
          if (params.softcap > 0.0f) s = params.softcap * std::tanh(s / params.softcap);
          scores.push_back(s);
          keys.push_back(j);
        }
        if (keys.empty()) continue;
        const double m = *std::max_element(scores.begin(), scores.end());
        double z = 0.0;
        for (double& s : scores) z += (s = std::exp(s - m));
        for (size_t n = 0; n < keys.size(); ++n) {
          for (int64_t x = 0; x < p.dv; ++x) {
            out[(t * p.hq + h) * p.dv + x] += scores[n] / z * p.v[(keys[n] * p.hkv + g) * p.dv + x];
          }
        }
      }
    }
  }
  return out;
}

void expect_near_reference(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], tol) << "element " << i;
}

void expect_rows(const std::vector<float>& got, const std::vector<std::vector<float>>& rows, float tol) {
  ASSERT_EQ(got.size() % rows.size(), 0u);
  const size_t width = got.size() / rows.size();
  for (size_t r = 0; r < rows.size(); ++r) {
    ASSERT_EQ(rows[r].size(), width);
    for (size_t x = 0; x < width; ++x)
      EXPECT_NEAR(got[r * width + x], rows[r][x], tol) << "row " << r << " col " << x;
  }
}

class AttentionTest : public ::testing::Test {
 protected:
  CpuBackend backend_{4};
};

// D = 1, scale 1: query 1 against keys (0, ln 2, ln 3) weighs them 1 : 2 : 3.
// Values (6, 0), (0, 6), (6, 6); a query seeing all three gets (1*6 + 3*6, 2*6 + 3*6) / 6 = (4, 5), one
// seeing keys 0 and 1 gets (6, 12) / 3 = (2, 4), keys 1 and 2 give (18, 30) / 5 = (3.6, 6).
Problem three_keys() {
  return {3, 3, 1, 1, 1, 2, {1, 1, 1}, {0, kLn2, kLn3}, {6, 0, 0, 6, 6, 6}};
}

AttentionParams unit_scale(Visibility visibility) {
  return {visibility, 1.0f, 0.0f};
}

TEST_F(AttentionTest, BidirectionalByHand) {
  auto out =
      run(backend_, three_keys(), single_sequence({0, 1, 2}, 3), unit_scale(Visibility::bidirectional()));
  expect_rows(out, {{4, 5}, {4, 5}, {4, 5}}, 1e-5f);
}

TEST_F(AttentionTest, CausalByHand) {
  auto out = run(backend_, three_keys(), single_sequence({0, 1, 2}, 3), unit_scale(Visibility::causal()));
  expect_rows(out, {{6, 0}, {2, 4}, {4, 5}}, 1e-5f);
}

TEST_F(AttentionTest, BlockCausalByHand) {
  // Blocks of 2: positions 0 and 1 see each other, position 2 sees everything.
  auto out =
      run(backend_, three_keys(), single_sequence({0, 1, 2}, 3), unit_scale(Visibility::block_causal(2)));
  expect_rows(out, {{2, 4}, {2, 4}, {4, 5}}, 1e-5f);
}

TEST_F(AttentionTest, SlidingWindowByHand) {
  // Window 2: position 2 sees keys 1 and 2 only.
  auto out =
      run(backend_, three_keys(), single_sequence({0, 1, 2}, 3), unit_scale(Visibility::sliding_window(2)));
  expect_rows(out, {{6, 0}, {2, 4}, {3.6f, 6}}, 1e-5f);
}

TEST_F(AttentionTest, DefaultScaleIsInverseSqrtHeadDim) {
  // D = 4: q.k1 = 4 * (ln 2 / 2) = 2 ln 2, scaled by 1/2 to ln 2: weights 1 : 2 on values 3 and 0 give 1.
  const float h = kLn2 / 2;
  Problem p{1, 2, 1, 1, 4, 1, {1, 1, 1, 1}, {0, 0, 0, 0, h, h, h, h}, {3, 0}};
  auto out = run(backend_, p, single_sequence({1}, 2), {Visibility::bidirectional(), 0.0f, 0.0f});
  expect_rows(out, {{1.0f}}, 1e-5f);
}

TEST_F(AttentionTest, SoftcapByHand) {
  // Score s = 2 atanh(ln 2 / 2) is capped by 2 tanh(s / 2) to ln 2: weights 1 : 2 on values 3 and 0 give 1.
  // Without the cap the weights are 1 : e^s, giving 3 / (1 + e^s) = 0.98013961458.
  const float s = 0.7230886465030969f;
  Problem p{1, 2, 1, 1, 1, 1, {1}, {0, s}, {3, 0}};
  auto capped = run(backend_, p, single_sequence({1}, 2), {Visibility::bidirectional(), 1.0f, 2.0f});
  auto plain = run(backend_, p, single_sequence({1}, 2), {Visibility::bidirectional(), 1.0f, 0.0f});
  expect_rows(capped, {{1.0f}}, 1e-5f);
  expect_rows(plain, {{0.98013961458f}}, 1e-5f);
}

TEST_F(AttentionTest, LargeScoresDoNotOverflow) {
  // Scores 1000 and 1000 - ln 2 weigh 1 : 1/2: values 3 and 0 give 2. exp(1000) alone would overflow.
  Problem p{1, 2, 1, 1, 1, 1, {1}, {1000.0f, 1000.0f - kLn2}, {3, 0}};
  auto out = run(backend_, p, single_sequence({0}, 2), unit_scale(Visibility::bidirectional()));
  expect_rows(out, {{2.0f}}, 2e-4f);  // 1000 - ln 2 carries f32 rounding of ~3e-5
}

TEST_F(AttentionTest, GqaMapsConsecutiveQueryHeadsToOneKvHead) {
  // Hq = 4, Hkv = 2: heads 0 and 1 read kv head 0 (values 1), heads 2 and 3 read kv head 1 (values 2),
  // whatever the weights. Mapping by h % Hkv would mix them.
  Problem p = random_problem(3, 5, 4, 2, 8, 2, 1);
  for (int64_t j = 0; j < 5; ++j) {
    for (int64_t x = 0; x < 2; ++x) {
      p.v[(j * 2 + 0) * 2 + x] = 1.0f;
      p.v[(j * 2 + 1) * 2 + x] = 2.0f;
    }
  }
  auto out = run(backend_, p, single_sequence({2, 3, 4}, 5), {Visibility::causal(), 0.0f, 0.0f});
  for (int64_t t = 0; t < 3; ++t) {
    for (int64_t h = 0; h < 4; ++h) {
      for (int64_t x = 0; x < 2; ++x) EXPECT_NEAR(out[(t * 4 + h) * 2 + x], h < 2 ? 1.0f : 2.0f, 1e-6f);
    }
  }
}

TEST_F(AttentionTest, GqaMatchesReference) {
  Problem p = random_problem(37, 37, 8, 2, 16, 12, 2);
  std::vector<int32_t> positions(37);
  std::iota(positions.begin(), positions.end(), 0);
  Batch batch = single_sequence(positions, 37);
  AttentionParams params{Visibility::causal(), 0.0f, 0.0f};
  expect_near_reference(run(backend_, p, batch, params), reference(p, batch, params), 1e-5);
}

TEST_F(AttentionTest, MqaMatchesReference) {
  Problem p = random_problem(20, 70, 40, 1, 13, 5, 3);  // 40 heads on one kv head: tasks split the group
  std::vector<int32_t> positions(20);
  for (int32_t i = 0; i < 20; ++i) positions[i] = 50 + i;
  Batch batch = single_sequence(positions, 70);
  AttentionParams params{Visibility::causal(), 0.0f, 0.0f};
  expect_near_reference(run(backend_, p, batch, params), reference(p, batch, params), 1e-5);
}

TEST_F(AttentionTest, EveryVisibilityMatchesReferenceOverManyTiles) {
  // 150 keys span three key tiles; 70 query rows span several tasks; positions are shuffled.
  Problem p = random_problem(70, 150, 4, 4, 24, 24, 4);
  std::vector<int32_t> key_positions(150);
  std::iota(key_positions.begin(), key_positions.end(), 0);
  std::shuffle(key_positions.begin(), key_positions.end(), std::mt19937(5));
  std::vector<int32_t> query_positions(70);
  for (int32_t i = 0; i < 70; ++i) query_positions[i] = (i * 37) % 150;
  Batch batch = make_batch({0, 70}, {0, 150}, query_positions, key_positions);
  for (Visibility visibility : {Visibility::bidirectional(), Visibility::causal(),
                                Visibility::block_causal(16), Visibility::sliding_window(40)}) {
    for (float softcap : {0.0f, 1.5f}) {
      AttentionParams params{visibility, 0.3f, softcap};
      SCOPED_TRACE(::testing::Message() << "visibility " << int(visibility.kind) << " softcap " << softcap);
      expect_near_reference(run(backend_, p, batch, params), reference(p, batch, params), 1e-5);
    }
  }
}

// Rows [begin, end) of a [T, H, D] vector.
std::vector<float> rows(const std::vector<float>& x, int64_t width, int64_t begin, int64_t end) {
  return std::vector<float>(x.begin() + begin * width, x.begin() + end * width);
}

TEST_F(AttentionTest, RaggedBatchEqualsEachSequenceAlone) {
  // Three sequences: (queries, keys) = (5, 9), (1, 1), (40, 40); the first two read cached keys.
  const std::vector<int32_t> query_offsets{0, 5, 6, 46};
  const std::vector<int32_t> key_offsets{0, 9, 10, 50};
  std::vector<int32_t> query_positions, key_positions;
  for (int32_t i = 4; i < 9; ++i) query_positions.push_back(i);
  query_positions.push_back(0);
  for (int32_t i = 0; i < 40; ++i) query_positions.push_back(i);
  for (int32_t i = 0; i < 9; ++i) key_positions.push_back(i);
  key_positions.push_back(0);
  for (int32_t i = 0; i < 40; ++i) key_positions.push_back(i);
  Problem p = random_problem(46, 50, 6, 3, 16, 16, 6);
  AttentionParams params{Visibility::block_causal(4), 0.0f, 0.0f};
  auto batched =
      run(backend_, p, make_batch(query_offsets, key_offsets, query_positions, key_positions), params);
  expect_near_reference(
      batched, reference(p, make_batch(query_offsets, key_offsets, query_positions, key_positions), params),
      1e-5);

  for (size_t b = 0; b < 3; ++b) {
    const int64_t q0 = query_offsets[b], q1 = query_offsets[b + 1], k0 = key_offsets[b],
                  k1 = key_offsets[b + 1];
    Problem alone{q1 - q0,
                  k1 - k0,
                  p.hq,
                  p.hkv,
                  p.d,
                  p.dv,
                  rows(p.q, p.hq * p.d, q0, q1),
                  rows(p.k, p.hkv * p.d, k0, k1),
                  rows(p.v, p.hkv * p.dv, k0, k1)};
    Batch batch = make_batch({0, int32_t(q1 - q0)}, {0, int32_t(k1 - k0)},
                             {query_positions.begin() + q0, query_positions.begin() + q1},
                             {key_positions.begin() + k0, key_positions.begin() + k1});
    // Bitwise: a sequence's result must not depend on what else is in the batch.
    EXPECT_EQ(run(backend_, alone, batch, params), rows(batched, p.hq * p.dv, q0, q1)) << "sequence " << b;
  }
}

TEST_F(AttentionTest, QuerySubsetAgainstCachedKeysEqualsFullComputation) {
  const int64_t t = 90;
  Problem full = random_problem(t, t, 4, 2, 16, 16, 7);
  std::vector<int32_t> positions(t);
  std::iota(positions.begin(), positions.end(), 0);
  const std::vector<int32_t> picked{3, 64, 65, 89, 10};  // any order
  for (Visibility visibility : {Visibility::causal(), Visibility::bidirectional(),
                                Visibility::block_causal(8), Visibility::sliding_window(20)}) {
    AttentionParams params{visibility, 0.0f, 0.0f};
    auto all = run(backend_, full, single_sequence(positions, int32_t(t)), params);
    Problem subset{int64_t(picked.size()), t, full.hq, full.hkv, full.d, full.dv, {}, full.k, full.v};
    for (int32_t pos : picked) {
      auto row = rows(full.q, full.hq * full.d, pos, pos + 1);
      subset.q.insert(subset.q.end(), row.begin(), row.end());
    }
    auto some = run(backend_, subset, single_sequence(picked, int32_t(t)), params);
    for (size_t i = 0; i < picked.size(); ++i) {
      EXPECT_EQ(rows(some, full.hq * full.dv, i, i + 1),
                rows(all, full.hq * full.dv, picked[i], picked[i] + 1))
          << "visibility " << int(visibility.kind) << " position " << picked[i];
    }
  }
}

TEST_F(AttentionTest, QueryWithoutVisibleKeyGetsZeros) {
  // Query at position 0 under causal visibility against keys at positions 1 and 2 sees nothing; the second
  // sequence has no keys at all. NaN in the unseen keys must not leak.
  Problem p{2, 2, 1, 1, 1, 1, {1, 1}, {kNaN, 1}, {kNaN, 5}};
  Batch batch = make_batch({0, 1, 2}, {0, 2, 2}, {0, 7}, {1, 2});
  auto out = run(backend_, p, batch, unit_scale(Visibility::causal()));
  expect_rows(out, {{0.0f}, {0.0f}}, 0.0f);
}

TEST_F(AttentionTest, NonFiniteValuesFollowSoftmax) {
  // Key 1 holds a NaN and is visible to query 1 only (causal): query 0 stays finite, query 1 is NaN.
  Problem p{2, 2, 1, 1, 2, 1, {1, 1, 1, 1}, {1, 0, kNaN, 0}, {3, 4}};
  auto out = run(backend_, p, single_sequence({0, 1}, 2), unit_scale(Visibility::causal()));
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_TRUE(std::isnan(out[1]));

  // A +inf score makes the row NaN, as exp(inf - inf) does in torch's softmax.
  Problem inf_score{1, 2, 1, 1, 1, 1, {1}, {kInf, 0}, {3, 4}};
  EXPECT_TRUE(std::isnan(
      run(backend_, inf_score, single_sequence({0}, 2), unit_scale(Visibility::bidirectional()))[0]));

  // A -inf score next to finite ones gets weight 0.
  Problem neg_inf{1, 2, 1, 1, 1, 1, {1}, {-kInf, 0}, {3, 4}};
  EXPECT_FLOAT_EQ(run(backend_, neg_inf, single_sequence({0}, 2), unit_scale(Visibility::bidirectional()))[0],
                  4.0f);

  // Only -inf scores: softmax is 0/0, NaN, unlike a row with no visible key.
  Problem all_neg_inf{1, 2, 1, 1, 1, 1, {1}, {-kInf, -kInf}, {3, 4}};
  EXPECT_TRUE(std::isnan(
      run(backend_, all_neg_inf, single_sequence({0}, 2), unit_scale(Visibility::bidirectional()))[0]));
}

// ---- validation ----

struct Args {
  HostTensor q, k, v, out;
  Batch batch;
  AttentionParams params{Visibility::causal(), 0.0f, 0.0f};
};

// A valid call: 2 sequences of 2 queries and 3 keys, Hq = 4, Hkv = 2, D = 8, Dv = 6.
Args valid_args() {
  return {HostTensor(DType::F32, Shape{4, 4, 8}), HostTensor(DType::F32, Shape{6, 2, 8}),
          HostTensor(DType::F32, Shape{6, 2, 6}), HostTensor(DType::F32, Shape{4, 4, 6}),
          make_batch({0, 2, 4}, {0, 3, 6}, {1, 2, 1, 2}, {0, 1, 2, 0, 1, 2})};
}

void expect_error(const std::function<void(Args&)>& mutate, const std::vector<std::string>& words) {
  CpuBackend backend(1);
  Args args = valid_args();
  for (int64_t i = 0; i < 4 * 4 * 8; ++i) args.q.data<float>()[i] = 0.0f;
  for (int64_t i = 0; i < 6 * 2 * 8; ++i) args.k.data<float>()[i] = 0.0f;
  for (int64_t i = 0; i < 6 * 2 * 6; ++i) args.v.data<float>()[i] = 0.0f;
  mutate(args);
  try {
    ops::attention(backend, args.q, args.k, args.v, args.batch.view(), args.params, args.out);
    ADD_FAILURE() << "no error; expected one mentioning " << ::testing::PrintToString(words);
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("attention: "), std::string::npos) << message;
    for (const auto& word : words) EXPECT_NE(message.find(word), std::string::npos) << message;
  }
}

TEST(AttentionValidation, AcceptsTheValidCall) {
  CpuBackend backend(1);
  Args args = valid_args();
  std::fill(args.q.data<float>(), args.q.data<float>() + 128, 0.5f);
  std::fill(args.k.data<float>(), args.k.data<float>() + 96, 0.5f);
  std::fill(args.v.data<float>(), args.v.data<float>() + 72, 2.0f);
  ops::attention(backend, args.q, args.k, args.v, args.batch.view(), args.params, args.out);
  for (float x : args.out.to_vector<float>()) EXPECT_FLOAT_EQ(x, 2.0f);
  // With the offsets' host copies as well.
  args.batch.host_query_offsets = {0, 2, 4};
  args.batch.host_key_offsets = {0, 3, 6};
  ops::attention(backend, args.q, args.k, args.v, args.batch.view(), args.params, args.out);
  for (float x : args.out.to_vector<float>()) EXPECT_FLOAT_EQ(x, 2.0f);
}

TEST(AttentionValidation, RejectsBadTensors) {
  expect_error([](Args& a) { a.q = HostTensor(DType::I32, Shape{4, 4, 8}); }, {"q", "f32", "i32"});
  expect_error([](Args& a) { a.k = HostTensor(DType::F32, Shape{6, 16}); }, {"k", "rank 3"});
  expect_error([](Args& a) { a.k = HostTensor(DType::F32, Shape{6, 3, 8}); }, {"4 heads", "3 kv heads"});
  expect_error(
      [](Args& a) {
        a.q = HostTensor(DType::F32, Shape{4, 0, 8});
        a.out = HostTensor(DType::F32, Shape{4, 0, 6});
      },
      {"0 heads", "positive multiple"});
  expect_error([](Args& a) { a.k = HostTensor(DType::F32, Shape{6, 2, 7}); }, {"head_dim", "8"});
  expect_error([](Args& a) { a.v = HostTensor(DType::F32, Shape{5, 2, 6}); }, {"v", "[6,2,Dv]"});
  expect_error([](Args& a) { a.out = HostTensor(DType::F32, Shape{4, 4, 8}); }, {"out", "[4,4,6]"});
  expect_error(
      [](Args& a) {
        a.q = HostTensor(DType::F32, Shape{4, 4, 0});
        a.k = HostTensor(DType::F32, Shape{6, 2, 0});
      },
      {"head_dim > 0"});
}

TEST(AttentionValidation, RejectsOutputOverlappingAnInput) {
  CpuBackend backend(1);
  Args args = valid_args();
  HostTensor shared(DType::F32, Shape{4, 4, 8});
  std::fill(shared.data<float>(), shared.data<float>() + 128, 0.0f);
  std::fill(args.k.data<float>(), args.k.data<float>() + 96, 0.0f);
  HostTensor v8(DType::F32, Shape{6, 2, 8});
  std::fill(v8.data<float>(), v8.data<float>() + 96, 0.0f);
  EXPECT_THROW(ops::attention(backend, shared, args.k, v8, args.batch.view(), args.params, shared), Error);
}

TEST(AttentionValidation, RejectsBadBatch) {
  expect_error(
      [](Args& a) {
        a.batch.query_offsets = HostTensor::from<int64_t>(Shape{3}, {0, 2, 4});
      },
      {"query_offsets", "i32", "i64"});
  expect_error(
      [](Args& a) {
        a.batch.key_offsets = HostTensor::from<int32_t>(Shape{2}, {0, 6});
      },
      {"key_offsets", "[3]"});
  expect_error(
      [](Args& a) {
        a.batch.query_positions = HostTensor::from<int32_t>(Shape{3}, {0, 1, 2});
      },
      {"query_positions", "[4]"});
  expect_error(
      [](Args& a) {
        a.batch.key_offsets = HostTensor::from<int32_t>(Shape{3}, {0, 4, 3});
      },
      {"key_offsets", "decrease", "4 > key_offsets[2] = 3"});
  expect_error(
      [](Args& a) {
        a.batch.query_offsets = HostTensor::from<int32_t>(Shape{3}, {0, 2, 3});
      },
      {"query_offsets[2]", "4 rows", "got 3"});
  expect_error(
      [](Args& a) {
        a.batch.query_offsets = HostTensor::from<int32_t>(Shape{3}, {1, 2, 4});
      },
      {"query_offsets[0]", "0"});
  expect_error(
      [](Args& a) {
        a.batch.key_offsets = HostTensor::from<int32_t>(Shape{3}, {0, 3, 7});
      },
      {"key_offsets[2]", "6 rows", "got 7"});
  expect_error(
      [](Args& a) {
        a.batch.key_offsets = HostTensor::from<int32_t>(Shape{3}, {-1, 3, 6});
      },
      {"key_offsets[0]", ">= 0"});
  expect_error(
      [](Args& a) {
        a.batch.key_positions = HostTensor::from<int32_t>(Shape{6}, {0, 1, -2, 0, 1, 2});
      },
      {"key_positions[2]", ">= 0", "-2"});
}

TEST(AttentionValidation, RejectsBadHostOffsets) {
  expect_error(
      [](Args& a) {
        a.batch.host_query_offsets = {0, 2, 4};
      },
      {"host_query_offsets and host_key_offsets come together", "3 and 0"});
  expect_error(
      [](Args& a) {
        a.batch.host_query_offsets = {0, 4};
        a.batch.host_key_offsets = {0, 3, 6};
      },
      {"host_query_offsets", "the batch's 3 offsets", "got 2"});
  expect_error(
      [](Args& a) {
        a.batch.host_query_offsets = {0, 2, 4};
        a.batch.host_key_offsets = {0, 4, 3};
      },
      {"host_key_offsets", "decrease"});
  expect_error(
      [](Args& a) {
        a.batch.host_query_offsets = {0, 2, 4};
        a.batch.host_key_offsets = {0, 2, 6};
      },
      {"must equal query_offsets and key_offsets"});
}

TEST(AttentionValidation, RejectsBadParams) {
  expect_error([](Args& a) { a.params.visibility = Visibility::block_causal(0); }, {"block_size > 0"});
  expect_error([](Args& a) { a.params.visibility = Visibility::sliding_window(-3); }, {"window > 0", "-3"});
  expect_error([](Args& a) { a.params.scale = -1.0f; }, {"scale"});
  expect_error([](Args& a) { a.params.scale = kNaN; }, {"scale"});
  expect_error([](Args& a) { a.params.softcap = -2.0f; }, {"softcap"});
  expect_error([](Args& a) { a.params.softcap = kInf; }, {"softcap"});
}

// simplified_visibility: bidirectional exactly where every query of every sequence sees all its keys.
VisibilityKind simplified_kind(const Visibility& visibility, const std::vector<int32_t>& query_offsets,
                               const std::vector<int32_t>& query_positions,
                               const std::vector<int32_t>& key_offsets,
                               const std::vector<int32_t>& key_positions) {
  return ops::simplified_visibility(visibility, query_offsets, query_positions, key_offsets, key_positions)
      .kind;
}

std::vector<int32_t> positions_from(int32_t first, int32_t count) {
  std::vector<int32_t> positions(static_cast<size_t>(count));
  std::iota(positions.begin(), positions.end(), first);
  return positions;
}

TEST(SimplifiedVisibility, ADecodingStepAgainstItsCacheSeesEveryKey) {
  // Causal: one query at position 6 against keys 0..6.
  EXPECT_EQ(simplified_kind(Visibility::causal(), {0, 1}, {6}, {0, 7}, positions_from(0, 7)),
            VisibilityKind::Bidirectional);
  // Block-causal, blocks of 4: the last block's queries against the keys up to that block's end.
  EXPECT_EQ(simplified_kind(Visibility::block_causal(4), {0, 4}, positions_from(8, 4), {0, 12},
                            positions_from(0, 12)),
            VisibilityKind::Bidirectional);
  // A window of 8: query 10 against keys 3..10 (10 - 3 < 8).
  EXPECT_EQ(simplified_kind(Visibility::sliding_window(8), {0, 1}, {10}, {0, 8}, positions_from(3, 8)),
            VisibilityKind::Bidirectional);
  // Sequences without queries or keys change nothing.
  EXPECT_EQ(simplified_kind(Visibility::causal(), {0, 0, 1, 1}, {9}, {0, 3, 10, 10}, positions_from(0, 10)),
            VisibilityKind::Bidirectional);
}

TEST(SimplifiedVisibility, KeepsTheRuleWhereAKeyIsHidden) {
  // A prefill: the first query does not see the later keys.
  EXPECT_EQ(simplified_kind(Visibility::causal(), {0, 4}, positions_from(0, 4), {0, 4}, positions_from(0, 4)),
            VisibilityKind::Causal);
  // One key in the block after the queries'.
  EXPECT_EQ(simplified_kind(Visibility::block_causal(4), {0, 4}, positions_from(8, 4), {0, 13},
                            positions_from(0, 13)),
            VisibilityKind::BlockCausal);
  // Key 2 is 8 before query 10: outside a window of 8.
  EXPECT_EQ(simplified_kind(Visibility::sliding_window(8), {0, 1}, {10}, {0, 9}, positions_from(2, 9)),
            VisibilityKind::SlidingWindow);
  // The second of two sequences decides.
  EXPECT_EQ(simplified_kind(Visibility::causal(), {0, 1, 3}, {5, 0, 1}, {0, 6, 8}, {0, 1, 2, 3, 4, 5, 0, 1}),
            VisibilityKind::Causal);
  using Ids = std::vector<int32_t>;
  const Visibility block =
      ops::simplified_visibility(Visibility::block_causal(4), Ids{0, 2}, Ids{0, 4}, Ids{0, 3}, Ids{0, 1, 5});
  EXPECT_EQ(block.kind, VisibilityKind::BlockCausal);
  EXPECT_EQ(block.block_size, 4);
}

TEST(SimplifiedVisibility, GivesWhatTheRuleGivesOnADecodingBatch) {
  // Two sequences each decoding a block of 3 against 5 cached keys and their own 3, block-causal with
  // blocks of 4 (positions 4..7 hold the block); the simplified rule must give the same outputs.
  CpuBackend backend(2);
  const std::vector<int32_t> query_offsets{0, 3, 6}, key_offsets{0, 8, 16};
  std::vector<int32_t> query_positions{5, 6, 7, 5, 6, 7}, key_positions;
  for (int b = 0; b < 2; ++b) {
    for (int32_t p = 0; p < 8; ++p) key_positions.push_back(p);
  }
  const Batch batch = make_batch(query_offsets, key_offsets, query_positions, key_positions);
  const Problem p = random_problem(6, 16, 4, 2, 8, 8, 71);
  const Visibility rule = Visibility::block_causal(4);
  const Visibility simple =
      ops::simplified_visibility(rule, query_offsets, query_positions, key_offsets, key_positions);
  ASSERT_EQ(simple.kind, VisibilityKind::Bidirectional);
  const std::vector<float> want = run(backend, p, batch, AttentionParams{rule, 0.0f, 0.0f});
  EXPECT_EQ(run(backend, p, batch, AttentionParams{simple, 0.0f, 0.0f}), want);
  expect_near_reference(want, reference(p, batch, AttentionParams{rule, 0.0f, 0.0f}), 1e-5);
}

TEST(SimplifiedVisibility, RefusesOffsetsOutsideThePositions) {
  using Ids = std::vector<int32_t>;
  const Visibility causal = Visibility::causal();
  EXPECT_THROW(ops::simplified_visibility(causal, Ids{0, 3}, Ids{0, 1}, Ids{0, 1}, Ids{0}), Error);
  EXPECT_THROW(ops::simplified_visibility(causal, Ids{0, 1}, Ids{0}, Ids{0, 1, 1}, Ids{0}), Error);
  EXPECT_THROW(ops::simplified_visibility(causal, Ids{0, 1}, Ids{0}, Ids{1, 0}, Ids{0}), Error);
}

}  // namespace
}  // namespace dlm
