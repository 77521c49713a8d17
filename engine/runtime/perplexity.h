#pragma once
// Generative perplexity: how likely an autoregressive "judge" model finds a text continuation of a prompt.
// `dlm compare` scores every output this way, so parallel and autoregressive decodings of the same prompts
// can be compared on fluency as well as on speed.
#include <cmath>
#include <cstdint>
#include <string_view>

#include "engine/runtime/engine.h"

namespace dlm {

// The summed negative log-likelihood (nats) of a continuation's tokens and their count; sums of several
// scores give a corpus-level perplexity.
struct ContinuationScore {
  double nll = 0.0;
  int64_t tokens = 0;

  double perplexity() const { return std::exp(nll / static_cast<double>(tokens)); }
  ContinuationScore& operator+=(const ContinuationScore& other) {
    nll += other.nll;
    tokens += other.tokens;
    return *this;
  }
};

// InputError naming the model unless it is autoregressive (causal), as a judge must be.
void check_judge(const Engine& judge);

// Scores `continuation` after `prompt` under `judge`, which must be an autoregressive (causal) model: the
// judge's tokens of the prompt (after its BOS, special-token text parsed as in Engine::make_request), then
// those of the continuation (plain text), go through one causal forward; each continuation token's NLL is
// the log-softmax of the row before it, in double precision. A continuation token with no row before it (no
// BOS and an empty prompt) is not scored. InputError when the judge is not autoregressive, nothing is left
// to score, or the sequence is longer than the judge's context.
ContinuationScore score_continuation(Engine& judge, std::string_view prompt, std::string_view continuation);

}  // namespace dlm
