#include "engine/io/generation_config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cmath>

#include "engine/core/error.h"

namespace dlm {

std::optional<SamplingProblem> find_problem(const SamplingConfig& sampler) {
  auto problem = [](std::string_view key, std::string message) {
    return std::optional<SamplingProblem>(SamplingProblem{key, std::move(message)});
  };
  if (sampler.gen_length < 1)
    return problem("gen_length", fmt::format("must be at least 1, got {}", sampler.gen_length));
  if (sampler.block_length < 1) {
    return problem("block_length", fmt::format("must be at least 1, got {}", sampler.block_length));
  }
  if (sampler.steps < 1) return problem("steps", fmt::format("must be at least 1, got {}", sampler.steps));
  if (sampler.gen_length % sampler.block_length != 0) {
    return problem("block_length", fmt::format("must divide gen_length ({}), got {}", sampler.gen_length,
                                               sampler.block_length));
  }
  int64_t blocks = sampler.gen_length / sampler.block_length;
  if (sampler.steps % blocks != 0) {
    return problem("steps",
                   fmt::format("must be a multiple of the number of blocks (gen_length / block_length "
                               "= {}), got {}",
                               blocks, sampler.steps));
  }
  if (!std::isfinite(sampler.temperature) || sampler.temperature < 0) {
    return problem("temperature", fmt::format("must be a finite number >= 0, got {}", sampler.temperature));
  }
  return std::nullopt;
}

GenerationConfig read_generation_config(const YamlMap& root) {
  GenerationConfig config;
  config.model = root.value_or("model", config.model);
  config.prompts = root.value_or("prompts", config.prompts);
  config.output = root.value_or("output", config.output);
  config.seed = root.value_or("seed", config.seed);
  std::optional<YamlMap> section = root.optional_map("sampler");
  if (section) {
    SamplingConfig& sampler = config.sampler;
    sampler.gen_length = section->value_or("gen_length", sampler.gen_length);
    sampler.steps = section->value_or("steps", sampler.steps);
    sampler.block_length = section->value_or("block_length", sampler.block_length);
    sampler.temperature = section->value_or("temperature", sampler.temperature);
    sampler.remasking = section->enum_or("remasking", sampler.remasking, kRemaskingNames);
    if (std::optional<SamplingProblem> problem = find_problem(sampler)) {
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
  YAML::Emitter out;
  out << YAML::BeginMap;
  // Strings are always quoted, so that values such as "null" or "123" read back as strings.
  out << YAML::Key << "model" << YAML::Value << YAML::DoubleQuoted << config.model;
  out << YAML::Key << "prompts" << YAML::Value << YAML::DoubleQuoted << config.prompts;
  out << YAML::Key << "output" << YAML::Value << YAML::DoubleQuoted << config.output;
  out << YAML::Key << "seed" << YAML::Value << config.seed;
  out << YAML::Key << "sampler" << YAML::Value << YAML::BeginMap;
  const SamplingConfig& sampler = config.sampler;
  out << YAML::Key << "gen_length" << YAML::Value << sampler.gen_length;
  out << YAML::Key << "steps" << YAML::Value << sampler.steps;
  out << YAML::Key << "block_length" << YAML::Value << sampler.block_length;
  // fmt writes the shortest text that reads back as the same double.
  out << YAML::Key << "temperature" << YAML::Value << fmt::format("{}", sampler.temperature);
  out << YAML::Key << "remasking" << YAML::Value
      << std::string(enum_name(sampler.remasking, kRemaskingNames));
  out << YAML::EndMap << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace dlm
