#pragma once
// RoPE frequencies as transformers computes them (modeling_rope_utils.py) for the rope types the supported
// families use: default, linear, llama3 (Llama 3.1+) and yarn (Qwen2.5 / Qwen3 long context). Dynamic NTK
// is refused: its frequencies depend on the running sequence length, so one call's batch would need several.
#include <cstdint>
#include <string_view>

#include "engine/core/buffer.h"
#include "engine/io/hf_config.h"

namespace dlm {

enum class RopeType : uint8_t { Default, Linear, Llama3, Yarn };

struct RopeScaling {
  RopeType type = RopeType::Default;
  double theta = 10000.0;
  double factor = 1.0;  // linear, llama3, yarn
  // llama3 and yarn: the context the frequencies were trained for.
  int64_t original_max_positions = 0;
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  double mscale = 0.0, mscale_all_dim = 0.0;             // yarn; 0: unset
  double yarn_attention_factor = 0.0;                    // yarn; 0: derived from factor and mscale
  bool truncate = true;                                  // yarn: round the correction range to integers

  // inv_freq f32 [head_dim / 2] for RopeLayout::HalfSplit, computed in f32 as transformers does.
  HostTensor inv_freq(int64_t head_dim) const;
  // The factor cos and sin are multiplied by: 1 except for yarn.
  float attention_factor() const;
};

std::string_view rope_type_name(RopeType type);

// `value`, a config's setting named `key` that the model applies in f32. InputError naming `source` and the
// key unless it is positive and at most 1e30, so that f32 holds it with room for what it is multiplied by.
double positive_f32_setting(std::string_view source, std::string_view key, double value);

// Reads RoPE settings from a config in either spelling transformers accepts: the v5 `rope_parameters` object
// (with rope_theta inside), or the older top-level `rope_theta` with a `rope_scaling` object (rope type under
// "rope_type" or "type"; null means none). `max_positions` is the config's context, the default for
// original_max_position_embeddings. InputError naming the key for an unsupported type, a partial rotary
// factor (no supported family rotates part of a head) or a bad value.
RopeScaling read_rope_scaling(const HfConfig& config, double default_theta, int64_t max_positions);

}  // namespace dlm
