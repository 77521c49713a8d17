// The judge's score of a continuation against the logits the training code computed for the shipped AR model
// (tests/golden/default_models/ar-11m.safetensors: BOS, a task prompt, its answer, EOS, with the causal
// logits of every position). The reference NLL is the log-softmax of those logits in double precision.
#include "engine/runtime/perplexity.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/io/safetensors.h"
#include "tests/unit/input_error.h"

namespace dlm {
namespace {

using ::testing::HasSubstr;

const std::string kArModel = std::string(DLM_MODELS_DIR) + "/ar-11m";

// One golden case cut after the prompt's last token (`prompt_end`: ':' or '=') into prompt and answer, with
// the reference NLL of the answer's tokens (EOS excluded: a continuation is text, and text has no EOS).
struct GoldenCase {
  std::vector<int32_t> prompt_ids, answer_ids;
  double reference_nll = 0.0;
};

GoldenCase golden_case(const Tokenizer& tokenizer, const std::string& name, const std::string& prompt_end) {
  const SafetensorsFile golden(std::string(DLM_GOLDEN_DIR) + "/default_models/ar-11m.safetensors");
  const Tensor ids_tensor = golden.tensor(name + ".input_ids");
  const Tensor logits = golden.tensor(name + ".logits");
  const int32_t* ids = ids_tensor.data_as<int32_t>();
  const int64_t total = ids_tensor.numel(), vocab = logits.dim(1);
  const int64_t answer_begin = std::find(ids, ids + total, *tokenizer.token_to_id(prompt_end)) - ids + 1;
  GoldenCase out;
  if (answer_begin >= total - 1) {
    ADD_FAILURE() << name << ": no '" << prompt_end << "' before the answer";
    return out;
  }
  out.prompt_ids.assign(ids + 1, ids + answer_begin);
  out.answer_ids.assign(ids + answer_begin, ids + total - 1);
  for (int64_t i = answer_begin; i < total - 1; ++i) {
    const float* row = logits.data_as<float>() + (i - 1) * vocab;
    double max = row[0], sum = 0.0;
    for (int64_t v = 0; v < vocab; ++v) max = std::max<double>(max, row[v]);
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
    out.reference_nll += max + std::log(sum) - row[ids[i]];
  }
  return out;
}

TEST(Perplexity, MatchesTheTrainingCodesLogits) {
  Engine judge(kArModel, EngineOptions{2, ""});
  const Tokenizer& tokenizer = judge.tokenizer();
  for (const auto& [name, prompt_end] : {std::pair{"reverse", ":"}, {"sudoku4", ":"}, {"add", "="}}) {
    const GoldenCase golden = golden_case(tokenizer, name, prompt_end);
    const std::string prompt = tokenizer.decode(golden.prompt_ids);
    const std::string answer = tokenizer.decode(golden.answer_ids);
    // The texts must tokenize back to the golden ids, or the comparison below would be of different tokens.
    ASSERT_EQ(tokenizer.encode(prompt, SpecialText::Parse), golden.prompt_ids) << name;
    ASSERT_EQ(tokenizer.encode(answer, SpecialText::AsPlainText), golden.answer_ids) << name;

    const ContinuationScore score = score_continuation(judge, prompt, answer);
    EXPECT_EQ(score.tokens, static_cast<int64_t>(golden.answer_ids.size())) << name;
    EXPECT_NEAR(score.nll, golden.reference_nll, 1e-3 * score.tokens) << name << ": '" << prompt << answer;
    EXPECT_NEAR(score.perplexity(), std::exp(golden.reference_nll / score.tokens), 1e-3) << name;
  }
}

TEST(Perplexity, RejectsWhatCannotBeScored) {
  Engine judge(kArModel, EngineOptions{2, ""});
  EXPECT_THAT(input_error_of([&] { score_continuation(judge, "reverse a b:", ""); }),
              HasSubstr("nothing to score"));
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += "a ";
  EXPECT_THAT(input_error_of([&] { score_continuation(judge, "reverse a b:", long_text); }),
              HasSubstr("past the judge's context of 512"));
  Engine diffusion(std::string(DLM_MODELS_DIR) + "/diffusion-11m", EngineOptions{2, ""});
  EXPECT_THAT(input_error_of([&] { score_continuation(diffusion, "reverse a b:", "b a"); }),
              HasSubstr("a judge must be an autoregressive model"));
}

}  // namespace
}  // namespace dlm
