#include "engine/runtime/perplexity.h"

#include <algorithm>
#include <vector>

#include "engine/core/buffer.h"

namespace dlm {

namespace {

// -log softmax(row)[target], in double precision so long vocabularies do not lose the small terms.
double token_nll(const float* row, int64_t vocab, int32_t target) {
  const double max = *std::max_element(row, row + vocab);
  double sum = 0.0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
  return max + std::log(sum) - static_cast<double>(row[target]);
}

}  // namespace

void check_judge(const Engine& judge) {
  const FamilyTraits& family = *judge.spec().family;
  if (family.decoding != DecodingKind::Autoregressive) {
    fail_input("{}: a judge must be an autoregressive model; this {} model decodes by {}", judge.model_dir(),
               family.title, decoding_name(family.decoding));
  }
}

ContinuationScore score_continuation(Engine& judge, std::string_view prompt, std::string_view continuation) {
  check_judge(judge);
  const ModelSpec& spec = judge.spec();
  std::vector<int32_t> ids;
  if (spec.bos_token_id) ids.push_back(*spec.bos_token_id);
  const std::vector<int32_t> prompt_ids = judge.tokenizer().encode(prompt, SpecialText::Parse);
  ids.insert(ids.end(), prompt_ids.begin(), prompt_ids.end());
  const std::vector<int32_t> continuation_ids =
      judge.tokenizer().encode(continuation, SpecialText::AsPlainText);
  ids.insert(ids.end(), continuation_ids.begin(), continuation_ids.end());

  // Row i of a causal forward predicts token i + 1.
  const int64_t first = std::max<int64_t>(static_cast<int64_t>(ids.size() - continuation_ids.size()), 1);
  const int64_t total = static_cast<int64_t>(ids.size());
  if (first >= total) {
    fail_input("{}: nothing to score: {}", judge.model_dir(),
               continuation_ids.empty() ? "the continuation has no tokens"
                                        : "its one token has none before it (no BOS, an empty prompt)");
  }
  Backbone& backbone = judge.backbone();
  if (total > backbone.max_positions()) {
    fail_input("{}: prompt and continuation are {} tokens, past the judge's context of {}", judge.model_dir(),
               total, backbone.max_positions());
  }

  ForwardBatch batch;
  batch.add_sequence(ids);
  batch.visibility = Visibility::causal();
  batch.outputs = ForwardOutputs::Logits;
  for (int64_t row = first - 1; row < total - 1; ++row) batch.logit_rows.push_back(static_cast<int32_t>(row));
  const Tensor logits = backbone.forward(batch).logits;
  HostTensor staging;
  const float* rows = logits.device().kind == DeviceKind::Cpu ? logits.data_as<float>() : nullptr;
  if (rows == nullptr) {
    staging = HostTensor(logits.dtype(), logits.shape());
    judge.backend().copy(logits, staging);
    rows = staging.data<float>();
  }

  const int64_t vocab = logits.dim(1);
  ContinuationScore score;
  for (int64_t i = first; i < total; ++i, ++score.tokens) {
    score.nll += token_nll(rows + (i - first) * vocab, vocab, ids[i]);
  }
  return score;
}

}  // namespace dlm
