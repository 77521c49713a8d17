#include "backbones/transformer_config.h"

#include "engine/core/error.h"

namespace dlm {

void validate(const TransformerConfig& c, std::string_view source) {
  const std::pair<std::string_view, int64_t> sizes[] = {
      {"vocabulary size", c.vocab_size}, {"hidden size", c.hidden_size},
      {"MLP size", c.intermediate_size}, {"layer count", c.num_layers},
      {"head count", c.num_heads},       {"KV head count", c.num_kv_heads},
      {"head size", c.head_dim},         {"context length", c.max_positions},
  };
  for (const auto& [what, value] : sizes) {
    if (value <= 0) fail_input("{}: the {} must be positive, got {}", source, what, value);
  }
  if (c.num_heads % c.num_kv_heads != 0) {
    fail_input("{}: {} attention heads are not a multiple of {} KV heads", source, c.num_heads,
               c.num_kv_heads);
  }
  if (c.head_dim % 2 != 0) fail_input("{}: head size {} must be even for RoPE", source, c.head_dim);
  if (!(c.rms_norm_eps > 0.0f))
    fail_input("{}: the RMSNorm epsilon must be positive, got {}", source, c.rms_norm_eps);
}

}  // namespace dlm
