// The CUDA backend's softmax, log-softmax and vocabulary ops (argmax, top-k, the fused statistics) against
// the CPU backend: long and odd rows, NaN/Inf rows, ties, and guard bytes (op_checks.h states the tolerances'
// reasoning). Without a device every test skips with the reason.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/ops/softmax.h"
#include "engine/ops/vocab.h"
#include "tests/gpu/op_checks.h"

namespace dlm {
namespace {

using namespace op_test;

// =========================================================================================== softmax

struct RowsCase {
  int64_t rows, width;
};

std::string rows_case_name(const ::testing::TestParamInfo<RowsCase>& info) {
  return shape_name({info.param.rows, info.param.width});
}

// Logit-like rows: normal with sigma 4. With at least 8 rows, special ones: a NaN, a +inf, only -inf, some
// -inf among finite values, values near 1e30 (shift invariance), and one dominant entry.
std::vector<float> logit_rows(int64_t rows, int64_t width, uint32_t seed) {
  std::vector<float> v = normal(rows * width, seed, 4.0f);
  if (rows >= 8 && width >= 2) {
    v[0 * width + width / 3] = kNaN;
    v[1 * width + width - 1] = kInf;
    std::fill(v.begin() + 2 * width, v.begin() + 3 * width, -kInf);
    for (int64_t i = 0; i < width; i += 2) v[3 * width + i] = -kInf;
    for (int64_t i = 0; i < width; ++i) v[4 * width + i] += 1e30f;  // mostly 1e30 exactly: a uniform row
    v[5 * width + width / 2] = 60.0f;
  }
  return v;
}

class CudaSoftmax : public GpuParamTest<RowsCase> {};

// Probabilities: each exp differs by <= 3 f32 ulps (glibc expf < 1 ulp, CUDA expf <= 2 ulps), and so does the
// double sum; 1/sum and the product add an ulp each: 8 ulps, rel 1e-6. Tiny probabilities get abs 1e-38.
// Log-probabilities: x - m is exact on both sides; log(sum) differs by <= 3.6e-7 plus one ulp of its f32
// rounding (the sum of exp(x - m) is at most V, so log(sum) <= ln 2^18 < 16 and an ulp <= 9.5e-7), then one
// rounding of the difference (2 ulps: rel 2.4e-7): abs 2.5e-6 + rel 2.4e-7.
TEST_P(CudaSoftmax, BothFormsMatchTheCpuInPlaceToo) {
  const auto [rows, width] = GetParam();
  HostTensor x = f32({rows, width}, logit_rows(rows, width, 81));
  for (bool log : {false, true}) {
    SCOPED_TRACE(log ? "log_softmax" : "softmax");
    const Tolerance tol = log ? Tolerance{2.5e-6, 2.4e-7} : Tolerance{1e-38, 1e-6};
    auto op = [&](Backend& backend, const Tensor& in, const Tensor& result) {
      if (log) {
        ops::log_softmax(backend, in, result);
      } else {
        ops::softmax(backend, in, result);
      }
    };
    HostTensor want(DType::F32, Shape{rows, width});
    op(cpu(), x, want);
    Guarded dx = upload(x);
    Guarded out = output(DType::F32, Shape{rows, width});
    op(gpu(), dx, out);
    expect_close(download(out), want, tol);
    expect_guards_intact(out);
    op(gpu(), dx, dx);  // in place
    expect_close(download(dx), want, tol);
    expect_guards_intact(dx);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaSoftmax,
                         ::testing::Values(RowsCase{1, 1}, RowsCase{7, 33}, RowsCase{37, 1031},
                                           RowsCase{8, 50257}, RowsCase{9, 131072}, RowsCase{1, 262144},
                                           RowsCase{(1 << 20) + 3, 2}),
                         rows_case_name);

// ============================================================================================ vocab

// Logits with many ties (normal sigma 4 rounded to halves) and, with at least 8 rows, rows that test the
// ranking rules: NaNs (the first is the argmax), +inf twice, only -inf, zeros of both signs as the maximum
// (-0 first), the maximum at the last index, the maximum tied at 0 and V/2, two maxima 1e-6 apart.
std::vector<float> ranked_rows(int64_t rows, int64_t vocab, uint32_t seed) {
  std::vector<float> v = normal(rows * vocab, seed, 4.0f);
  for (float& x : v) x = std::round(x * 2.0f) / 2.0f;
  if (rows >= 8 && vocab >= 4) {
    float* r = v.data();
    r[vocab / 2] = kNaN;
    r[vocab - 1] = -kNaN;
    r[vocab / 3] = kNaN;
    r += vocab;
    r[vocab - 2] = kInf;
    r[1] = kInf;
    r += vocab;
    std::fill(r, r + vocab, -kInf);
    r += vocab;
    for (int64_t i = 0; i < vocab; ++i) r[i] = -std::fabs(r[i]) - 1.0f;
    r[vocab - 1] = -0.0f;
    r[vocab / 2] = 0.0f;
    r[1] = -0.0f;
    r += vocab;
    r[vocab - 1] = 40.0f;
    r += vocab;
    r[0] = 40.0f;
    r[vocab / 2] = 40.0f;
    r += vocab;
    r[vocab / 4] = 30.000002f;
    r[vocab - 3] = 30.0f;
  }
  return v;
}

class CudaArgmax : public GpuParamTest<RowsCase> {};

TEST_P(CudaArgmax, MatchesTheCpuExactly) {
  const auto [rows, vocab] = GetParam();
  HostTensor logits = f32({rows, vocab}, ranked_rows(rows, vocab, 91));
  HostTensor want(DType::I32, Shape{rows});
  ops::argmax(cpu(), logits, want);
  Guarded out = output(DType::I32, Shape{rows});
  ops::argmax(gpu(), upload(logits), out);
  expect_same_bits(download(out), want);
  expect_guards_intact(out);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaArgmax,
                         ::testing::Values(RowsCase{1, 1}, RowsCase{7, 7}, RowsCase{8, 33}, RowsCase{9, 1000},
                                           RowsCase{8, 50257}, RowsCase{9, 131072}, RowsCase{8, 262144},
                                           RowsCase{(1 << 20) + 3, 1}),
                         rows_case_name);

struct TopKCase {
  int64_t rows, vocab, k;
};

class CudaTopK : public GpuParamTest<TopKCase> {};

// Values and indices bit for bit: the ranking is exact on both sides, and the values are the stored logits.
TEST_P(CudaTopK, MatchesTheCpuExactly) {
  const auto [rows, vocab, k] = GetParam();
  HostTensor logits = f32({rows, vocab}, ranked_rows(rows, vocab, 101));
  HostTensor want_values(DType::F32, Shape{rows, k});
  HostTensor want_indices(DType::I32, Shape{rows, k});
  ops::top_k(cpu(), logits, k, want_values, want_indices);
  Guarded values = output(DType::F32, Shape{rows, k});
  Guarded indices = output(DType::I32, Shape{rows, k});
  ops::top_k(gpu(), upload(logits), k, values, indices);
  expect_same_bits(download(indices), want_indices);
  expect_same_bits(download(values), want_values);
  expect_guards_intact(values);
  expect_guards_intact(indices);
}

std::vector<TopKCase> top_k_cases() {
  std::vector<TopKCase> cases;
  for (int64_t vocab : {1, 7, 33, 1000, 50257, 131072}) {
    const int64_t rows = vocab >= 50000 ? 8 : 9;
    for (int64_t k : {int64_t{1}, int64_t{2}, int64_t{17}, int64_t{64}, int64_t{1000}, int64_t{4096},
                      int64_t{4097}, vocab}) {
      if (k > vocab || (!cases.empty() && cases.back().vocab == vocab && cases.back().k == k)) continue;
      cases.push_back({rows, vocab, k});
    }
  }
  // More rows than the blocks that sort in scratch (64), so those blocks take several rows each.
  cases.push_back({67, 5000, 4097});
  cases.push_back({67, 5000, 5000});
  cases.push_back({70, 3000, 100});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaTopK, ::testing::ValuesIn(top_k_cases()), [](const auto& info) {
  return shape_name({info.param.rows, info.param.vocab, info.param.k});
});

class CudaVocabStats : public GpuParamTest<RowsCase> {};

// argmax exactly. Z = sum exp(d) differs by <= 3 f32 ulps of its terms (expf on either side; the sums are
// double), i.e. rel 3.6e-7: max_prob = 1/Z and margin = -expm1(second - m)/Z (expm1 in double on both) get
// rel 6e-7 with their final rounding. Entropy = log Z - E_p[d]: with d <= 0 and Z >= 1, E_p|d| <= entropy <=
// ln V, so the error is <= 3.6e-7 + 7.2e-7 ln V plus a rounding: abs 5e-7 + 8e-7 ln V.
TEST_P(CudaVocabStats, MatchesTheCpuWithinTheExpfBound) {
  const auto [rows, vocab] = GetParam();
  std::vector<float> v = logit_rows(rows, vocab, 111);
  if (rows >= 8 && vocab >= 4) {  // a tie at the top (margin 0) and two logits 1e-6 apart
    v[6 * vocab + 1] = 50.0f;
    v[6 * vocab + vocab - 1] = 50.0f;
    v[7 * vocab + 2] = 1e-6f + 45.0f;
    v[7 * vocab + 3] = 45.0f;
  }
  HostTensor logits = f32({rows, vocab}, v);
  const Shape shape{rows};
  HostTensor argmax(DType::I32, shape), max_prob(DType::F32, shape), entropy(DType::F32, shape),
      margin(DType::F32, shape);
  ops::vocab_stats(cpu(), logits, {argmax, max_prob, entropy, margin});
  Guarded d_argmax = output(DType::I32, shape), d_max_prob = output(DType::F32, shape),
          d_entropy = output(DType::F32, shape), d_margin = output(DType::F32, shape);
  ops::vocab_stats(gpu(), upload(logits), {d_argmax, d_max_prob, d_entropy, d_margin});
  expect_same_bits(download(d_argmax), argmax);
  {
    SCOPED_TRACE("max_prob");
    expect_close(download(d_max_prob), max_prob, {1e-38, 6e-7});
  }
  {
    SCOPED_TRACE("margin");
    expect_close(download(d_margin), margin, {1e-38, 6e-7});
  }
  {
    SCOPED_TRACE("entropy");
    expect_close(download(d_entropy), entropy, {5e-7 + 8e-7 * std::log(static_cast<double>(vocab)), 0.0});
  }
  for (const Guarded* g : {&d_argmax, &d_max_prob, &d_entropy, &d_margin}) expect_guards_intact(*g);
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaVocabStats,
                         ::testing::Values(RowsCase{1, 1}, RowsCase{7, 7}, RowsCase{8, 33}, RowsCase{9, 1000},
                                           RowsCase{8, 50257}, RowsCase{9, 131072}, RowsCase{8, 262144},
                                           RowsCase{(1 << 20) + 3, 1}),
                         rows_case_name);

class CudaVocabStatsByHand : public GpuTest {};

// The non-finite rows of the CPU tests, spelled out: the GPU must produce the same NaNs and the same argmax.
TEST_F(CudaVocabStatsByHand, NonFiniteAndHugeRows) {
  const std::vector<float> v = {1,      kNaN,  2,       // NaN: argmax 1, NaN statistics
                                1,      kInf,  2,       // +inf: argmax 1, NaN statistics
                                -kInf,  -kInf, -kInf,   // only -inf: argmax 0, NaN statistics
                                0,      -kInf, 0,       // p = (1/2, 0, 1/2)
                                1e30f,  0,     -1e30f,  // all mass on the first
                                -3e38f, 0,     3e38f};  // the difference overflows to -inf: probability 0
  HostTensor logits = f32({6, 3}, v);
  const Shape shape{6};
  Guarded argmax = output(DType::I32, shape), max_prob = output(DType::F32, shape),
          entropy = output(DType::F32, shape), margin = output(DType::F32, shape);
  ops::vocab_stats(gpu(), upload(logits), {argmax, max_prob, entropy, margin});
  EXPECT_EQ(download(argmax).to_vector<int32_t>(), (std::vector<int32_t>{1, 1, 0, 0, 0, 2}));
  const std::vector<float> p = download(max_prob).to_vector<float>();
  const std::vector<float> h = download(entropy).to_vector<float>();
  const std::vector<float> m = download(margin).to_vector<float>();
  for (int row = 0; row < 3; ++row) {
    EXPECT_TRUE(std::isnan(p[row]) && std::isnan(h[row]) && std::isnan(m[row])) << "row " << row;
  }
  EXPECT_FLOAT_EQ(p[3], 0.5f);
  EXPECT_FLOAT_EQ(h[3], 0.6931471805599453f);
  EXPECT_EQ(m[3], 0.0f);
  for (int row = 4; row < 6; ++row) {
    EXPECT_EQ(p[row], 1.0f) << "row " << row;
    EXPECT_EQ(h[row], 0.0f) << "row " << row;
    EXPECT_EQ(m[row], 1.0f) << "row " << row;
  }
}

}  // namespace
}  // namespace dlm
