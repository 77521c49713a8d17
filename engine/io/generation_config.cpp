#include "engine/io/generation_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>

#include "engine/core/error.h"

namespace dlm {

namespace {

// Llada's block for block_length 0 when it divides gen_length (as samplers/sampler.cpp resolves it).
constexpr int64_t kLladaBlockLength = 32;

std::string_view method_name(Method method) {
  return enum_name(method, kMethodNames);
}

// Range checks, written so that NaN fails every one of them. (0, 1], (0, 1), [0, 1):
bool in_unit_open_closed(double x) {
  return x > 0.0 && x <= 1.0;
}
bool in_unit_open(double x) {
  return x > 0.0 && x < 1.0;
}
bool in_unit_closed_open(double x) {
  return x >= 0.0 && x < 1.0;
}
bool positive(double x) {
  return std::isfinite(x) && x > 0.0;
}

// Settings that divide or multiply logits in f32 (temperature, alg_temp, repetition_penalty, cfg_scale) stay
// within [1e-6, 1e6]: a temperature of 1e-40 made every logit infinite and the softmax NaN, which decoded
// one id over and over without an error. Logits of magnitude up to 1e6 scaled by two such settings stay far
// inside f32's range.
constexpr double kMinLogitScale = 1e-6;
constexpr double kMaxLogitScale = 1e6;
bool logit_scale(double x) {
  return x >= kMinLogitScale && x <= kMaxLogitScale;
}
bool off_or_logit_scale(double x) {
  return x == 0.0 || logit_scale(x);
}

}  // namespace

std::optional<SamplingProblem> find_problem(const SamplingConfig& sampler) {
  auto problem = [](std::string_view key, std::string message) {
    return std::optional<SamplingProblem>(SamplingProblem{key, std::move(message)});
  };
  const Method method = sampler.method;
  // Auto accepts every method's options: which apply is known once the model's method is, and
  // resolve_sampling checks the resolved settings again.
  auto allows = [&](Method m) { return method == Method::Auto || method == m; };
  const bool autoregressive = method == Method::Autoregressive;

  // The schedule.
  if (sampler.gen_length < 1)
    return problem("gen_length", fmt::format("must be at least 1, got {}", sampler.gen_length));
  if (sampler.block_length < 0) {
    std::string_view zero = method == Method::Llada ? " (0: 32 when that divides gen_length, else gen_length)"
                            : method == Method::BlockDiffusion ? " (0: the model's block size)"
                            : method == Method::Auto           ? " (0: the method's default)"
                                                               : "";
    return problem("block_length", fmt::format("must be at least 0{}, got {}", zero, sampler.block_length));
  }
  if (sampler.steps < 1) return problem("steps", fmt::format("must be at least 1, got {}", sampler.steps));
  // Llada's blocks split gen_length and its steps split over the blocks.
  if (method == Method::Llada) {
    const int64_t block = sampler.block_length > 0                      ? sampler.block_length
                          : sampler.gen_length % kLladaBlockLength == 0 ? kLladaBlockLength
                                                                        : sampler.gen_length;
    if (sampler.gen_length % block != 0) {
      return problem("block_length", fmt::format("must divide gen_length ({}), got {}", sampler.gen_length,
                                                 sampler.block_length));
    }
    int64_t blocks = sampler.gen_length / block;
    if (sampler.steps % blocks != 0) {
      return problem(
          "steps",
          fmt::format("must be a multiple of the number of blocks (gen_length / block_length "
                      "= {}{}), got {}",
                      blocks,
                      sampler.block_length == 0 ? fmt::format(", block_length 0 being {}", block) : "",
                      sampler.steps));
    }
  }
  if (sampler.sub_block_length < 0) {
    return problem("sub_block_length",
                   fmt::format("must be at least 0 (0: no sub-blocks), got {}", sampler.sub_block_length));
  }
  if (sampler.sub_block_length > 0) {
    if (!allows(Method::BlockDiffusion)) {
      return problem("sub_block_length",
                     fmt::format("needs method block_diffusion, got method {}", method_name(method)));
    }
    if (sampler.block_length > 0 && sampler.block_length % sampler.sub_block_length != 0) {
      return problem("sub_block_length", fmt::format("must divide block_length ({}), got {}",
                                                     sampler.block_length, sampler.sub_block_length));
    }
  }

  // The token sampler.
  if (!off_or_logit_scale(sampler.temperature)) {
    return problem("temperature", fmt::format("must be 0 (greedy) or a number in [1e-06, 1e+06], got {}",
                                              sampler.temperature));
  }
  if (!in_unit_open_closed(sampler.top_p)) {
    return problem("top_p", fmt::format("must be a number in (0, 1] (1: off), got {}", sampler.top_p));
  }
  if (sampler.top_k < 0)
    return problem("top_k", fmt::format("must be at least 0 (0: off), got {}", sampler.top_k));
  if (!in_unit_closed_open(sampler.min_p)) {
    return problem("min_p", fmt::format("must be a number in [0, 1) (0: off), got {}", sampler.min_p));
  }
  if (!logit_scale(sampler.repetition_penalty)) {
    return problem("repetition_penalty", fmt::format("must be a number in [1e-06, 1e+06] (1: off), got {}",
                                                     sampler.repetition_penalty));
  }

  // Which positions a diffusion step commits.
  if (sampler.remasking == Remasking::Origin && !allows(Method::Dream)) {
    return problem("remasking", fmt::format("origin needs method dream, got method {}", method_name(method)));
  }
  if (autoregressive && sampler.remasking != Remasking::LowConfidence) {
    return problem("remasking", fmt::format("has no effect with method autoregressive, got {}",
                                            enum_name(sampler.remasking, kRemaskingNames)));
  }
  if (autoregressive && sampler.commit != CommitRule::Schedule) {
    return problem("commit", fmt::format("has no effect with method autoregressive, got {}",
                                         enum_name(sampler.commit, kCommitRuleNames)));
  }
  if (sampler.commit == CommitRule::Dynamic && !allows(Method::BlockDiffusion)) {
    return problem("commit",
                   fmt::format("dynamic needs method block_diffusion, got method {}", method_name(method)));
  }
  if (!in_unit_open_closed(sampler.threshold)) {
    return problem("threshold", fmt::format("must be a number in (0, 1], got {}", sampler.threshold));
  }
  if (!positive(sampler.factor)) {
    return problem("factor", fmt::format("must be a finite number > 0, got {}", sampler.factor));
  }
  if (!positive(sampler.entropy_bound)) {
    return problem("entropy_bound",
                   fmt::format("must be a finite number > 0, got {}", sampler.entropy_bound));
  }

  // Dream's schedule.
  if (!in_unit_open(sampler.eps)) {
    return problem("eps", fmt::format("must be a number in (0, 1), got {}", sampler.eps));
  }
  if (!off_or_logit_scale(sampler.alg_temp)) {
    return problem("alg_temp",
                   fmt::format("must be 0 (off) or a number in [1e-06, 1e+06], got {}", sampler.alg_temp));
  }

  // LLaDA's options and Fast-dLLM's caches.
  if (!(sampler.cfg_scale >= 0.0 && sampler.cfg_scale <= kMaxLogitScale)) {
    return problem("cfg_scale",
                   fmt::format("must be a number in [0, 1e+06] (0: off), got {}", sampler.cfg_scale));
  }
  if (sampler.cfg_scale > 0.0 && !allows(Method::Llada)) {
    return problem("cfg_scale", fmt::format("needs method llada, got method {}", method_name(method)));
  }
  if (sampler.suppress_eos && !allows(Method::Llada)) {
    return problem("suppress_eos", fmt::format("needs method llada, got method {}", method_name(method)));
  }
  if (sampler.suppress_eos_confidence && !allows(Method::Llada)) {
    return problem("suppress_eos_confidence",
                   fmt::format("needs method llada, got method {}", method_name(method)));
  }
  if (sampler.cache != CacheMode::None) {
    std::string_view cache = enum_name(sampler.cache, kCacheModeNames);
    if (!allows(Method::Llada) && method != Method::Dream) {
      return problem(
          "cache", fmt::format("{} needs method llada or dream, got method {}", cache, method_name(method)));
    }
    if (sampler.cfg_scale > 0.0) {
      return problem("cache", fmt::format("{} cannot be used with classifier-free guidance (cfg_scale {}); "
                                          "set cache none or cfg_scale 0",
                                          cache, sampler.cfg_scale));
    }
  }

  // Autoregressive decoding's options.
  if (sampler.min_p > 0.0 && !allows(Method::Autoregressive)) {
    return problem("min_p", fmt::format("needs method autoregressive, got method {}", method_name(method)));
  }
  if (sampler.repetition_penalty != 1.0 && !allows(Method::Autoregressive)) {
    return problem("repetition_penalty",
                   fmt::format("needs method autoregressive, got method {}", method_name(method)));
  }
  if (!sampler.stop_strings.empty() && !allows(Method::Autoregressive)) {
    return problem("stop_strings",
                   fmt::format("needs method autoregressive, got method {}", method_name(method)));
  }
  for (size_t i = 0; i < sampler.stop_strings.size(); ++i) {
    if (sampler.stop_strings[i].empty()) {
      return problem("stop_strings", fmt::format("must not hold an empty string, got one at [{}]", i));
    }
  }
  return std::nullopt;
}

void read_sampler_keys(const YamlMap& section, SamplingConfig& sampler) {
  sampler.method = section.enum_or("method", sampler.method, kMethodNames);
  sampler.gen_length = section.value_or("gen_length", sampler.gen_length);
  sampler.steps = section.value_or("steps", sampler.steps);
  sampler.block_length = section.value_or("block_length", sampler.block_length);
  sampler.sub_block_length = section.value_or("sub_block_length", sampler.sub_block_length);
  sampler.temperature = section.value_or("temperature", sampler.temperature);
  sampler.remasking = section.enum_or("remasking", sampler.remasking, kRemaskingNames);
  sampler.commit = section.enum_or("commit", sampler.commit, kCommitRuleNames);
  sampler.threshold = section.value_or("threshold", sampler.threshold);
  sampler.factor = section.value_or("factor", sampler.factor);
  sampler.entropy_bound = section.value_or("entropy_bound", sampler.entropy_bound);
  sampler.cache = section.enum_or("cache", sampler.cache, kCacheModeNames);
  sampler.cfg_scale = section.value_or("cfg_scale", sampler.cfg_scale);
  sampler.suppress_eos = section.value_or("suppress_eos", sampler.suppress_eos);
  sampler.suppress_eos_confidence =
      section.value_or("suppress_eos_confidence", sampler.suppress_eos_confidence);
  sampler.eps = section.value_or("eps", sampler.eps);
  sampler.alg_temp = section.value_or("alg_temp", sampler.alg_temp);
  sampler.top_p = section.value_or("top_p", sampler.top_p);
  sampler.top_k = section.value_or("top_k", sampler.top_k);
  sampler.min_p = section.value_or("min_p", sampler.min_p);
  sampler.repetition_penalty = section.value_or("repetition_penalty", sampler.repetition_penalty);
  sampler.stop_strings = section.value_or("stop_strings", sampler.stop_strings);
  sampler.stop_early = section.value_or("stop_early", sampler.stop_early);
}

GenerationConfig read_generation_config(const YamlMap& root) {
  GenerationConfig config;
  config.model = root.value_or("model", config.model);
  config.prompts = root.value_or("prompts", config.prompts);
  config.output = root.value_or("output", config.output);
  config.seed = root.value_or("seed", config.seed);
  if (std::optional<YamlMap> section = root.optional_map("sampler")) {
    read_sampler_keys(*section, config.sampler);
    if (std::optional<SamplingProblem> problem = find_problem(config.sampler)) {
      section->fail_at(problem->key, problem->message);
    }
  }
  return config;
}

GenerationConfig load_generation_config(const std::string& path) {
  YamlMap root = YamlMap::load(path);
  GenerationConfig config = read_generation_config(root);
  root.finish();
  return config;
}

GenerationConfig parse_generation_config(std::string_view text, std::string source) {
  YamlMap root = YamlMap::parse(text, std::move(source));
  GenerationConfig config = read_generation_config(root);
  root.finish();
  return config;
}

void validate(const SamplingConfig& sampler, std::string_view source) {
  if (std::optional<SamplingProblem> problem = find_problem(sampler)) {
    fail_input("{}: sampler.{}: {}", source, problem->key, problem->message);
  }
}

std::string to_yaml(const GenerationConfig& config) {
  // Written by hand rather than with YAML::Emitter, which passes some characters through that its own
  // parser then reads differently (U+0085 and U+2028 as line breaks) or replaces (noncharacters). Strings are
  // always quoted, so that values such as "null" or "123" read back as strings.
  std::string out;
  auto line = [&](int indent, std::string_view key, std::string_view value) {
    out += fmt::format("{:{}}{}: {}\n", "", indent, key, value);
  };
  auto quoted = [](std::string_view key, std::string_view value) {
    return yaml_double_quoted(value, fmt::format("the config's {}", key));
  };
  line(0, "model", quoted("model", config.model));
  line(0, "prompts", quoted("prompts", config.prompts));
  line(0, "output", quoted("output", config.output));
  line(0, "seed", fmt::format("{}", config.seed));
  out += "sampler:\n";
  const SamplingConfig& sampler = config.sampler;
  // fmt writes the shortest text that reads back as the same double (and integers and booleans as such).
  auto value = [&](std::string_view key, const auto& v) { line(2, key, fmt::format("{}", v)); };
  value("method", enum_name(sampler.method, kMethodNames));
  value("gen_length", sampler.gen_length);
  value("steps", sampler.steps);
  value("block_length", sampler.block_length);
  value("sub_block_length", sampler.sub_block_length);
  value("temperature", sampler.temperature);
  value("remasking", enum_name(sampler.remasking, kRemaskingNames));
  value("commit", enum_name(sampler.commit, kCommitRuleNames));
  value("threshold", sampler.threshold);
  value("factor", sampler.factor);
  value("entropy_bound", sampler.entropy_bound);
  value("cache", enum_name(sampler.cache, kCacheModeNames));
  value("cfg_scale", sampler.cfg_scale);
  value("suppress_eos", sampler.suppress_eos);
  value("suppress_eos_confidence", sampler.suppress_eos_confidence);
  value("eps", sampler.eps);
  value("alg_temp", sampler.alg_temp);
  value("top_p", sampler.top_p);
  value("top_k", sampler.top_k);
  value("min_p", sampler.min_p);
  value("repetition_penalty", sampler.repetition_penalty);
  std::vector<std::string> stops;
  for (size_t i = 0; i < sampler.stop_strings.size(); ++i) {
    stops.push_back(quoted(fmt::format("sampler.stop_strings[{}]", i), sampler.stop_strings[i]));
  }
  line(2, "stop_strings", fmt::format("[{}]", fmt::join(stops, ", ")));
  value("stop_early", sampler.stop_early);
  return out;
}

}  // namespace dlm
