// RoPE frequencies and attention factors against transformers 5.17's LlamaRotaryEmbedding, for each rope
// type and spelling in tests/golden/parity/rope_tables.safetensors (tools/parity/transformers_parity.py).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>
#include <string>

#include "backbones/rope_scaling.h"
#include "engine/io/safetensors.h"

namespace dlm {
namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');) parts.push_back(part);
  return parts;
}

TEST(RopeTables, MatchTransformersForEveryRopeType) {
  const SafetensorsFile golden(std::string(DLM_GOLDEN_DIR) + "/parity/rope_tables.safetensors");
  const std::vector<std::string> cases = split(golden.metadata().at("cases"));
  ASSERT_GE(cases.size(), 8u);
  for (const std::string& name : cases) {
    const HfConfig config = HfConfig::parse(golden.metadata().at(name + ".config"), name);
    const int64_t head_dim =
        config.required<int64_t>("hidden_size") / config.required<int64_t>("num_attention_heads");
    const RopeScaling rope =
        read_rope_scaling(config, 10000.0, config.value_or<int64_t>("max_position_embeddings", 4096));
    const HostTensor inv_freq = rope.inv_freq(head_dim);
    const Tensor want = golden.tensor(name + ".inv_freq");
    ASSERT_EQ(inv_freq.tensor().numel(), want.numel()) << name;
    double worst = 0.0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      const double expected = want.data_as<float>()[i];
      const double got = inv_freq.data<float>()[i];
      worst = std::max(worst, std::abs(got - expected) / expected);
    }
    // f32 powf against torch's pow: a few ulp at most.
    EXPECT_LE(worst, 1e-6) << name;
    EXPECT_NEAR(rope.attention_factor(), golden.tensor(name + ".attention_factor").data_as<float>()[0], 1e-6)
        << name;
  }
}

}  // namespace
}  // namespace dlm
