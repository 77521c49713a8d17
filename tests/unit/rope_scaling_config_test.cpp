// Reading RoPE settings from config.json as transformers 5 does
// (PreTrainedConfig.convert_rope_params_to_dict: `rope_parameters = rope_scaling or rope_parameters`, then
// rope_theta defaults to the top-level key): which keys are read, which spelling wins, and which settings are
// refused. The frequencies themselves are pinned to torch elsewhere.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "backbones/rope_scaling.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using nlohmann::json;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kDefaultTheta = 12345.0;
constexpr int64_t kMaxPositions = 4096;

RopeScaling read(const json& config) {
  return read_rope_scaling(HfConfig::parse(config.dump(), "config.json"), kDefaultTheta, kMaxPositions);
}

std::string error_of(const json& config) {
  return input_error_of([&] { read(config); });
}

TEST(RopeScalingConfig, NoRopeKeysGiveTheDefault) {
  const RopeScaling rope = read(json::object());
  EXPECT_EQ(rope.type, RopeType::Default);
  EXPECT_EQ(rope.theta, kDefaultTheta) << "the caller's default theta";
  EXPECT_EQ(rope.factor, 1.0);
  EXPECT_EQ(read({{"rope_scaling", nullptr}, {"rope_parameters", nullptr}}).type, RopeType::Default);
}

TEST(RopeScalingConfig, LegacyTopLevelTheta) {
  const RopeScaling rope = read({{"rope_theta", 500000.0}, {"rope_scaling", nullptr}});
  EXPECT_EQ(rope.type, RopeType::Default);
  EXPECT_EQ(rope.theta, 500000.0);
  EXPECT_EQ(read({{"rope_theta", 1000000}}).theta, 1000000.0) << "an integer theta";
}

TEST(RopeScalingConfig, V5RopeParameters) {
  const RopeScaling rope = read({{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}}});
  EXPECT_EQ(rope.type, RopeType::Default);
  EXPECT_EQ(rope.theta, 1000000.0);
}

TEST(RopeScalingConfig, ThetaInsideTheObjectWinsOverTopLevel) {
  EXPECT_EQ(
      read({{"rope_theta", 10000.0}, {"rope_parameters", {{"rope_type", "default"}, {"rope_theta", 7.0e5}}}})
          .theta,
      7.0e5);
  EXPECT_EQ(read({{"rope_theta", 10000.0},
                  {"rope_scaling", {{"rope_type", "linear"}, {"factor", 2.0}, {"rope_theta", 3.0e5}}}})
                .theta,
            3.0e5);
  // Without one inside, the top-level value holds.
  EXPECT_EQ(read({{"rope_theta", 2.0e5}, {"rope_parameters", {{"rope_type", "default"}}}}).theta, 2.0e5);
  EXPECT_EQ(read({{"rope_parameters", {{"rope_type", "default"}}}}).theta, kDefaultTheta);
}

TEST(RopeScalingConfig, LegacyRopeScalingWinsOverRopeParameters) {
  const json config = {
      {"rope_theta", 10000.0},
      {"rope_scaling", {{"rope_type", "linear"}, {"factor", 4.0}}},
      {"rope_parameters", {{"rope_type", "yarn"}, {"factor", 8.0}, {"rope_theta", 9.0e5}}},
  };
  const RopeScaling rope = read(config);
  EXPECT_EQ(rope.type, RopeType::Linear);
  EXPECT_EQ(rope.factor, 4.0);
  EXPECT_EQ(rope.theta, 10000.0) << "rope_parameters is not consulted once rope_scaling is present";
  // A null rope_scaling is absent: rope_parameters applies.
  json nulled = config;
  nulled["rope_scaling"] = nullptr;
  EXPECT_EQ(read(nulled).type, RopeType::Yarn);
  EXPECT_EQ(read(nulled).theta, 9.0e5);
}

TEST(RopeScalingConfig, LegacyTypeKeyIsAnAlias) {
  RopeScaling rope = read({{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}});
  EXPECT_EQ(rope.type, RopeType::Linear);
  EXPECT_EQ(rope.factor, 2.0);
  // rope_type wins when both are written.
  rope = read({{"rope_scaling", {{"type", "yarn"}, {"rope_type", "linear"}, {"factor", 2.0}}}});
  EXPECT_EQ(rope.type, RopeType::Linear);
  // Neither: the default type.
  EXPECT_EQ(read({{"rope_scaling", {{"factor", 2.0}}}}).type, RopeType::Default);
}

TEST(RopeScalingConfig, LinearReadsFactor) {
  const RopeScaling rope = read({{"rope_scaling", {{"rope_type", "linear"}, {"factor", 8}}}});
  EXPECT_EQ(rope.type, RopeType::Linear);
  EXPECT_EQ(rope.factor, 8.0);
}

// Llama 3.1's config.json.
TEST(RopeScalingConfig, Llama3ReadsItsKeys) {
  const json config = {
      {"rope_theta", 500000.0},
      {"max_position_embeddings", 131072},
      {"rope_scaling",
       {{"rope_type", "llama3"},
        {"factor", 8.0},
        {"low_freq_factor", 1.0},
        {"high_freq_factor", 4.0},
        {"original_max_position_embeddings", 8192}}},
  };
  RopeScaling rope = read(config);
  EXPECT_EQ(rope.type, RopeType::Llama3);
  EXPECT_EQ(rope.theta, 500000.0);
  EXPECT_EQ(rope.factor, 8.0);
  EXPECT_EQ(rope.low_freq_factor, 1.0);
  EXPECT_EQ(rope.high_freq_factor, 4.0);
  EXPECT_EQ(rope.original_max_positions, 8192);

  json other = config;
  other["rope_scaling"]["low_freq_factor"] = 2.0;
  other["rope_scaling"]["high_freq_factor"] = 16.0;
  rope = read(other);
  EXPECT_EQ(rope.low_freq_factor, 2.0);
  EXPECT_EQ(rope.high_freq_factor, 16.0);
}

TEST(RopeScalingConfig, OriginalContextFallsBackToTopLevelThenMaxPositions) {
  json config = {{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}}};
  EXPECT_EQ(read(config).original_max_positions, kMaxPositions);
  config["original_max_position_embeddings"] = 32768;
  EXPECT_EQ(read(config).original_max_positions, 32768);
  config["rope_scaling"]["original_max_position_embeddings"] = 16384;
  EXPECT_EQ(read(config).original_max_positions, 16384);
}

// Qwen2.5 / Qwen3 long-context settings.
TEST(RopeScalingConfig, YarnReadsItsKeys) {
  RopeScaling rope =
      read({{"rope_scaling",
             {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}}}});
  EXPECT_EQ(rope.type, RopeType::Yarn);
  EXPECT_EQ(rope.factor, 4.0);
  EXPECT_EQ(rope.original_max_positions, 32768);
  EXPECT_EQ(rope.beta_fast, 32.0);
  EXPECT_EQ(rope.beta_slow, 1.0);
  EXPECT_EQ(rope.mscale, 0.0);
  EXPECT_EQ(rope.mscale_all_dim, 0.0);
  EXPECT_EQ(rope.yarn_attention_factor, 0.0);
  EXPECT_TRUE(rope.truncate);

  rope = read({{"rope_parameters",
                {{"rope_type", "yarn"},
                 {"factor", 40},
                 {"rope_theta", 10000.0},
                 {"beta_fast", 16},
                 {"beta_slow", 2},
                 {"mscale", 0.707},
                 {"mscale_all_dim", 0.5},
                 {"attention_factor", 1.25},
                 {"truncate", false}}}});
  EXPECT_EQ(rope.factor, 40.0);
  EXPECT_EQ(rope.beta_fast, 16.0);
  EXPECT_EQ(rope.beta_slow, 2.0);
  EXPECT_EQ(rope.mscale, 0.707);
  EXPECT_EQ(rope.mscale_all_dim, 0.5);
  EXPECT_EQ(rope.yarn_attention_factor, 1.25);
  EXPECT_FALSE(rope.truncate);
}

TEST(RopeScalingConfig, YarnNullOrZeroBetasMeanTheDefaults) {
  for (const json& value : {json(nullptr), json(0), json(0.0)}) {
    const RopeScaling rope =
        read({{"rope_scaling",
               {{"rope_type", "yarn"}, {"factor", 2.0}, {"beta_fast", value}, {"beta_slow", value}}}});
    EXPECT_EQ(rope.beta_fast, 32.0);
    EXPECT_EQ(rope.beta_slow, 1.0);
  }
}

TEST(RopeScalingConfig, RejectsUnsupportedTypesNamingTheKey) {
  for (const char* type : {"dynamic", "longrope", "su", "mrope"}) {
    EXPECT_THAT(error_of({{"rope_scaling", {{"rope_type", type}, {"factor", 2.0}}}}),
                AllOf(HasSubstr("config.json"), HasSubstr("rope_scaling.rope_type"),
                      HasSubstr(fmt::format("'{}'", type)), HasSubstr("not supported"),
                      HasSubstr("default, linear, llama3, yarn")))
        << type;
    EXPECT_THAT(error_of({{"rope_parameters", {{"rope_type", type}, {"factor", 2.0}}}}),
                AllOf(HasSubstr("config.json"), HasSubstr("rope_parameters.rope_type"),
                      HasSubstr(fmt::format("'{}'", type))))
        << type;
  }
  // The legacy spelling is checked as strictly.
  EXPECT_THAT(error_of({{"rope_scaling", {{"type", "dynamic"}, {"factor", 2.0}}}}),
              AllOf(HasSubstr("config.json"), HasSubstr("'dynamic'"), HasSubstr("not supported")));
}

TEST(RopeScalingConfig, RejectsPartialRotaryFactor) {
  EXPECT_THAT(
      error_of({{"partial_rotary_factor", 0.5}}),
      AllOf(HasSubstr("config.json"), HasSubstr("partial_rotary_factor 0.5"), HasSubstr("not supported")));
  EXPECT_THAT(error_of({{"rope_parameters", {{"rope_type", "default"}, {"partial_rotary_factor", 0.25}}}}),
              AllOf(HasSubstr("config.json"), HasSubstr("partial_rotary_factor 0.25")));
  // The object's value wins over the top-level one, either way.
  EXPECT_THAT(error_of({{"partial_rotary_factor", 1.0},
                        {"rope_scaling",
                         {{"rope_type", "linear"}, {"factor", 2.0}, {"partial_rotary_factor", 0.5}}}}),
              HasSubstr("partial_rotary_factor 0.5"));
  EXPECT_NO_THROW(read({{"partial_rotary_factor", 0.5},
                        {"rope_parameters", {{"rope_type", "default"}, {"partial_rotary_factor", 1.0}}}}));
  EXPECT_NO_THROW(read({{"partial_rotary_factor", 1.0}}));
}

TEST(RopeScalingConfig, RejectsBadFactorsNamingTheKey) {
  for (const char* type : {"linear", "llama3", "yarn"}) {
    json config = {
        {"rope_scaling", {{"rope_type", type}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}}}};
    EXPECT_THAT(error_of(config),
                AllOf(HasSubstr("config.json"), HasSubstr("'rope_scaling.factor'"), HasSubstr("missing")))
        << type;
    for (double factor : {0.0, -2.0}) {
      config["rope_scaling"]["factor"] = factor;
      EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr("rope_scaling.factor"),
                                          HasSubstr("must be a positive number")))
          << type << " " << factor;
    }
    config["rope_scaling"]["factor"] = "4";
    EXPECT_THAT(error_of(config), AllOf(HasSubstr("'rope_scaling.factor'"), HasSubstr("a number"))) << type;
  }
  EXPECT_THAT(error_of({{"rope_parameters", {{"rope_type", "linear"}, {"factor", 0.0}}}}),
              HasSubstr("rope_parameters.factor must be a positive number"));
}

TEST(RopeScalingConfig, RejectsBadLlama3Settings) {
  const json good = {{"rope_scaling",
                      {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}}}};
  for (const char* key : {"low_freq_factor", "high_freq_factor"}) {
    json config = good;
    config["rope_scaling"].erase(key);
    EXPECT_THAT(error_of(config),
                AllOf(HasSubstr("config.json"), HasSubstr(fmt::format("'rope_scaling.{}'", key)),
                      HasSubstr("missing")));
    config["rope_scaling"][key] = -1.0;
    EXPECT_THAT(error_of(config), AllOf(HasSubstr(fmt::format("rope_scaling.{}", key)),
                                        HasSubstr("must be a positive number")));
  }
  json config = good;
  config["rope_scaling"]["high_freq_factor"] = 1.0;
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("config.json"), HasSubstr("high_freq_factor (1)"),
                                      HasSubstr("low_freq_factor (1)")));
  config = good;
  config["rope_scaling"]["original_max_position_embeddings"] = 0;
  EXPECT_THAT(error_of(config), AllOf(HasSubstr("rope_scaling.original_max_position_embeddings"),
                                      HasSubstr("must be a positive number")));
}

TEST(RopeScalingConfig, RejectsBadYarnSettings) {
  for (const char* key : {"beta_fast", "beta_slow", "attention_factor", "mscale", "mscale_all_dim"}) {
    for (double bad : {-1.0, 1e308}) {
      EXPECT_THAT(error_of({{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}, {key, bad}}}}),
                  AllOf(HasSubstr("config.json"), HasSubstr(fmt::format("rope_scaling.{}", key)),
                        HasSubstr("must be a positive number")))
          << key << " " << bad;
    }
  }
  EXPECT_THAT(
      error_of({{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}, {"attention_factor", 0.0}}}}),
      HasSubstr("rope_scaling.attention_factor must be a positive number"));
  EXPECT_THAT(error_of({{"rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}, {"truncate", "no"}}}}),
              AllOf(HasSubstr("'rope_scaling.truncate'"), HasSubstr("boolean")));
}

TEST(RopeScalingConfig, RejectsBadTheta) {
  for (double theta : {0.0, -10000.0, 1.0, 1e31}) {
    EXPECT_THAT(error_of({{"rope_theta", theta}}),
                AllOf(HasSubstr("config.json"), HasSubstr("rope_theta must be greater than 1")));
    EXPECT_THAT(error_of({{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", theta}}}}),
                AllOf(HasSubstr("config.json"), HasSubstr("rope_theta must be greater than 1")));
  }
  EXPECT_THAT(error_of({{"rope_theta", "10000"}}), AllOf(HasSubstr("'rope_theta'"), HasSubstr("a number")));
}

TEST(RopeScalingConfig, RejectsNonObjects) {
  EXPECT_THAT(error_of({{"rope_scaling", "linear"}}),
              AllOf(HasSubstr("config.json"), HasSubstr("'rope_scaling'"), HasSubstr("must be an object")));
  EXPECT_THAT(
      error_of({{"rope_parameters", 2.0}}),
      AllOf(HasSubstr("config.json"), HasSubstr("'rope_parameters'"), HasSubstr("must be an object")));
  EXPECT_THAT(error_of({{"rope_scaling", {{"rope_type", 3}}}}),
              AllOf(HasSubstr("'rope_scaling.rope_type'"), HasSubstr("a string")));
}

TEST(RopeScalingConfig, TypeNames) {
  EXPECT_EQ(rope_type_name(RopeType::Default), "default");
  EXPECT_EQ(rope_type_name(RopeType::Linear), "linear");
  EXPECT_EQ(rope_type_name(RopeType::Llama3), "llama3");
  EXPECT_EQ(rope_type_name(RopeType::Yarn), "yarn");
}

}  // namespace
}  // namespace dlm
