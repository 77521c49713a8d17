#pragma once
// What a sampler takes and gives back per request, whatever the decoding algorithm.
#include <cstdint>
#include <vector>

namespace dlm {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, BOS included when the model wants one
  uint64_t seed = 0;            // keys the request's own RNG stream
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // the generated tokens (the canvas after the prompt)
  int64_t nfe = 0;              // backbone forward passes this request took part in
  double seconds = 0.0;         // wall time from the start of its batch until it finished
};

}  // namespace dlm
