// The generation run config (engine/io/generation_config.h): its defaults, every key and spelling, the range
// and consistency checks with the key they name, and the resolved config's YAML, which reads back unchanged.
#include "engine/io/generation_config.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "engine/core/error.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

TEST(GenerationConfig, DefaultsAreLladaReferenceSettings) {
  GenerationConfig config = parse_generation_config("", "run.yaml");
  EXPECT_EQ(config.model, "");
  EXPECT_EQ(config.output, "");
  EXPECT_EQ(config.seed, 0u);
  EXPECT_EQ(config.sampler.gen_length, 128);
  EXPECT_EQ(config.sampler.steps, 128);
  EXPECT_EQ(config.sampler.block_length, 0) << "0: the method's default (32 for LLaDA's 128 tokens)";
  EXPECT_EQ(config.sampler.temperature, 0.0);
  EXPECT_EQ(config.sampler.remasking, Remasking::LowConfidence);
  EXPECT_EQ(config.sampler, SamplingConfig{});
  EXPECT_EQ(config.sampler.method, Method::Auto);
  EXPECT_EQ(config.sampler.commit, CommitRule::Schedule);
  EXPECT_EQ(config.sampler.cache, CacheMode::None);
  EXPECT_TRUE(config.sampler.stop_early);
  EXPECT_EQ(find_problem(SamplingConfig{}), std::nullopt);
}

TEST(GenerationConfig, ReadsEveryKey) {
  GenerationConfig config = parse_generation_config(R"(
model: models/tiny
prompts: prompts.jsonl
output: out.jsonl
seed: 1234
sampler:
  gen_length: 64
  steps: 16
  block_length: 16
  temperature: 0.7
  remasking: random
)",
                                                    "run.yaml");
  EXPECT_EQ(config.model, "models/tiny");
  EXPECT_EQ(config.prompts, "prompts.jsonl");
  EXPECT_EQ(config.output, "out.jsonl");
  EXPECT_EQ(config.seed, 1234u);
  EXPECT_EQ(config.sampler.gen_length, 64);
  EXPECT_EQ(config.sampler.steps, 16);
  EXPECT_EQ(config.sampler.block_length, 16);
  EXPECT_EQ(config.sampler.temperature, 0.7);
  EXPECT_EQ(config.sampler.remasking, Remasking::Random);

  // The new keys, each set to something other than its default.
  SamplingConfig llada = parse_generation_config(R"(
sampler:
  method: llada
  commit: threshold
  threshold: 0.75
  factor: 2.5
  entropy_bound: 0.3
  cache: dual
  suppress_eos: true
  suppress_eos_confidence: true
  eps: 0.01
  alg_temp: 0.5
  top_p: 0.9
  top_k: 50
  stop_early: false
)",
                                                 "run.yaml")
                             .sampler;
  EXPECT_EQ(llada.method, Method::Llada);
  EXPECT_EQ(llada.commit, CommitRule::Threshold);
  EXPECT_EQ(llada.threshold, 0.75);
  EXPECT_EQ(llada.factor, 2.5);
  EXPECT_EQ(llada.entropy_bound, 0.3);
  EXPECT_EQ(llada.cache, CacheMode::Dual);
  EXPECT_TRUE(llada.suppress_eos);
  EXPECT_TRUE(llada.suppress_eos_confidence);
  EXPECT_EQ(llada.eps, 0.01);
  EXPECT_EQ(llada.alg_temp, 0.5);
  EXPECT_EQ(llada.top_p, 0.9);
  EXPECT_EQ(llada.top_k, 50);
  EXPECT_FALSE(llada.stop_early);

  SamplingConfig guided = parse_generation_config("sampler:\n  cfg_scale: 1.5\n", "run.yaml").sampler;
  EXPECT_EQ(guided.cfg_scale, 1.5);

  SamplingConfig block = parse_generation_config(R"(
sampler:
  method: block_diffusion
  block_length: 0
  sub_block_length: 8
  steps: 4
  commit: dynamic
)",
                                                 "run.yaml")
                             .sampler;
  EXPECT_EQ(block.method, Method::BlockDiffusion);
  EXPECT_EQ(block.block_length, 0);
  EXPECT_EQ(block.sub_block_length, 8);
  EXPECT_EQ(block.commit, CommitRule::Dynamic);

  SamplingConfig ar = parse_generation_config(R"(
sampler:
  method: autoregressive
  gen_length: 100
  min_p: 0.05
  repetition_penalty: 1.1
  stop_strings: ["\n\n", "User:"]
)",
                                              "run.yaml")
                          .sampler;
  EXPECT_EQ(ar.method, Method::Autoregressive);
  EXPECT_EQ(ar.gen_length, 100) << "block_length does not apply to autoregressive decoding";
  EXPECT_EQ(ar.min_p, 0.05);
  EXPECT_EQ(ar.repetition_penalty, 1.1);
  EXPECT_EQ(ar.stop_strings, (std::vector<std::string>{"\n\n", "User:"}));
}

TEST(GenerationConfig, EnumSpellings) {
  auto sampler = [](const std::string& lines) {
    return parse_generation_config("sampler:\n" + lines, "run.yaml").sampler;
  };
  EXPECT_EQ(sampler("  method: auto\n").method, Method::Auto);
  EXPECT_EQ(sampler("  method: llada\n").method, Method::Llada);
  EXPECT_EQ(sampler("  method: dream\n").method, Method::Dream);
  EXPECT_EQ(sampler("  method: block_diffusion\n").method, Method::BlockDiffusion);
  EXPECT_EQ(sampler("  method: autoregressive\n").method, Method::Autoregressive);

  EXPECT_EQ(sampler("  remasking: low_confidence\n").remasking, Remasking::LowConfidence);
  EXPECT_EQ(sampler("  remasking: random\n").remasking, Remasking::Random);
  EXPECT_EQ(sampler("  remasking: margin\n").remasking, Remasking::Margin);
  EXPECT_EQ(sampler("  remasking: entropy\n").remasking, Remasking::Entropy);
  EXPECT_EQ(sampler("  method: dream\n  remasking: origin\n").remasking, Remasking::Origin);
  // Dream's names for the same policies.
  EXPECT_EQ(sampler("  remasking: maskgit_plus\n").remasking, Remasking::LowConfidence);
  EXPECT_EQ(sampler("  remasking: topk_margin\n").remasking, Remasking::Margin);
  EXPECT_EQ(sampler("  method: dream\n  remasking: topk_margin\n").remasking, Remasking::Margin);

  EXPECT_EQ(sampler("  commit: schedule\n").commit, CommitRule::Schedule);
  EXPECT_EQ(sampler("  commit: threshold\n").commit, CommitRule::Threshold);
  EXPECT_EQ(sampler("  commit: factor\n").commit, CommitRule::Factor);
  EXPECT_EQ(sampler("  method: block_diffusion\n  commit: dynamic\n").commit, CommitRule::Dynamic);
  EXPECT_EQ(sampler("  commit: entropy_bound\n").commit, CommitRule::EntropyBound);

  EXPECT_EQ(sampler("  cache: none\n").cache, CacheMode::None);
  EXPECT_EQ(sampler("  method: llada\n  cache: prefix\n").cache, CacheMode::Prefix);
  EXPECT_EQ(sampler("  method: dream\n  cache: dual\n").cache, CacheMode::Dual);

  auto error = [](const std::string& lines) {
    return input_error_of([&] { parse_generation_config("sampler:\n" + lines, "run.yaml"); });
  };
  EXPECT_EQ(error("  method: sdar\n"),
            "run.yaml: sampler.method: expected one of auto, llada, dream, block_diffusion, autoregressive; "
            "got 'sdar' (line 2)");
  EXPECT_EQ(error("  commit: greedy\n"),
            "run.yaml: sampler.commit: expected one of schedule, threshold, factor, dynamic, entropy_bound; "
            "got 'greedy' (line 2)");
  EXPECT_EQ(error("  cache: full\n"),
            "run.yaml: sampler.cache: expected one of none, prefix, dual; got 'full' (line 2)");
  EXPECT_EQ(error("  stop_strings: stop\n"),
            "run.yaml: sampler.stop_strings: expected a sequence, got 'stop' (line 2)");
  EXPECT_EQ(error("  suppress_eos: 1\n"),
            "run.yaml: sampler.suppress_eos: expected true or false, got '1' (line 2)");
}

TEST(GenerationConfig, RejectsBadValues) {
  auto error = [](const std::string& text) {
    return input_error_of([&] { parse_generation_config(text, "run.yaml"); });
  };
  EXPECT_EQ(error("sampler:\n  steps: abc\n"),
            "run.yaml: sampler.steps: expected an integer, got 'abc' (line 2)");
  EXPECT_EQ(error("sampler:\n  stepz: 4\n"),
            "run.yaml: unknown key 'sampler.stepz' (line 2; known keys: alg_temp, block_length, cache, "
            "cfg_scale, commit, entropy_bound, eps, factor, gen_length, method, min_p, remasking, "
            "repetition_penalty, steps, stop_early, stop_strings, sub_block_length, suppress_eos, "
            "suppress_eos_confidence, temperature, threshold, top_k, top_p)");
  EXPECT_EQ(error("modle: x\n"),
            "run.yaml: unknown key 'modle' (line 1; known keys: model, output, prompts, sampler, seed)");
  EXPECT_EQ(error("sampler:\n  remasking: confidence\n"),
            "run.yaml: sampler.remasking: expected one of low_confidence, random, margin, entropy, origin, "
            "maskgit_plus, topk_margin; got 'confidence' (line 2)");
  EXPECT_EQ(error("sampler:\n  steps: 0\n"), "run.yaml: sampler.steps: must be at least 1, got 0 (line 2)");
  EXPECT_EQ(error("sampler:\n  temperature: -0.5\n"),
            "run.yaml: sampler.temperature: must be 0 (greedy) or a number in [1e-06, 1e+06], got -0.5 "
            "(line 2)");
  EXPECT_EQ(error("sampler:\n  method: llada\n  gen_length: 128\n  block_length: 48\n"),
            "run.yaml: sampler.block_length: must divide gen_length (128), got 48 (line 4)");
  // 128 / 32 = 4 blocks: 10 steps cannot be split evenly.
  EXPECT_EQ(
      error("sampler:\n  method: llada\n  block_length: 32\n  steps: 10\n"),
      "run.yaml: sampler.steps: must be a multiple of the number of blocks (gen_length / block_length = 4), "
      "got 10 (line 4)");
  // LLaDA's block 0 is 32 when that divides gen_length.
  EXPECT_EQ(
      error("sampler:\n  method: llada\n  steps: 10\n"),
      "run.yaml: sampler.steps: must be a multiple of the number of blocks (gen_length / block_length = 4, "
      "block_length 0 being 32), got 10 (line 3)");
  // A problem caused by a default is located at the section: gen_length 96 leaves 3 blocks for 128 steps.
  EXPECT_EQ(
      error("sampler:\n  method: llada\n  gen_length: 96\n"),
      "run.yaml: sampler.steps: must be a multiple of the number of blocks (gen_length / block_length = 3, "
      "block_length 0 being 32), got 128 (line 1)");
  // Auto's block 0 depends on the model: checked once the method is resolved.
  EXPECT_NO_THROW(parse_generation_config("sampler:\n  steps: 10\n", "run.yaml"));
  EXPECT_EQ(error("seed: -4\n"), "run.yaml: seed: expected a non-negative integer, got '-4' (line 1)");
  EXPECT_EQ(error("model: [a]\n"), "run.yaml: model: expected a string, got a sequence (line 1)");
}

TEST(GenerationConfig, ValidateNamesTheSource) {
  SamplingConfig sampler;
  EXPECT_NO_THROW(validate(sampler, "flags"));
  sampler.block_length = -1;
  EXPECT_EQ(input_error_of([&] { validate(sampler, "command line"); }),
            "command line: sampler.block_length: must be at least 0 (0: the method's default), got -1");
}

// One failing case per rule of find_problem: the setting, the key the problem names and its message.
TEST(GenerationConfig, FindProblemNamesTheKey) {
  struct Case {
    std::function<void(SamplingConfig&)> set;
    std::string_view key;
    std::string message;
  };
  const Case cases[] = {
      // The schedule.
      {[](SamplingConfig& s) { s.gen_length = 0; }, "gen_length", "must be at least 1, got 0"},
      {[](SamplingConfig& s) { s.block_length = -1; }, "block_length",
       "must be at least 0 (0: the method's default), got -1"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.block_length = -1;
       },
       "block_length", "must be at least 0 (0: 32 when that divides gen_length, else gen_length), got -1"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.block_length = 48;
       },
       "block_length", "must divide gen_length (128), got 48"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.block_length = 32;
         s.steps = 10;
       },
       "steps", "must be a multiple of the number of blocks (gen_length / block_length = 4), got 10"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.steps = 10;
       },
       "steps",
       "must be a multiple of the number of blocks (gen_length / block_length = 4, block_length 0 being 32), "
       "got "
       "10"},
      {[](SamplingConfig& s) { s.steps = 0; }, "steps", "must be at least 1, got 0"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.block_length = -1;
       },
       "block_length", "must be at least 0 (0: the model's block size), got -1"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.steps = 0;
       },
       "steps", "must be at least 1, got 0"},
      {[](SamplingConfig& s) {
         s.method = Method::Dream;
         s.block_length = -2;
       },
       "block_length", "must be at least 0, got -2"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.sub_block_length = -1;
       },
       "sub_block_length", "must be at least 0 (0: no sub-blocks), got -1"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.block_length = 32;
         s.sub_block_length = 5;
       },
       "sub_block_length", "must divide block_length (32), got 5"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.sub_block_length = 8;
       },
       "sub_block_length", "needs method block_diffusion, got method llada"},
      // The token sampler.
      {[](SamplingConfig& s) { s.temperature = -0.5; }, "temperature",
       "must be 0 (greedy) or a number in [1e-06, 1e+06], got -0.5"},
      // A temperature this small made every logit infinite in f32.
      {[](SamplingConfig& s) { s.temperature = 1e-40; }, "temperature",
       "must be 0 (greedy) or a number in [1e-06, 1e+06], got 1e-40"},
      {[](SamplingConfig& s) { s.temperature = 1e7; }, "temperature",
       "must be 0 (greedy) or a number in [1e-06, 1e+06], got 10000000"},
      {[](SamplingConfig& s) { s.top_p = 0; }, "top_p", "must be a number in (0, 1] (1: off), got 0"},
      {[](SamplingConfig& s) { s.top_p = 1.5; }, "top_p", "must be a number in (0, 1] (1: off), got 1.5"},
      {[](SamplingConfig& s) { s.top_k = -1; }, "top_k", "must be at least 0 (0: off), got -1"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.min_p = 1;
       },
       "min_p", "must be a number in [0, 1) (0: off), got 1"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.min_p = -0.1;
       },
       "min_p", "must be a number in [0, 1) (0: off), got -0.1"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.repetition_penalty = 0;
       },
       "repetition_penalty", "must be a number in [1e-06, 1e+06] (1: off), got 0"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.repetition_penalty = 1e-300;
       },
       "repetition_penalty", "must be a number in [1e-06, 1e+06] (1: off), got 1e-300"},
      // Which positions a diffusion step commits.
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.remasking = Remasking::Origin;
       },
       "remasking", "origin needs method dream, got method llada"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.remasking = Remasking::Origin;
       },
       "remasking", "origin needs method dream, got method block_diffusion"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.remasking = Remasking::Random;
       },
       "remasking", "has no effect with method autoregressive, got random"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.commit = CommitRule::Threshold;
       },
       "commit", "has no effect with method autoregressive, got threshold"},
      {[](SamplingConfig& s) {
         s.method = Method::Dream;
         s.commit = CommitRule::Dynamic;
       },
       "commit", "dynamic needs method block_diffusion, got method dream"},
      {[](SamplingConfig& s) {
         s.method = Method::Dream;
         s.commit = CommitRule::Dynamic;
       },
       "commit", "dynamic needs method block_diffusion, got method dream"},
      {[](SamplingConfig& s) { s.threshold = 0; }, "threshold", "must be a number in (0, 1], got 0"},
      {[](SamplingConfig& s) { s.threshold = 1.01; }, "threshold", "must be a number in (0, 1], got 1.01"},
      {[](SamplingConfig& s) { s.factor = 0; }, "factor", "must be a finite number > 0, got 0"},
      {[](SamplingConfig& s) { s.entropy_bound = -1; }, "entropy_bound",
       "must be a finite number > 0, got -1"},
      // Dream's schedule.
      {[](SamplingConfig& s) { s.eps = 0; }, "eps", "must be a number in (0, 1), got 0"},
      {[](SamplingConfig& s) { s.eps = 1; }, "eps", "must be a number in (0, 1), got 1"},
      {[](SamplingConfig& s) { s.alg_temp = -1; }, "alg_temp",
       "must be 0 (off) or a number in [1e-06, 1e+06], got -1"},
      {[](SamplingConfig& s) { s.alg_temp = 1e-9; }, "alg_temp",
       "must be 0 (off) or a number in [1e-06, 1e+06], got 1e-09"},
      // LLaDA's options and the caches.
      {[](SamplingConfig& s) { s.cfg_scale = -1; }, "cfg_scale",
       "must be a number in [0, 1e+06] (0: off), got -1"},
      {[](SamplingConfig& s) { s.cfg_scale = std::numeric_limits<double>::infinity(); }, "cfg_scale",
       "must be a number in [0, 1e+06] (0: off), got inf"},
      {[](SamplingConfig& s) { s.cfg_scale = 1e308; }, "cfg_scale",
       "must be a number in [0, 1e+06] (0: off), got 1e+308"},
      {[](SamplingConfig& s) {
         s.method = Method::Dream;
         s.cfg_scale = 1;
       },
       "cfg_scale", "needs method llada, got method dream"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.suppress_eos = true;
       },
       "suppress_eos", "needs method llada, got method block_diffusion"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.suppress_eos_confidence = true;
       },
       "suppress_eos_confidence", "needs method llada, got method autoregressive"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.cache = CacheMode::Prefix;
       },
       "cache", "prefix needs method llada or dream, got method block_diffusion"},
      {[](SamplingConfig& s) {
         s.method = Method::BlockDiffusion;
         s.cache = CacheMode::Dual;
       },
       "cache", "dual needs method llada or dream, got method block_diffusion"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.cache = CacheMode::Prefix;
       },
       "cache", "prefix needs method llada or dream, got method autoregressive"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.cache = CacheMode::Prefix;
         s.cfg_scale = 2;
       },
       "cache",
       "prefix cannot be used with classifier-free guidance (cfg_scale 2); set cache none or cfg_scale 0"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.cache = CacheMode::Dual;
         s.cfg_scale = 0.5;
       },
       "cache",
       "dual cannot be used with classifier-free guidance (cfg_scale 0.5); set cache none or cfg_scale 0"},
      // Autoregressive decoding's options.
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.min_p = 0.1;
       },
       "min_p", "needs method autoregressive, got method llada"},
      {[](SamplingConfig& s) {
         s.method = Method::Llada;
         s.repetition_penalty = 1.2;
       },
       "repetition_penalty", "needs method autoregressive, got method llada"},
      {[](SamplingConfig& s) {
         s.method = Method::Dream;
         s.stop_strings = {"end"};
       },
       "stop_strings", "needs method autoregressive, got method dream"},
      {[](SamplingConfig& s) {
         s.method = Method::Autoregressive;
         s.stop_strings = {"end", ""};
       },
       "stop_strings", "must not hold an empty string, got one at [1]"},
  };
  for (const Case& c : cases) {
    SamplingConfig sampler;
    c.set(sampler);
    std::optional<SamplingProblem> problem = find_problem(sampler);
    ASSERT_TRUE(problem) << c.key << ": " << c.message;
    EXPECT_EQ(problem->key, c.key) << problem->message;
    EXPECT_EQ(problem->message, c.message);
  }
  // NaN (which CLI11 may read from a flag) fails every range.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (double SamplingConfig::*field :
       {&SamplingConfig::temperature, &SamplingConfig::threshold, &SamplingConfig::factor,
        &SamplingConfig::entropy_bound, &SamplingConfig::cfg_scale, &SamplingConfig::eps,
        &SamplingConfig::alg_temp, &SamplingConfig::top_p, &SamplingConfig::min_p,
        &SamplingConfig::repetition_penalty}) {
    SamplingConfig sampler;
    sampler.method = Method::Autoregressive;
    sampler.*field = nan;
    EXPECT_TRUE(find_problem(sampler)) << "NaN accepted";
  }
  // The logit scales' bounds themselves are accepted.
  SamplingConfig ar;
  ar.method = Method::Autoregressive;
  ar.temperature = 1e-6;
  ar.repetition_penalty = 1e6;
  EXPECT_FALSE(find_problem(ar));
  ar.temperature = 1e6;
  ar.repetition_penalty = 1e-6;
  EXPECT_FALSE(find_problem(ar));
  SamplingConfig dream;
  dream.method = Method::Dream;
  dream.alg_temp = 1e-6;
  EXPECT_FALSE(find_problem(dream));
  SamplingConfig llada;
  llada.method = Method::Llada;
  llada.cfg_scale = 1e6;
  EXPECT_FALSE(find_problem(llada));
}

TEST(GenerationConfig, ConsistencyRulesFollowTheMethod) {
  auto ok = [](const std::function<void(SamplingConfig&)>& set) {
    SamplingConfig sampler;
    set(sampler);
    std::optional<SamplingProblem> problem = find_problem(sampler);
    return problem ? std::string(problem->key) + ": " + problem->message : std::string("ok");
  };
  // Block and step divisibility are Llada's (and Auto's) only: 100 tokens, blocks of 32, 10 steps.
  for (Method method : {Method::Dream, Method::BlockDiffusion, Method::Autoregressive}) {
    EXPECT_EQ(ok([&](SamplingConfig& s) {
                s.method = method;
                s.gen_length = 100;
                s.block_length = 32;
                s.steps = 10;
              }),
              "ok")
        << enum_name(method, kMethodNames);
  }
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.method = Method::Llada;
              s.gen_length = 100;
              s.block_length = 32;
            }),
            "block_length: must divide gen_length (100), got 32");
  // Auto takes any method's options and its schedule is checked once the model's method is known.
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.gen_length = 100;
              s.block_length = 32;
              s.min_p = 0.1;
              s.sub_block_length = 8;
              s.stop_strings = {"###"};
            }),
            "ok");
  // Llada's block 0: 32 when that divides gen_length, else gen_length (one block).
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.method = Method::Llada;
              s.gen_length = 100;
              s.steps = 7;
            }),
            "ok");
  // Auto's block 0 is the model's method's: checked after resolution.
  EXPECT_EQ(ok([](SamplingConfig& s) { s.steps = 7; }), "ok");
  // Block diffusion: block 0 is the model's, and its sub-blocks cannot be checked here.
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.method = Method::BlockDiffusion;
              s.block_length = 0;
              s.sub_block_length = 5;
            }),
            "ok");
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.method = Method::BlockDiffusion;
              s.sub_block_length = 8;
              s.commit = CommitRule::Dynamic;
            }),
            "ok");
  // Dream's own options; LLaDA's with Auto; autoregressive decoding's.
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.method = Method::Dream;
              s.remasking = Remasking::Origin;
              s.cache = CacheMode::Dual;
            }),
            "ok");
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.cfg_scale = 1;
              s.suppress_eos = true;
              s.suppress_eos_confidence = true;
            }),
            "ok");
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.method = Method::Autoregressive;
              s.min_p = 0.1;
              s.repetition_penalty = 1.3, s.stop_strings = {"x"};
              s.top_k = 20;
              s.top_p = 0.9;
              s.temperature = 0.7;
            }),
            "ok");
  // The bounds themselves.
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.threshold = 1;
              s.top_p = 1;
            }),
            "ok");
  EXPECT_EQ(ok([](SamplingConfig& s) {
              s.eps = 0.999;
              s.factor = 1e-9;
              s.entropy_bound = 1e9;
            }),
            "ok");
}

TEST(GenerationConfig, ProblemsAreLocatedAtTheirKey) {
  auto error = [](const std::string& text) {
    return input_error_of([&] { parse_generation_config(text, "run.yaml"); });
  };
  EXPECT_EQ(error("sampler:\n  method: dream\n  cfg_scale: 1.0\n"),
            "run.yaml: sampler.cfg_scale: needs method llada, got method dream (line 3)");
  EXPECT_EQ(error("sampler:\n  method: autoregressive\n  stop_strings: [a, \"\"]\n"),
            "run.yaml: sampler.stop_strings: must not hold an empty string, got one at [1] (line 3)");
  EXPECT_EQ(error("sampler:\n  threshold: 2\n"),
            "run.yaml: sampler.threshold: must be a number in (0, 1], got 2 (line 2)");
  EXPECT_EQ(
      error("sampler:\n  method: llada\n  cache: prefix\n  cfg_scale: 0.5\n"),
      "run.yaml: sampler.cache: prefix cannot be used with classifier-free guidance (cfg_scale 0.5); set "
      "cache none or cfg_scale 0 (line 3)");
  EXPECT_EQ(
      error("sampler:\n  method: block_diffusion\n  block_length: -4\n"),
      "run.yaml: sampler.block_length: must be at least 0 (0: the model's block size), got -4 (line 3)");
}

TEST(GenerationConfig, YamlRoundTrip) {
  GenerationConfig config;
  config.model = "null";  // strings that would read as other types unquoted
  config.prompts = "123";
  config.output = "out: file.jsonl";
  config.seed = 18446744073709551615ull;
  SamplingConfig& s = config.sampler;
  s.method = Method::Llada;
  s.gen_length = 256;
  s.steps = 64;
  s.block_length = 64;
  s.temperature = 0.1;
  s.remasking = Remasking::Margin;
  s.commit = CommitRule::Factor;
  s.threshold = 0.123456789;
  s.factor = 1e-7;
  s.entropy_bound = 12345.5;
  s.cache = CacheMode::Dual;
  s.suppress_eos = true;
  s.suppress_eos_confidence = true;
  s.eps = 0.1 + 0.2;  // no short decimal
  s.alg_temp = 0.25;
  s.top_p = 0.95;
  s.top_k = 40;
  s.stop_early = false;
  std::string text = to_yaml(config);
  EXPECT_EQ(parse_generation_config(text, "resolved"), config) << text;
  EXPECT_EQ(parse_generation_config(to_yaml(GenerationConfig{}), "resolved"), GenerationConfig{});

  GenerationConfig guided;
  guided.sampler.cfg_scale = 3.5;
  guided.sampler.remasking = Remasking::Random;
  EXPECT_EQ(parse_generation_config(to_yaml(guided), "resolved"), guided) << to_yaml(guided);

  GenerationConfig block;
  block.sampler.method = Method::BlockDiffusion;
  block.sampler.block_length = 0;
  block.sampler.sub_block_length = 4;
  block.sampler.commit = CommitRule::Dynamic;
  block.sampler.steps = 3;
  EXPECT_EQ(parse_generation_config(to_yaml(block), "resolved"), block) << to_yaml(block);

  GenerationConfig dream;
  dream.sampler.method = Method::Dream;
  dream.sampler.remasking = Remasking::Origin;
  dream.sampler.cache = CacheMode::Prefix;
  dream.sampler.commit = CommitRule::EntropyBound;
  EXPECT_EQ(parse_generation_config(to_yaml(dream), "resolved"), dream) << to_yaml(dream);

  GenerationConfig ar;
  ar.sampler.method = Method::Autoregressive;
  ar.sampler.min_p = 0.05;
  ar.sampler.repetition_penalty = 1.15;
  // Stop strings that YAML would read as something else, or that need escapes.
  ar.sampler.stop_strings = {"\n\n", "null",       "~",  "123", "true",         "a: b",  "# x",
                             "[",    "\"quoted\"", "\\", "\t",  "Grüße 🙂", " lead", "trail "};
  // Line breaks YAML would fold (NEL, line and paragraph separators), the byte order mark, noncharacters.
  ar.sampler.stop_strings.insert(ar.sampler.stop_strings.end(),
                                 {"\u0085\n", "a\u2028b", "\ufeffx", "\ufffe", "\x7f", "\x01"});
  std::string ar_text = to_yaml(ar);
  EXPECT_EQ(parse_generation_config(ar_text, "resolved"), ar) << ar_text;
}

TEST(GenerationConfig, PresetParses) {
  std::string preset = std::string(DLM_TEST_DATA_DIR) + "/../../configs/generate.yaml";
  GenerationConfig config = load_generation_config(preset);
  GenerationConfig defaults;
  defaults.output = config.output;  // the preset may name an output file; the sampler matches the defaults
  EXPECT_EQ(config.sampler, defaults.sampler);
  EXPECT_EQ(config.seed, 0u);
}

}  // namespace
}  // namespace dlm
