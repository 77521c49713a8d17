// Kernels launched to overlap the kernel queued before them (engine/backend/cuda/launch.cuh) wait for it
// before they touch memory: an op that overwrites the input of a sum still running (64 long rows, a block a
// row, every block running from the start; dlm's kernels allow the next kernel to start once their blocks
// have waited themselves) leaves the sum its original input. A build whose kernels skip the wait fails this
// (about 53 of the 67 million sums wrong on an H100). Without a device every test skips.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "engine/ops/elementwise.h"
#include "tests/gpu/device_checks.h"

namespace dlm {
namespace {

using namespace gpu_test;

constexpr int64_t kRows = 64, kWidth = int64_t{1} << 20;  // f32: 256 MB a tensor
constexpr int64_t kElements = kRows * kWidth;

// Small integers, so every sum below is exact.
std::vector<float> small_integers(int64_t count) {
  std::vector<float> out(static_cast<size_t>(count));
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(i % 97);
  return out;
}

DeviceTensor rows_of(float value) {
  return to_device(host_tensor(DType::F32, {kRows, kWidth}, std::vector<float>(kElements, value)));
}

int64_t count_unequal(const std::vector<float>& got, const std::vector<float>& want) {
  int64_t unequal = 0;
  for (size_t i = 0; i < want.size(); ++i) unequal += !(got[i] == want[i]);  // NaN counts as unequal
  return unequal;
}

TEST(CudaOverlappedLaunch, AnOpOverwritingTheInputOfTheOpBeforeItWaitsForIt) {
  DLM_SKIP_WITHOUT_GPU();
  const std::vector<float> a = small_integers(kElements), row = small_integers(kWidth);
  DeviceTensor device_a = to_device(host_tensor(DType::F32, {kRows, kWidth}, a));
  DeviceTensor device_row = to_device(host_tensor(DType::F32, {kWidth}, row));
  DeviceTensor sum = rows_of(0.0f), other = rows_of(-1.0f);
  ops::add(gpu(), device_a.tensor, device_row.tensor, sum.tensor);
  ops::add(gpu(), other.tensor, other.tensor, device_a.tensor);  // overwrites a while the sum may read it
  std::vector<float> want(a.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = a[i] + row[i % kWidth];
  EXPECT_EQ(count_unequal(values_of(to_host(sum.tensor)), want), 0) << "of " << kElements;
}

}  // namespace
}  // namespace dlm
