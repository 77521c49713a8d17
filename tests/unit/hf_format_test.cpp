// config.json of transformers' Llama / Qwen2 / Qwen3 classes read into a TransformerConfig: the defaults of
// the transformers config classes (transformers 5: configuration_llama.py, configuration_qwen2.py,
// configuration_qwen3.py), the bias and QK-norm layout of each attention class, and the refusals.
#include "backbones/hf_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Only the keys the reader requires, at the sizes of Llama-2-7B.
json minimal_config() {
  return {
      {"vocab_size", 32000},     {"hidden_size", 4096},       {"intermediate_size", 11008},
      {"num_hidden_layers", 32}, {"num_attention_heads", 32}, {"max_position_embeddings", 4096},
  };
}

TransformerConfig read(const json& config, HfAttentionStyle style) {
  return read_hf_transformer_config(HfConfig::parse(config.dump(), "config.json"), style);
}

std::string error_of(const json& config, HfAttentionStyle style) {
  return input_error_of([&] { read(config, style); });
}

constexpr HfAttentionStyle kStyles[] = {HfAttentionStyle::Llama, HfAttentionStyle::Qwen2,
                                        HfAttentionStyle::Qwen3};

TEST(HfFormat, RequiredKeysAreRead) {
  const TransformerConfig c = read(minimal_config(), HfAttentionStyle::Llama);
  EXPECT_EQ(c.vocab_size, 32000);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 11008);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.max_positions, 4096);
}

TEST(HfFormat, LlamaDefaults) {
  const TransformerConfig c = read(minimal_config(), HfAttentionStyle::Llama);
  EXPECT_EQ(c.num_kv_heads, 32) << "num_key_value_heads defaults to num_attention_heads";
  EXPECT_EQ(c.head_dim, 128) << "head_dim defaults to hidden_size / num_attention_heads";
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-6f);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.rope.type, RopeType::Default);
  EXPECT_EQ(c.rope.theta, 10000.0);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);
}

TEST(HfFormat, AbsentKvHeadsTakeEachConfigClassDefault) {
  json config = minimal_config();
  config["num_attention_heads"] = 64;
  config["head_dim"] = 64;
  EXPECT_EQ(read(config, HfAttentionStyle::Llama).num_kv_heads, 64);  // LlamaConfig: None, then the heads
  EXPECT_EQ(read(config, HfAttentionStyle::Qwen2).num_kv_heads, 32);  // Qwen2Config / Qwen3Config: 32
  EXPECT_EQ(read(config, HfAttentionStyle::Qwen3).num_kv_heads, 32);
}

TEST(HfFormat, NullKvHeadsMeansOnePerQueryHead) {
  for (HfAttentionStyle style : kStyles) {
    json config = minimal_config();
    config["head_dim"] = 128;
    config["num_key_value_heads"] = nullptr;
    EXPECT_EQ(read(config, style).num_kv_heads, 32);
  }
}

// Qwen3Config declares head_dim = 128, so a config.json without the key has heads of 128 whatever the
// hidden size; LlamaConfig and Qwen2's attention fall back to hidden_size / num_attention_heads.
TEST(HfFormat, AbsentHeadDimFollowsEachConfigClass) {
  json config = minimal_config();
  config["hidden_size"] = 1024;
  config["num_attention_heads"] = 16;
  config["num_key_value_heads"] = 16;
  EXPECT_EQ(read(config, HfAttentionStyle::Llama).head_dim, 64);
  EXPECT_EQ(read(config, HfAttentionStyle::Qwen2).head_dim, 64);
  EXPECT_EQ(read(config, HfAttentionStyle::Qwen3).head_dim, 128);
}

TEST(HfFormat, GivenValuesOverrideDefaults) {
  json config = minimal_config();
  config["hidden_size"] = 2048;
  config["num_attention_heads"] = 16;
  config["num_key_value_heads"] = 4;
  config["head_dim"] = 256;  // not hidden / heads (Qwen3 and Gemma-style configs)
  config["rms_norm_eps"] = 1e-5;
  config["tie_word_embeddings"] = true;
  config["rope_theta"] = 1000000.0;
  for (HfAttentionStyle style : kStyles) {
    const TransformerConfig c = read(config, style);
    EXPECT_EQ(c.num_kv_heads, 4);
    EXPECT_EQ(c.head_dim, 256);
    EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(c.rope.theta, 1000000.0);
  }
}

TEST(HfFormat, RopeScalingIsReadThrough) {
  json config = minimal_config();
  config["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};
  const TransformerConfig c = read(config, HfAttentionStyle::Llama);
  EXPECT_EQ(c.rope.type, RopeType::Linear);
  EXPECT_EQ(c.rope.factor, 2.0);
}

TEST(HfFormat, LlamaAttentionBiasCoversQkvAndOutput) {
  json config = minimal_config();
  config["attention_bias"] = true;
  TransformerConfig c = read(config, HfAttentionStyle::Llama);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
  EXPECT_FALSE(c.qk_norm);

  config["attention_bias"] = false;
  config["mlp_bias"] = true;
  c = read(config, HfAttentionStyle::Llama);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.mlp_bias);
}

TEST(HfFormat, Qwen2AlwaysBiasesQkvAndNeverTheOutput) {
  for (const json& bias : {json(nullptr), json(false), json(true)}) {
    json config = minimal_config();
    config["attention_bias"] = bias;  // not a Qwen2Config key: ignored
    config["mlp_bias"] = true;        // likewise
    const TransformerConfig c = read(config, HfAttentionStyle::Qwen2);
    EXPECT_TRUE(c.qkv_bias);
    EXPECT_FALSE(c.o_bias);
    EXPECT_FALSE(c.mlp_bias);
    EXPECT_FALSE(c.qk_norm);
  }
}

TEST(HfFormat, Qwen3HasQkNormAndAttentionBias) {
  json config = minimal_config();
  config["head_dim"] = 128;
  TransformerConfig c = read(config, HfAttentionStyle::Qwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);

  config["attention_bias"] = true;
  config["mlp_bias"] = true;  // not a Qwen3Config key: ignored
  c = read(config, HfAttentionStyle::Qwen3);
  EXPECT_TRUE(c.qk_norm);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_FALSE(c.mlp_bias);
}

TEST(HfFormat, RejectsActivationOtherThanSilu) {
  for (HfAttentionStyle style : kStyles) {
    json config = minimal_config();
    config["head_dim"] = 128;
    config["hidden_act"] = "gelu";
    EXPECT_THAT(error_of(config, style), AllOf(HasSubstr("config.json"), HasSubstr("hidden_act"),
                                               HasSubstr("'gelu'"), HasSubstr("not supported")));
    config["hidden_act"] = "silu";
    EXPECT_NO_THROW(read(config, style));
  }
}

TEST(HfFormat, RejectsSlidingWindow) {
  for (HfAttentionStyle style : kStyles) {
    json config = minimal_config();
    config["head_dim"] = 128;
    config["use_sliding_window"] = true;
    config["sliding_window"] = 4096;
    EXPECT_THAT(error_of(config, style),
                AllOf(HasSubstr("config.json"), HasSubstr("use_sliding_window"), HasSubstr("not supported")));
    config["use_sliding_window"] = false;  // Qwen2.5 configs carry sliding_window with the flag off
    EXPECT_NO_THROW(read(config, style));
  }
}

TEST(HfFormat, RejectsHeadsNotAMultipleOfKvHeads) {
  json config = minimal_config();
  config["num_key_value_heads"] = 5;
  EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
              AllOf(HasSubstr("config.json"), HasSubstr("32 attention heads"), HasSubstr("5 KV heads")));
}

TEST(HfFormat, RejectsHiddenSizeNotAMultipleOfHeadsWithoutHeadDim) {
  json config = minimal_config();
  config["hidden_size"] = 4000;
  config["num_attention_heads"] = 48;
  EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
              AllOf(HasSubstr("config.json"), HasSubstr("hidden_size 4000"),
                    HasSubstr("num_attention_heads 48"), HasSubstr("head_dim")));
  config["head_dim"] = 128;  // an explicit head size makes it well defined
  EXPECT_EQ(read(config, HfAttentionStyle::Llama).head_dim, 128);
}

TEST(HfFormat, RejectsNonPositiveSizes) {
  const std::pair<const char*, const char*> keys[] = {
      {"vocab_size", "vocabulary size"},
      {"hidden_size", "hidden size"},
      {"intermediate_size", "MLP size"},
      {"num_hidden_layers", "layer count"},
      {"num_key_value_heads", "KV head count"},
      {"head_dim", "head size"},
      {"max_position_embeddings", "context length"},
  };
  for (const auto& [key, what] : keys) {
    for (int value : {0, -8}) {
      json config = minimal_config();
      config["head_dim"] = 128;
      config[key] = value;
      EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
                  AllOf(HasSubstr("config.json"), HasSubstr(what), HasSubstr("must be positive"),
                        HasSubstr(std::to_string(value))))
          << key << " = " << value;
    }
  }
  json config = minimal_config();
  config["head_dim"] = 128;
  config["num_attention_heads"] = 0;
  EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
              AllOf(HasSubstr("config.json"), HasSubstr("head count must be positive")));
  config = minimal_config();
  config["num_attention_heads"] = 0;  // no head_dim either: must not divide by zero
  EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
              AllOf(HasSubstr("config.json"), HasSubstr("num_attention_heads 0")));
}

TEST(HfFormat, RejectsOddHeadSizeAndBadEpsilon) {
  json config = minimal_config();
  config["head_dim"] = 127;
  EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
              AllOf(HasSubstr("config.json"), HasSubstr("head size 127"), HasSubstr("even")));
  for (double eps : {0.0, -1e-6, 1e308}) {
    config = minimal_config();
    config["rms_norm_eps"] = eps;
    EXPECT_THAT(
        error_of(config, HfAttentionStyle::Llama),
        AllOf(HasSubstr("config.json"), HasSubstr("rms_norm_eps must be a positive number up to 1e30")))
        << eps;
  }
}

TEST(HfFormat, MissingKeysAreNamed) {
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "max_position_embeddings"}) {
    for (HfAttentionStyle style : kStyles) {
      json config = minimal_config();
      config["head_dim"] = 128;
      config.erase(key);
      EXPECT_THAT(error_of(config, style),
                  AllOf(HasSubstr("config.json"), HasSubstr(fmt::format("'{}'", key)), HasSubstr("missing")))
          << key;
      config[key] = nullptr;
      EXPECT_THAT(error_of(config, style), AllOf(HasSubstr(fmt::format("'{}'", key)), HasSubstr("null")))
          << key;
    }
  }
}

TEST(HfFormat, MistypedValuesAreNamed) {
  json config = minimal_config();
  config["num_attention_heads"] = "32";
  EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
              AllOf(HasSubstr("config.json"), HasSubstr("'num_attention_heads'"), HasSubstr("integer")));
  config = minimal_config();
  config["attention_bias"] = "yes";
  EXPECT_THAT(error_of(config, HfAttentionStyle::Llama),
              AllOf(HasSubstr("'attention_bias'"), HasSubstr("boolean")));
  config = minimal_config();
  config["hidden_size"] = 4096.5;
  EXPECT_THAT(error_of(config, HfAttentionStyle::Qwen2),
              AllOf(HasSubstr("'hidden_size'"), HasSubstr("integer")));
}

}  // namespace
}  // namespace dlm
