#pragma once
// What `dlm info` reports about a model directory: family, backbone, parameters, weight dtypes and memory,
// cache cost, special tokens and decoding defaults. Loading maps the weights but reads none of them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "backbones/load_model.h"
#include "engine/io/generation_config.h"

namespace dlm {

struct TokenReport {
  std::string role;  // "bos", "mask", "pad", "stop"
  int32_t id = 0;
  std::string text;
};

struct ModelReport {
  std::string dir;
  std::string family;        // "LLaDA"
  std::string family_key;    // "llada"
  std::string architecture;  // the config's class name
  std::string decoding;      // "masked diffusion"
  std::string attention;     // "bidirectional", "block-causal (block 4)"
  BackboneSummary backbone;
  int64_t weight_bytes = 0;  // every tensor in the checkpoint; by dtype in backbone.checkpoint_dtypes
  int64_t max_positions = 0;
  int64_t tokenizer_tokens = 0;
  std::vector<TokenReport> tokens;
  int64_t logit_shift = 0;
  int64_t block_size = 0;
  bool chat_template = false;
  std::string tokenizer_kind;      // "SentencePiece", "byte-level BPE"
  SamplingConfig default_sampler;  // what `dlm generate` decodes this model with when given no settings
};

// InputError as load_model.
ModelReport describe_model(const std::string& dir, const ModelLoadOptions& options = {});

}  // namespace dlm
