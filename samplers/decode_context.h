#pragma once
// What every decoding task needs to know about the model beyond its backbone.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace dlm {

struct DecodeContext {
  int32_t mask_id = -1;           // diffusion methods
  std::vector<int32_t> stop_ids;  // any ends a request; [0] is EOS, the rest EoT-like (LLaDA's flags)
  int64_t logit_shift = 0;        // 1: position p is predicted by output row p - 1 (Dream, Fast-dLLM v2)
  // The text of generated tokens, for stop strings; may be empty when no request uses them.
  std::function<std::string(std::span<const int32_t>)> detokenize;
};

}  // namespace dlm
