// The CPU backend's element-wise ops (add, activations, gated units) and softmax through their front-ends.
// Expected values are worked out by hand (the numbers in comments) or, for the large odd-shaped cases, by a
// plain double-precision loop written here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "engine/core/half.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/softmax.h"
#include "tests/unit/dense_op_checks.h"

namespace dlm {
namespace {

using namespace dense_test;

// ---------------------------------------------------------------------------------------------- elementwise

TEST(Add, SameShapeAndRowBroadcast) {
  HostTensor a = f32({2, 3}, {1, 2, 3, 4, 5, 6});
  HostTensor out(DType::F32, {2, 3});
  ops::add(backend(), a, f32({2, 3}, {0.5f, 0.5f, 0.5f, -1, -1, -1}), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{1.5f, 2.5f, 3.5f, 3, 4, 5}));
  ops::add(backend(), a, f32({3}, {10, 20, 30}), out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{11, 22, 33, 14, 25, 36}));
}

TEST(Add, InPlaceIntoEitherOperandOnManyRows) {
  constexpr int64_t kRows = 1001;
  constexpr int64_t kWidth = 67;
  std::vector<float> av(kRows * kWidth);
  for (size_t i = 0; i < av.size(); ++i) av[i] = static_cast<float>(i);
  std::vector<float> bv(kWidth);
  for (int64_t j = 0; j < kWidth; ++j) bv[j] = -0.5f * static_cast<float>(j);
  HostTensor a = f32({kRows, kWidth}, av);
  ops::add(backend(), a, f32({kWidth}, bv), a);
  const float* got = a.data<float>();
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t j = 0; j < kWidth; ++j) {
      ASSERT_EQ(got[r * kWidth + j], static_cast<float>(r * kWidth + j) - 0.5f * static_cast<float>(j));
    }
  }
  HostTensor x = f32({2}, {1, 2});
  HostTensor y = f32({2}, {10, 20});
  ops::add(backend(), x, y, y);
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{11, 22}));
}

TEST(Add, RejectsShapesThatDoNotBroadcast) {
  HostTensor a = filled({2, 3}, 1.0f);
  HostTensor out(DType::F32, {2, 3});
  EXPECT_THROW(ops::add(backend(), a, filled({2}, 1.0f), out), Error);     // [2] is not a's last axis
  EXPECT_THROW(ops::add(backend(), a, filled({1, 3}, 1.0f), out), Error);  // only rank-1 b broadcasts
  EXPECT_THROW(ops::add(backend(), a, filled({3}, 1.0f), filled({3}, 0.0f)), Error);
  EXPECT_THROW(ops::add(backend(), a, i32({3}, {1, 2, 3}), out), Error);
}

TEST(Activations, SiluByHand) {
  // silu(v) = v / (1 + e^-v): 0, 0.73105858, -0.26894142, 19.999999959, -4.1223072e-8.
  HostTensor x = f32({5}, {0, 1, -1, 20, -20});
  HostTensor out(DType::F32, {5});
  ops::silu(backend(), x, out);
  std::vector<float> got = out.to_vector<float>();
  expect_near_all(got,
                  std::vector<double>{0, 0.7310585786300049, -0.2689414213699951, 19.999999958776925,
                                      -4.122307236380407e-08},
                  1e-6);
  EXPECT_NEAR(got[4], -4.122307236380407e-08, 1e-13);
}

TEST(Activations, GeluExactAndTanhByHand) {
  // exact: 0.5 v (1 + erf(v / sqrt 2)); tanh: 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))).
  HostTensor x = f32({4}, {1, -1, 3, -3});
  HostTensor out(DType::F32, {4});
  ops::gelu(backend(), x, GeluApproximation::None, out);
  expect_near_all(
      out.to_vector<float>(),
      std::vector<double>{0.8413447460685429, -0.15865525393145707, 2.99595030590511, -0.00404969409489031},
      1e-6);
  ops::gelu(backend(), x, GeluApproximation::Tanh, out);
  expect_near_all(out.to_vector<float>(),
                  std::vector<double>{0.8411919906082768, -0.15880800939172324, 2.996362607918227,
                                      -0.0036373920817729943},
                  1e-6);
}

TEST(Activations, InfAndNaNBehaveLikeTorch) {
  // torch (f32): silu(-inf) = NaN, silu(inf) = inf, gelu(-inf) = NaN, gelu(inf) = inf (both forms), NaN
  // stays NaN. silu(-100) = -100 / (1 + e^100) = -3.7e-42 (torch's f32 exp overflows and gives -0; either
  // is within f32 rounding of the true value). gelu(-100) is 0 to far below f32 resolution.
  HostTensor x = f32({4}, {-kInf, kInf, kNaN, -100});
  HostTensor out(DType::F32, {4});
  ops::silu(backend(), x, out);
  std::vector<float> s = out.to_vector<float>();
  EXPECT_TRUE(std::isnan(s[0]));
  EXPECT_EQ(s[1], kInf);
  EXPECT_TRUE(std::isnan(s[2]));
  EXPECT_LE(s[3], 0.0f);
  EXPECT_GT(s[3], -1e-41f);
  for (GeluApproximation approximation : {GeluApproximation::None, GeluApproximation::Tanh}) {
    ops::gelu(backend(), x, approximation, out);
    std::vector<float> g = out.to_vector<float>();
    EXPECT_TRUE(std::isnan(g[0]));
    EXPECT_EQ(g[1], kInf);
    EXPECT_TRUE(std::isnan(g[2]));
    EXPECT_EQ(g[3], 0.0f);
  }
}

TEST(Activations, GatedFormsMultiplyByUpInPlace) {
  // swiglu: silu([1, -1]) * [2, 3] = [1.46211716, -0.80682426]; geglu: gelu([1, -1]) * [2, 3].
  HostTensor gate = f32({2}, {1, -1});
  HostTensor up = f32({2}, {2, 3});
  HostTensor out(DType::F32, {2});
  ops::swiglu(backend(), gate, up, out);
  expect_near_all(out.to_vector<float>(),
                  std::vector<double>{2 * 0.7310585786300049, 3 * -0.2689414213699951}, 1e-6);
  ops::geglu(backend(), gate, up, GeluApproximation::None, out);
  expect_near_all(out.to_vector<float>(),
                  std::vector<double>{2 * 0.8413447460685429, 3 * -0.15865525393145707}, 1e-6);
  ops::geglu(backend(), gate, up, GeluApproximation::Tanh, up);
  expect_near_all(up.to_vector<float>(),
                  std::vector<double>{2 * 0.8411919906082768, 3 * -0.15880800939172324}, 1e-6);
}

TEST(Activations, ManyElementsMatchTheFormula) {
  constexpr int64_t kCount = 100003;
  std::vector<float> gv = random_values(kCount, 8, 6.0f);
  std::vector<float> uv = random_values(kCount, 9, 2.0f);
  HostTensor out(DType::F32, {kCount});
  ops::swiglu(backend(), f32({kCount}, gv), f32({kCount}, uv), out);
  const float* got = out.data<float>();
  for (int64_t i = 0; i < kCount; ++i) {
    const double g = gv[i];
    ASSERT_NEAR(got[i], g / (1 + std::exp(-g)) * uv[i], 1e-5) << i;
  }
  ops::geglu(backend(), f32({kCount}, gv), f32({kCount}, uv), GeluApproximation::None, out);
  for (int64_t i = 0; i < kCount; ++i) {
    const double g = gv[i];
    ASSERT_NEAR(got[i], 0.5 * g * (1 + std::erf(g / std::sqrt(2.0))) * uv[i], 1e-5) << i;
  }
}

TEST(Activations, GatedFormsTakeTheHalvesOfOneMatrix) {
  // gate and up as the column blocks of one [rows, 2 * width] matrix (a fused gate/up projection's output)
  // give what their contiguous copies give.
  constexpr int64_t kRows = 37, kWidth = 129;
  const std::vector<float> packed = random_values(kRows * 2 * kWidth, 10, 6.0f);
  HostTensor both = f32({kRows, 2 * kWidth}, packed);
  std::vector<float> gv, uv;
  for (int64_t r = 0; r < kRows; ++r) {
    gv.insert(gv.end(), packed.begin() + r * 2 * kWidth, packed.begin() + r * 2 * kWidth + kWidth);
    uv.insert(uv.end(), packed.begin() + r * 2 * kWidth + kWidth, packed.begin() + (r + 1) * 2 * kWidth);
  }
  const Tensor gate = both.tensor().slice(1, 0, kWidth);
  const Tensor up = both.tensor().slice(1, kWidth, 2 * kWidth);
  HostTensor got(DType::F32, {kRows, kWidth}), want(DType::F32, {kRows, kWidth});
  ops::swiglu(backend(), gate, up, got);
  ops::swiglu(backend(), f32({kRows, kWidth}, gv), f32({kRows, kWidth}, uv), want);
  EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
  ops::geglu(backend(), up, gate, GeluApproximation::Tanh, got);
  ops::geglu(backend(), f32({kRows, kWidth}, uv), f32({kRows, kWidth}, gv), GeluApproximation::Tanh, want);
  EXPECT_EQ(got.to_vector<float>(), want.to_vector<float>());
  // The output must not overlap a strided input, and a strided view must be rank 2 with contiguous rows.
  EXPECT_THROW(ops::swiglu(backend(), gate, up, both.tensor().slice(1, 0, kWidth)), Error);
  HostTensor cube = filled({2, 3, 4}, 1.0f);
  const Tensor strided_3d = cube.tensor().slice(2, 0, 2);
  EXPECT_THROW(ops::swiglu(backend(), strided_3d, strided_3d, HostTensor(DType::F32, {2, 3, 2})), Error);
  const Tensor columns = both.tensor().transpose(0, 1);
  EXPECT_THROW(ops::swiglu(backend(), columns, columns, HostTensor(DType::F32, {2 * kWidth, kRows})), Error);
}

TEST(Activations, RejectBadOperands) {
  HostTensor x = filled({2, 3}, 1.0f);
  EXPECT_THROW(ops::silu(backend(), x, filled({3, 2}, 0.0f)), Error);
  EXPECT_THROW(ops::gelu(backend(), i32({2}, {1, 2}), GeluApproximation::None, filled({2}, 0.0f)), Error);
  EXPECT_THROW(ops::swiglu(backend(), x, filled({2, 4}, 1.0f), filled({2, 3}, 0.0f)), Error);
  EXPECT_THROW(ops::geglu(backend(), x, x, GeluApproximation::Tanh, filled({6}, 0.0f)), Error);
}

// -------------------------------------------------------------------------------------------------- softmax

TEST(Softmax, ByHandAndShiftInvariant) {
  // softmax([1,2,3]) = e^k / (e + e^2 + e^3) = [0.09003057, 0.24472847, 0.66524096];
  // log_softmax = [1,2,3] - 3.40760596. Adding 1000 changes nothing (the max is subtracted first).
  HostTensor x = f32({2, 3}, {1, 2, 3, 1001, 1002, 1003});
  HostTensor out(DType::F32, {2, 3});
  ops::softmax(backend(), x, out);
  const std::vector<double> p = {0.09003057317038046, 0.24472847105479767, 0.6652409557748219};
  expect_near_all(out.to_vector<float>(), std::vector<double>{p[0], p[1], p[2], p[0], p[1], p[2]}, 1e-6);
  ops::log_softmax(backend(), x, out);
  const std::vector<double> lp = {-2.40760596444438, -1.4076059644443801, -0.40760596444438013};
  expect_near_all(out.to_vector<float>(), std::vector<double>{lp[0], lp[1], lp[2], lp[0], lp[1], lp[2]},
                  1e-5);
}

TEST(Softmax, InfAndNaNRowsBehaveLikeTorch) {
  // torch: [-inf, 0] -> [0, 1] (log: [-inf, 0]); a row with +inf, a row of only -inf, a row with NaN: NaN.
  HostTensor x = f32({4, 2}, {-kInf, 0, kInf, 0, -kInf, -kInf, kNaN, 0});
  for (bool log : {false, true}) {
    HostTensor out(DType::F32, {4, 2});
    if (log) {
      ops::log_softmax(backend(), x, out);
    } else {
      ops::softmax(backend(), x, out);
    }
    std::vector<float> got = out.to_vector<float>();
    EXPECT_EQ(got[0], log ? -kInf : 0.0f);
    EXPECT_EQ(got[1], log ? 0.0f : 1.0f);
    for (int i = 2; i < 8; ++i) EXPECT_TRUE(std::isnan(got[i])) << "log " << log << " index " << i;
  }
}

TEST(Softmax, OddShapeInPlaceMatchesDoubleReference) {
  constexpr int64_t kRows = 37;
  constexpr int64_t kWidth = 1031;
  std::vector<float> xv = random_values(kRows * kWidth, 10, 8.0f);
  std::vector<double> want(xv.size());
  std::vector<double> want_log(xv.size());
  for (int64_t r = 0; r < kRows; ++r) {
    const float* row = xv.data() + r * kWidth;
    double m = row[0];
    for (int64_t i = 0; i < kWidth; ++i) m = std::max(m, static_cast<double>(row[i]));
    double total = 0;
    for (int64_t i = 0; i < kWidth; ++i) total += std::exp(row[i] - m);
    for (int64_t i = 0; i < kWidth; ++i) {
      want[r * kWidth + i] = std::exp(row[i] - m) / total;
      want_log[r * kWidth + i] = row[i] - m - std::log(total);
    }
  }
  HostTensor x = f32({kRows, kWidth}, xv);
  ops::softmax(backend(), x, x);
  expect_near_all(x.to_vector<float>(), want, 1e-6);
  HostTensor y = f32({kRows, kWidth}, xv);
  ops::log_softmax(backend(), y, y);
  expect_near_all(y.to_vector<float>(), want_log, 1e-5 * 20);
}

TEST(Softmax, RejectsBadOperands) {
  HostTensor x = filled({2, 3}, 1.0f);
  EXPECT_THROW(ops::softmax(backend(), x, filled({3, 2}, 0.0f)), Error);
  EXPECT_THROW(ops::log_softmax(backend(), i32({3}, {1, 2, 3}), filled({3}, 0.0f)), Error);
}

// Ops that read an input while writing the output refuse to write over that input.

}  // namespace
}  // namespace dlm
