#include "backbones/rope_scaling.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "engine/core/error.h"
#include "engine/io/yaml_config.h"

namespace dlm {

namespace {

constexpr EnumName<RopeType> kRopeTypes[] = {
    {RopeType::Default, "default"},
    {RopeType::Linear, "linear"},
    {RopeType::Llama3, "llama3"},
    {RopeType::Yarn, "yarn"},
};

// theta^(2i / dim) for i < dim / 2, in f32 as torch computes `base ** (arange(0, dim, 2).float() / dim)`.
std::vector<float> frequency_bases(double theta, int64_t dim) {
  std::vector<float> bases(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    bases[static_cast<size_t>(i)] = std::pow(static_cast<float>(theta), exponent);
  }
  return bases;
}

// Llama 3.1: long wavelengths are divided by the factor, short ones kept, the band between blended.
void apply_llama3(const RopeScaling& rope, std::vector<float>& inv_freq) {
  const auto factor = static_cast<float>(rope.factor);
  const auto low = static_cast<float>(rope.low_freq_factor);
  const auto high = static_cast<float>(rope.high_freq_factor);
  const auto context = static_cast<float>(rope.original_max_positions);
  const float low_freq_wavelen = context / low;
  const float high_freq_wavelen = context / high;
  for (float& f : inv_freq) {
    const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
    const float scaled = wavelen > low_freq_wavelen ? f / factor : f;
    if (wavelen < high_freq_wavelen || wavelen > low_freq_wavelen) {
      f = scaled;
      continue;
    }
    const float smooth = (context / wavelen - low) / (high - low);
    f = (1.0f - smooth) * scaled / factor + smooth * scaled;
  }
}

// YaRN: interpolate the low frequencies by the factor, keep the high ones, ramp linearly between the
// correction dimensions of beta_fast and beta_slow rotations.
void apply_yarn(const RopeScaling& rope, int64_t dim, const std::vector<float>& bases,
                std::vector<float>& inv_freq) {
  auto correction_dim = [&](double rotations) {
    return static_cast<double>(dim) *
           std::log(static_cast<double>(rope.original_max_positions) / (rotations * 2.0 * std::numbers::pi)) /
           (2.0 * std::log(rope.theta));
  };
  double low = correction_dim(rope.beta_fast);
  double high = correction_dim(rope.beta_slow);
  if (rope.truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0);
  high = std::min(high, static_cast<double>(dim - 1));
  if (low == high) high += 0.001;
  const auto factor = static_cast<float>(rope.factor);
  for (size_t j = 0; j < inv_freq.size(); ++j) {
    const float ramp =
        std::clamp(static_cast<float>((static_cast<double>(j) - low) / (high - low)), 0.0f, 1.0f);
    const float extrapolation = 1.0f / bases[j];
    const float interpolation = 1.0f / (factor * bases[j]);
    const float extrapolation_weight = 1.0f - ramp;
    inv_freq[j] = interpolation * (1.0f - extrapolation_weight) + extrapolation * extrapolation_weight;
  }
}

double yarn_mscale(double scale, double mscale) {
  return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0;
}

}  // namespace

std::string_view rope_type_name(RopeType type) {
  return enum_name(type, kRopeTypes);
}

double positive_f32_setting(std::string_view source, std::string_view key, double value) {
  if (!(value > 0.0 && value <= 1e30))
    fail_input("{}: {} must be a positive number up to 1e30, got {}", source, key, value);
  return value;
}

HostTensor RopeScaling::inv_freq(int64_t head_dim) const {
  const std::vector<float> bases = frequency_bases(theta, head_dim);
  std::vector<float> values(bases.size());
  for (size_t i = 0; i < bases.size(); ++i) values[i] = 1.0f / bases[i];
  switch (type) {
    case RopeType::Default:
      break;
    case RopeType::Linear:
      for (float& f : values) f /= static_cast<float>(factor);
      break;
    case RopeType::Llama3:
      apply_llama3(*this, values);
      break;
    case RopeType::Yarn:
      apply_yarn(*this, head_dim, bases, values);
      break;
  }
  return HostTensor::from(Shape{static_cast<int64_t>(values.size())}, values);
}

float RopeScaling::attention_factor() const {
  if (type != RopeType::Yarn) return 1.0f;
  if (yarn_attention_factor > 0.0) return static_cast<float>(yarn_attention_factor);
  if (mscale > 0.0 && mscale_all_dim > 0.0)
    return static_cast<float>(yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all_dim));
  return static_cast<float>(yarn_mscale(factor, 1.0));
}

RopeScaling read_rope_scaling(const HfConfig& config, double default_theta, int64_t max_positions) {
  RopeScaling rope;
  // transformers 5 reads rope_parameters, and takes a legacy rope_scaling object in its place when that is
  // not empty (`rope_scaling or rope_parameters`).
  std::optional<HfConfig> parameters = config.optional_object("rope_scaling");
  std::string scaling_key = "rope_scaling";
  if (!parameters || parameters->keys().empty()) {
    parameters = config.optional_object("rope_parameters");
    scaling_key = "rope_parameters";
  }

  rope.theta = config.value_or<double>("rope_theta", default_theta);
  if (parameters && parameters->has("rope_theta")) rope.theta = parameters->required<double>("rope_theta");
  // The frequencies are computed in f32, which a larger base would not survive; a base of 1 or less
  // gives no decreasing frequencies (and YaRN divides by its logarithm).
  if (!(rope.theta > 1.0 && rope.theta <= 1e30))
    fail_input("{}: rope_theta must be greater than 1 and at most 1e30, got {}", config.source(), rope.theta);

  double partial = config.value_or<double>("partial_rotary_factor", 1.0);
  if (parameters) partial = parameters->value_or<double>("partial_rotary_factor", partial);
  if (partial != 1.0) {
    fail_input("{}: partial_rotary_factor {} is not supported (every supported family rotates whole heads)",
               config.source(), partial);
  }
  if (!parameters) return rope;

  // "rope_type" wins over the legacy spelling "type".
  const std::string type = parameters->has("rope_type")
                               ? parameters->required<std::string>("rope_type")
                               : parameters->value_or<std::string>("type", "default");
  const auto* known = std::find_if(std::begin(kRopeTypes), std::end(kRopeTypes),
                                   [&](const auto& entry) { return entry.name == type; });
  if (known == std::end(kRopeTypes)) {
    fail_input("{}: {}.rope_type '{}' is not supported (supported: default, linear, llama3, yarn)",
               config.source(), scaling_key, type);
  }
  rope.type = known->value;
  if (rope.type == RopeType::Default) return rope;

  auto positive = [&](std::string_view key, double value) {
    return positive_f32_setting(config.source(), fmt::format("{}.{}", scaling_key, key), value);
  };
  rope.factor = positive("factor", parameters->required<double>("factor"));
  const int64_t original = config.value_or<int64_t>("original_max_position_embeddings", max_positions);
  rope.original_max_positions = parameters->value_or<int64_t>("original_max_position_embeddings", original);
  positive("original_max_position_embeddings", static_cast<double>(rope.original_max_positions));
  if (rope.type == RopeType::Llama3) {
    rope.low_freq_factor = positive("low_freq_factor", parameters->required<double>("low_freq_factor"));
    rope.high_freq_factor = positive("high_freq_factor", parameters->required<double>("high_freq_factor"));
    if (!(rope.high_freq_factor > rope.low_freq_factor)) {
      fail_input("{}: {}.high_freq_factor ({}) must exceed low_freq_factor ({})", config.source(),
                 scaling_key, rope.high_freq_factor, rope.low_freq_factor);
    }
  }
  if (rope.type == RopeType::Yarn) {
    // transformers treats a null or zero beta as the default.
    rope.beta_fast = parameters->value_or<double>("beta_fast", 0.0);
    if (rope.beta_fast == 0.0) rope.beta_fast = 32.0;
    rope.beta_slow = parameters->value_or<double>("beta_slow", 0.0);
    if (rope.beta_slow == 0.0) rope.beta_slow = 1.0;
    positive("beta_fast", rope.beta_fast);
    positive("beta_slow", rope.beta_slow);
    // 0 (or null) leaves an mscale unset; a set one is bounded so the attention factor stays finite in f32.
    auto unset_or_positive = [&](std::string_view key) {
      const double value = parameters->value_or<double>(key, 0.0);
      return value == 0.0 ? 0.0 : positive(key, value);
    };
    rope.mscale = unset_or_positive("mscale");
    rope.mscale_all_dim = unset_or_positive("mscale_all_dim");
    if (parameters->has("attention_factor"))
      rope.yarn_attention_factor =
          positive("attention_factor", parameters->required<double>("attention_factor"));
    rope.truncate = parameters->value_or<bool>("truncate", true);
  }
  return rope;
}

}  // namespace dlm
