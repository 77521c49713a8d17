#pragma once
// What `dlm info` reports about a model directory: family, backbone, parameters, weight dtypes and memory,
// cache cost, special tokens and decoding defaults. Loading maps the weights but reads none of them.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backbones/load_model.h"

namespace dlm {

struct TokenReport {
  std::string role;  // "bos", "mask", "pad", "stop"
  int32_t id = 0;
  std::string text;
};

struct DTypeReport {
  int64_t tensors = 0;
  int64_t bytes = 0;
};

struct ModelReport {
  std::string dir;
  std::string family;        // "LLaDA"
  std::string family_key;    // "llada"
  std::string architecture;  // the config's class name
  std::string decoding;      // "masked diffusion"
  std::string attention;     // "bidirectional", "block-causal (block 4)"
  BackboneSummary backbone;
  std::map<std::string, DTypeReport> weights;  // by dtype name, every tensor in the checkpoint
  int64_t weight_bytes = 0;
  int64_t max_positions = 0;
  int64_t tokenizer_tokens = 0;
  std::vector<TokenReport> tokens;
  int64_t logit_shift = 0;
  int64_t block_size = 0;
  bool chat_template = false;
};

// InputError as load_model.
ModelReport describe_model(const std::string& dir, const ModelLoadOptions& options = {});

}  // namespace dlm
