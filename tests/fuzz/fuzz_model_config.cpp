// Fuzzes model configs: a config.json is parsed, its family identified and read by that family's reader
// (Hugging Face Llama/Qwen2/Qwen3 keys or LLaDA's OLMo keys, RoPE scaling included). Readers may reject with
// dlm::InputError; an accepted config must describe a model the loader can size without overflow, and its
// RoPE frequencies must be finite and positive.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "backbones/model_family.h"
#include "engine/core/error.h"

namespace {

void check_accepted(const dlm::TransformerConfig& c) {
  const bool sane = c.vocab_size > 0 && c.hidden_size > 0 && c.intermediate_size > 0 && c.num_layers > 0 &&
                    c.num_heads > 0 && c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads == 0 &&
                    c.head_dim > 0 && c.head_dim % 2 == 0 && c.max_positions > 0 && c.rms_norm_eps > 0.0f &&
                    std::isfinite(c.rms_norm_eps);
  if (!sane) __builtin_trap();
  // The largest products the loader forms; bounded sizes keep them in range (UBSan traps otherwise).
  volatile int64_t weights = c.vocab_size * c.hidden_size + c.num_heads * c.head_dim * c.hidden_size;
  volatile int64_t cache = c.num_layers * 2 * c.num_kv_heads * c.head_dim * 4;
  (void)weights;
  (void)cache;
  if (c.head_dim > 4096) return;  // a real frequency table, not a stress test of the allocator
  const dlm::HostTensor inv_freq = c.rope.inv_freq(c.head_dim);
  for (int64_t i = 0; i < inv_freq.tensor().numel(); ++i) {
    const float f = inv_freq.data<float>()[i];
    if (!(std::isfinite(f) && f >= 0.0f)) __builtin_trap();
  }
  if (!std::isfinite(c.rope.attention_factor())) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const dlm::HfConfig config =
        dlm::HfConfig::parse(std::string_view(reinterpret_cast<const char*>(data), size), "config.json");
    check_accepted(dlm::read_transformer_config(dlm::identify_family(config), config));
  } catch (const dlm::Error&) {
    // Rejected input: the expected outcome for most inputs.
  }
  return 0;
}
