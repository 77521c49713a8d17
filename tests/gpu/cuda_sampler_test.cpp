// End to end on the CUDA backend: every golden decoding case of tests/golden/samplers/cases.json, with the
// model loaded on the GPU (f32 activations), reproduces the reference's tokens and forward counts at
// temperature 0, decoded together, two rows at a time and alone, exactly as the CPU parity test runs it
// (tests/parity/sampler_golden.h). The reference drew its prompts so that no decision is closer than 1e-6
// (a case's min_gap; 2.5e-6 at the least in these cases). The GPU's logits differ from the CPU's by <= 2e-6
// at logit scale 1 (cuda_transformer_test.cpp), and the probabilities most rules compare by less than that
// times the largest probability, so only an unlucky near-tie could fall the other way: none does, and the
// tokens must match exactly. The bf16 checkpoints are decoded with bf16 activations as well (below). Without
// a device every test skips.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "engine/backend/cuda/cuda_backend.h"
#include "engine/backend/cuda/cuda_device.h"
#include "tests/gpu/shared_gpu.h"
#include "tests/parity/sampler_golden.h"

namespace dlm {
namespace {

using gpu_test::gpu;

class CudaSamplerGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaSamplerGolden, ReproducesTheReferenceTokensAndForwardCounts) {
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  const nlohmann::json& c = golden::find_case(GetParam());
  ModelLoadOptions options;
  options.precision = ActivationPrecision::F32;
  golden::expect_reference_decoding(c, golden::prepare(c, gpu(), options), gpu());
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaSamplerGolden, ::testing::ValuesIn(golden::case_names()),
                         [](const auto& info) { return info.param; });

// The cases on bf16 checkpoints (qwen3, sdar) with the bf16 activations they get by default on CUDA. bf16
// moves these models' logits by up to 2.1e-2 of the logit scale, ~0.1 (cuda_transformer_test.cpp): more than
// every reference gap of the sdar cases (1e-4 to 1.2e-2), so some of their decisions may fall the other way.
// The requests that do, on an H200, are listed here with their reference min_gap; each must still decode
// the same way together, two rows at a time and alone. Every other request must give the reference's tokens.
struct NearTie {
  const char* name;
  size_t request;
  double min_gap;  // as cases.json records it
};

const NearTie kBf16NearTies[] = {
    {"sdar_schedule_steps4", 0, 1.01e-4}, {"sdar_schedule_steps2", 0, 3.62e-4},
    {"sdar_schedule_steps2", 1, 1.97e-3}, {"sdar_dynamic", 1, 2.69e-4},
    {"sdar_dynamic", 2, 9.73e-4},         {"sdar_entropy_bound", 1, 6.18e-3},
    {"sdar_entropy_bound", 2, 1.15e-2},   {"sdar_stop_early", 2, 7.66e-4},
};

std::vector<std::string> bf16_case_names() {
  std::vector<std::string> names;
  for (const std::string& name : golden::case_names()) {
    const std::string model = golden::find_case(name)["model"].get<std::string>();
    if (model == "qwen3" || model == "sdar") names.push_back(name);
  }
  return names;
}

class CudaSamplerGoldenBf16 : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaSamplerGoldenBf16, ReproducesTheReferenceTokensOutsideTheListedNearTies) {
  const cuda::DeviceProbe probe = cuda::probe_devices();
  if (probe.count == 0) GTEST_SKIP() << "no CUDA device: " << probe.reason;
  const nlohmann::json& c = golden::find_case(GetParam());
  std::set<size_t> near_ties;
  for (const NearTie& tie : kBf16NearTies) {
    if (GetParam() != tie.name) continue;
    EXPECT_EQ(c["requests"][tie.request]["min_gap"].get<double>(), tie.min_gap)
        << "the listed gap is the case's";
    near_ties.insert(tie.request);
  }
  golden::expect_reference_decoding(c, golden::prepare(c, gpu()), gpu(), near_ties);
}

INSTANTIATE_TEST_SUITE_P(Golden, CudaSamplerGoldenBf16, ::testing::ValuesIn(bf16_case_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dlm
