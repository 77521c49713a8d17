#include "backbones/transformer_config.h"

#include "engine/core/error.h"

namespace dlm {

void validate(const TransformerConfig& c, std::string_view source) {
  // Upper bounds far above any released model keep every size product (weights, KV cache bytes) inside
  // int64, so a hostile config.json cannot make the loader overflow.
  struct Size {
    std::string_view what;
    int64_t value, limit;
  };
  const Size sizes[] = {
      {"vocabulary size", c.vocab_size, int64_t{1} << 24},
      {"hidden size", c.hidden_size, int64_t{1} << 20},
      {"MLP size", c.intermediate_size, int64_t{1} << 22},
      {"layer count", c.num_layers, int64_t{1} << 12},
      {"head count", c.num_heads, int64_t{1} << 16},
      {"KV head count", c.num_kv_heads, int64_t{1} << 16},
      {"head size", c.head_dim, int64_t{1} << 16},
      {"context length", c.max_positions, int64_t{1} << 28},
  };
  for (const auto& [what, value, limit] : sizes) {
    if (value <= 0) fail_input("{}: the {} must be positive, got {}", source, what, value);
    if (value > limit) fail_input("{}: the {} {} exceeds the supported {}", source, what, value, limit);
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    fail_input("{}: {} attention heads are not a multiple of {} KV heads", source, c.num_heads,
               c.num_kv_heads);
  }
  if (c.head_dim % 2 != 0) fail_input("{}: head size {} must be even for RoPE", source, c.head_dim);
  // RoPE computes in f32, which a larger base would not survive; a base of 1 or less gives no decreasing
  // frequencies.
  if (!(c.rope.theta > 1.0 && c.rope.theta <= 1e30))
    fail_input("{}: rope_theta must be greater than 1 and at most 1e30, got {}", source, c.rope.theta);
}

float read_rms_norm_eps(const HfConfig& config, double fallback) {
  return static_cast<float>(positive_f32_setting(config.source(), "rms_norm_eps",
                                                 config.value_or<double>("rms_norm_eps", fallback)));
}

}  // namespace dlm
