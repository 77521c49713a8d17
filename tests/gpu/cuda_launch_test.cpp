// Kernels launched to overlap the kernel queued before them (engine/backend/cuda/launch.cuh) wait for it
// before they touch memory. Each case queues an op right after one long enough to still be running (a
// few hundred microseconds): the op reads the earlier one's finished output, not what that memory held
// before, and an op overwriting the earlier one's input leaves it its original input. dlm's kernels let the
// next kernel start once all their blocks run and have waited themselves, so the sharpest case follows a
// sum of few, long rows (a row a block, every block running from the start); a sum after a cuBLASLt product
// is the common one. Without a device every test skips.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/ops/linear.h"
#include "tests/gpu/device_checks.h"

namespace dlm {
namespace {

using namespace gpu_test;

constexpr int64_t kRows = 64, kWidth = int64_t{1} << 20;  // f32: 64 blocks, a row each, move 512 MB
constexpr int64_t kElements = kRows * kWidth;

// Small integers, so every sum below is exact.
std::vector<float> small_integers(int64_t count) {
  std::vector<float> out(static_cast<size_t>(count));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(i % 97);
  return out;
}

int64_t count_unequal(const std::vector<float>& got, const std::vector<float>& want) {
  int64_t unequal = 0;
  for (size_t i = 0; i < want.size(); ++i) unequal += !(got[i] == want[i]);  // NaN counts as unequal
  return unequal;
}

// a + row, where a is [kRows, kWidth] and row one row of kWidth: both small integers.
struct RowSum {
  std::vector<float> a = small_integers(kElements), row = small_integers(kWidth);
  DeviceTensor device_a = to_device(host_tensor(DType::F32, {kRows, kWidth}, a));
  DeviceTensor device_row = to_device(host_tensor(DType::F32, {kWidth}, row));

  std::vector<float> expected(float times) const {
    std::vector<float> out(a.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = times * (a[i] + row[i % kWidth]);
    return out;
  }
};

DeviceTensor filled(float value) {
  return to_device(host_tensor(DType::F32, {kRows, kWidth}, std::vector<float>(kElements, value)));
}

TEST(CudaOverlappedLaunch, AnOpReadsTheFinishedOutputOfTheOpBeforeIt) {
  DLM_SKIP_WITHOUT_GPU();
  RowSum sum;
  DeviceTensor first = filled(kNaN), doubled = filled(kNaN);
  ops::add(gpu(), sum.device_a.tensor, sum.device_row.tensor, first.tensor);
  ops::add(gpu(), first.tensor, first.tensor, doubled.tensor);
  EXPECT_EQ(count_unequal(values_of(to_host(doubled.tensor)), sum.expected(2.0f)), 0) << "of " << kElements;
}

TEST(CudaOverlappedLaunch, AnOpOverwritingTheInputOfTheOpBeforeItWaitsForIt) {
  DLM_SKIP_WITHOUT_GPU();
  RowSum sum;
  DeviceTensor first = filled(0.0f), other = filled(-1.0f);
  ops::add(gpu(), sum.device_a.tensor, sum.device_row.tensor, first.tensor);
  ops::add(gpu(), other.tensor, other.tensor, sum.device_a.tensor);  // overwrites a while the sum may read it
  EXPECT_EQ(count_unequal(values_of(to_host(first.tensor)), sum.expected(1.0f)), 0) << "of " << kElements;
}

TEST(CudaOverlappedLaunch, AnOpAfterAProductReadsItsFinishedOutput) {
  DLM_SKIP_WITHOUT_GPU();
  constexpr int64_t rows = 4096, inner = 8192, outputs = 4096;  // 275 GFLOP
  DeviceTensor x = to_device(host_tensor(DType::BF16, {rows, inner}, uniform_values(rows * inner, 1)));
  DeviceTensor w = to_device(host_tensor(DType::BF16, {outputs, inner}, uniform_values(outputs * inner, 2)));
  const std::vector<float> nan(static_cast<size_t>(rows * outputs), kNaN);
  DeviceTensor y = to_device(host_tensor(DType::BF16, {rows, outputs}, nan));
  DeviceTensor doubled = to_device(host_tensor(DType::BF16, {rows, outputs}, nan));
  ops::linear(gpu(), x.tensor, w.tensor, std::nullopt, y.tensor);
  ops::add(gpu(), y.tensor, y.tensor, doubled.tensor);
  std::vector<float> want = values_of(to_host(y.tensor));
  for (float& v : want) v *= 2.0f;  // exact in bf16
  EXPECT_EQ(count_unequal(values_of(to_host(doubled.tensor)), want), 0) << "of " << want.size();
}

}  // namespace
}  // namespace dlm
