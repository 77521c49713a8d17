#pragma once
// One request's decoding as a state machine the Decoder steps: each step the task adds the sequences it
// needs computed to the shared forward batch, then consumes the logit rows it asked for. Tasks never see one
// another, so a request decodes the same alone or in any batch.
#include <cstdint>
#include <span>
#include <vector>

#include "backbones/backbone.h"
#include "engine/ops/token_rule.h"
#include "samplers/generation.h"

namespace dlm {

enum class StepPhase { Prefill, Denoise, Commit };

// The logit rows a task asked for in its last plan, in the order it asked: host float32 [rows, vocab].
struct LogitRows {
  const float* data = nullptr;
  int64_t rows = 0;
  int64_t vocab = 0;
  std::span<const float> row(int64_t i) const { return {data + i * vocab, static_cast<size_t>(vocab)}; }
};

// What a task gets back for the rows of its last plan, in order: the host logit rows, or, when the step ran
// every row's TokenRule on the device (DecodeTask::token_rules), one TokenPrediction per row.
struct StepRows {
  LogitRows logits;
  std::span<const TokenPrediction> predictions;
  bool predicted = false;  // predictions, not logits
};

// A step's token rules, one per logit row, and the ids their repetition penalties name
// (TokenRule::penalized_begin counts from the start of penalized_ids).
struct StepRules {
  std::vector<TokenRule> rules;
  std::vector<int32_t> penalized_ids;
};

// What a finished task hands back; the Decoder adds the counts and times it measured.
struct TaskOutput {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::Length;
  int64_t committed = 0;
};

class DecodeTask {
 public:
  virtual ~DecodeTask() = default;
  // Appends this request's sequences (with a CacheUse each) and logit rows for its next forward; a task that
  // is not finished always has one.
  virtual StepPhase plan(ForwardBatch& batch) = 0;
  // Appends one TokenRule per logit row of the last plan, in order (and the ids its penalties name), and
  // returns true; or returns false, appending nothing, when the rows need the host's logits. A rule's
  // guidance_row counts from the task's first row.
  virtual bool token_rules(StepRules& step) const = 0;
  virtual void consume(const StepRows& rows) = 0;
  virtual bool finished() const = 0;
  virtual TaskOutput output() const = 0;
  // The generated positions as they stand now: committed tokens, and the mask id where a position is still
  // masked (for watching a canvas fill in; AR: the tokens so far).
  virtual std::span<const int32_t> generated() const = 0;
};

// Appends positions [begin, end) of `tokens` as one sequence of `batch` with the given cache use.
void add_span(ForwardBatch& batch, const std::vector<int32_t>& tokens, int64_t begin, int64_t end,
              CacheUse cache);

// Tokens [begin, end) of a canvas, cut after the first stop id when `cut_at_stop` is set (and one occurs).
TaskOutput finish_output(const std::vector<int32_t>& canvas, int64_t begin, int64_t end,
                         std::span<const int32_t> stop_ids, bool cut_at_stop, int64_t committed);
// Whether tokens [begin, end) of a canvas hold a stop id.
bool holds_stop(const std::vector<int32_t>& canvas, int64_t begin, int64_t end,
                std::span<const int32_t> stop_ids);

}  // namespace dlm
