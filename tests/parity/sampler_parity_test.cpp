// Sampler parity: every decoding method reproduces, token for token at temperature 0, the golden sequences
// of the reference implementations in tools/reference (torch, written from the published descriptions),
// run on the tiny parity checkpoints of tests/golden/parity. Each case's requests are decoded together, each
// alone, and two rows at a time (so freed rows are refilled mid-run): the tokens and the forward counts must
// match the reference's in all three, which is also the batch-invariance check (sampler_golden.h).
#include <gtest/gtest.h>

#include <string>

#include "engine/backend/cpu/cpu_backend.h"
#include "tests/parity/sampler_golden.h"

namespace dlm {
namespace {

class SamplerParity : public ::testing::TestWithParam<std::string> {};

TEST_P(SamplerParity, ReproducesTheReferenceTokensAndForwardCounts) {
  const nlohmann::json& c = golden::find_case(GetParam());
  CpuBackend backend(2);
  golden::expect_reference_decoding(c, golden::prepare(c, backend), backend);
}

INSTANTIATE_TEST_SUITE_P(Golden, SamplerParity, ::testing::ValuesIn(golden::case_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace dlm
