#pragma once
// The decoding runs of `dlm compare`: the autoregressive baseline and each point of the parallel sweep decode
// every prompt item with the run's settings; each item keeps its output or its error, and the run its wall
// time. An optional judge model then scores every output's likelihood.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/cli/progress_bar.h"
#include "engine/cli/prompt_items.h"
#include "engine/cli/run_settings.h"
#include "engine/runtime/engine.h"
#include "engine/runtime/perplexity.h"

namespace dlm::cli {

struct ItemOutput {
  std::string error;  // not empty: the item was not decoded, and this says why
  std::string text;
  int64_t nfe = 0;
  int64_t committed = 0;
  double seconds = 0.0;                     // from entering the batch until finished
  std::optional<ContinuationScore> judged;  // the judge's score of the text
  std::string judge_error;                  // why the judge could not score it (an empty text, too long)

  bool ok() const { return error.empty(); }
};

// The settings a run decodes an item with (the run's own for null); InputError when they are not valid.
using RunSettings = std::function<ItemSettings(const PromptItem* item)>;

struct RunSpec {
  std::string name;  // "ar", "steps=16"
  Engine* engine = nullptr;
  RunSettings settings;
  std::optional<double> x;  // the value of the swept key (parallel runs only)
};

struct RunOutcome {
  RunSpec spec;
  ItemSettings settings;          // the run's own
  std::vector<ItemOutput> items;  // one per prompt item, in order
  double wall_seconds = 0.0;      // decoding the whole run, from the first request to the last result
};

// One forward through the model, untimed, so that no run's timing pays for the first touch of the weights
// (memory-mapped pages, arenas).
void warm_up(Engine& engine);

// Decodes every item; an item that cannot be decoded (unusable line, bad settings, too long) gets its error.
// Items with equal settings decode together, up to `batch_size` at once.
RunOutcome decode_run(const RunSpec& spec, const std::vector<PromptItem>& items, bool chat,
                      int64_t batch_size, ProgressBar& progress);

// Scores each decoded item's text under `judge`, after the prompt as the judge would be given it; an item it
// cannot score keeps the reason in judge_error. `model` tokenized the items given as token ids.
void judge_run(Engine& judge, const Engine& model, const std::vector<PromptItem>& items, bool chat,
               RunOutcome& run);

}  // namespace dlm::cli
