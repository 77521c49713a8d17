#include "engine/cli/compare_runs.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

namespace dlm::cli {

void warm_up(Engine& engine) {
  ForwardBatch batch;
  batch.add_sequence(std::vector<int32_t>(8, engine.spec().bos_token_id.value_or(0)));
  batch.visibility = Visibility::causal();
  batch.logit_rows = {7};
  engine.backbone().forward(batch);
}

RunOutcome decode_run(const RunSpec& spec, const std::vector<PromptItem>& items, bool chat,
                      int64_t batch_size, ProgressBar& progress) {
  Engine& engine = *spec.engine;
  RunOutcome run{spec, spec.settings(nullptr), std::vector<ItemOutput>(items.size()), 0.0};
  std::vector<RequestGroup> groups;
  for (size_t i = 0; i < items.size(); ++i) {
    const PromptItem& item = items[i];
    if (!item.ok()) {
      run.items[i].error = item.error;
      continue;
    }
    try {
      const ItemSettings settings = spec.settings(&item);
      GenerationRequest request = item_request(engine, item, settings, chat);
      add_to_group(groups, settings, std::move(request), i);
    } catch (const InputError& error) {
      run.items[i].error = item_error_text(item, error);
    }
  }
  for (size_t i = 0; i < items.size(); ++i) {
    if (!run.items[i].ok()) progress.add(1, 0);
  }

  const auto start = std::chrono::steady_clock::now();
  for (const RequestGroup& group : groups) {
    engine.generate(
        group.requests, group.settings.sampling, batch_size, [&](size_t r, GenerationResult result) {
          ItemOutput& output = run.items[group.slots[r]];
          try {
            output.text = engine.decode_generation(result.tokens, group.settings.sampling.stop_strings);
          } catch (const InputError& error) {
            output.error = item_error_text(items[group.slots[r]], error);
          }
          output.nfe = result.nfe;
          output.committed = result.committed;
          output.seconds = result.seconds;
          progress.add(1, result.committed);
        });
  }
  run.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return run;
}

void judge_run(Engine& judge, const Engine& model, const std::vector<PromptItem>& items, bool chat,
               RunOutcome& run) {
  for (size_t i = 0; i < items.size(); ++i) {
    ItemOutput& output = run.items[i];
    if (!output.ok()) continue;
    const PromptItem& item = items[i];
    try {
      // Token ids belong to the decoding model's vocabulary; the judge reads them as that model's text.
      const std::string prompt = item.prompt_ids.empty() ? item_prompt_text(judge, item, chat)
                                                         : model.tokenizer().decode(item.prompt_ids);
      output.judged = score_continuation(judge, prompt, output.text);
    } catch (const InputError& error) {
      output.judge_error = item_error_text(item, error);
    }
  }
}

}  // namespace dlm::cli
