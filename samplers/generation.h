#pragma once
// What a sampler takes and gives back per request, whatever the decoding method.
#include <cstdint>
#include <vector>

namespace dlm {

struct GenerationRequest {
  std::vector<int32_t> prompt;  // token ids, BOS included when the model wants one
  uint64_t seed = 0;            // keys the request's own RNG stream
};

// Why a request ended.
enum class FinishReason { Length, StopToken, StopString };

// Where a request's time went. A forward that serves several requests counts in full for each of them.
struct PhaseSeconds {
  double prefill = 0.0;  // forwards that only write the prompt's keys/values (block diffusion, AR)
  double denoise = 0.0;  // forwards whose predictions fill masked positions (or AR tokens)
  double commit = 0.0;   // forwards that write a finished block's keys/values (block diffusion)
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated tokens: all gen_length, or up to and including the stop token
  FinishReason finish = FinishReason::Length;
  int64_t nfe = 0;              // backbone forward calls this request took part in
  int64_t committed = 0;        // generated positions filled (the tokens above, before any stop cut)
  double seconds = 0.0;         // wall time from entering the batch until it finished
  double queued_seconds = 0.0;  // wall time waiting for a free row before that
  PhaseSeconds phases;

  double tokens_per_nfe() const { return nfe > 0 ? static_cast<double>(committed) / nfe : 0.0; }
};

}  // namespace dlm
