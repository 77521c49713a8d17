#include "engine/cli/generate_command.h"

#include <chrono>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "engine/cli/canvas_view.h"
#include "engine/cli/exit_codes.h"
#include "engine/cli/jsonl_writer.h"
#include "engine/cli/model_path.h"
#include "engine/cli/progress_bar.h"
#include "engine/cli/prompt_items.h"
#include "engine/cli/resume.h"
#include "engine/cli/sampling_record.h"
#include "engine/runtime/engine.h"

namespace dlm::cli {

namespace {

using Json = nlohmann::ordered_json;

std::string_view finish_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::StopToken:
      return "stop_token";
    case FinishReason::StopString:
      return "stop_string";
    case FinishReason::Length:
      break;
  }
  return "length";
}

Json error_record(const PromptItem& item, std::string_view message) {
  return {{"id", item.id}, {"error", message}};
}

// The item's input as given: its prompt, or its messages.
void put_input(const PromptItem& item, Json& record) {
  if (!item.prompt_ids.empty()) {
    record["prompt_ids"] = item.prompt_ids;
    return;
  }
  if (item.messages.empty()) {
    record["prompt"] = item.prompt;
    return;
  }
  Json messages = Json::array();
  for (const ChatMessage& message : item.messages) {
    const char* role = message.role == ChatRole::System ? "system"
                       : message.role == ChatRole::User ? "user"
                                                        : "assistant";
    messages.push_back({{"role", role}, {"content", message.content}});
  }
  record["messages"] = std::move(messages);
}

Json result_record(const Engine& engine, const PromptItem& item, const GenerationResult& result,
                   const ItemSettings& settings) {
  Json record = {{"id", item.id}};
  put_input(item, record);
  if (item.expected) record["expected"] = *item.expected;
  record["text"] = engine.decode_generation(result.tokens, settings.sampling.stop_strings);
  record["token_ids"] = result.tokens;
  record["finish"] = std::string(finish_name(result.finish));
  record["nfe"] = result.nfe;
  record["tokens_per_nfe"] = result.tokens_per_nfe();
  record["seconds"] = result.seconds;
  record["timings"] = {{"queued", result.queued_seconds},
                       {"prefill", result.phases.prefill},
                       {"denoise", result.phases.denoise},
                       {"commit", result.phases.commit}};
  record["settings"] = sampling_record(settings.sampling, settings.seed);
  return record;
}

// Writes records in item order as they become ready, so every finished prefix is on disk.
class OrderedOutput {
 public:
  explicit OrderedOutput(JsonlWriter& writer) : writer_(writer) {}
  void put(size_t slot, Json record) {
    failed_ += record.contains("error") ? 1 : 0;
    pending_.emplace(slot, std::move(record));
    for (auto it = pending_.begin(); it != pending_.end() && it->first == next_; it = pending_.erase(it)) {
      writer_.write(it->second);
      ++next_;
    }
  }
  size_t failed() const { return failed_; }

 private:
  JsonlWriter& writer_;
  std::map<size_t, Json> pending_;
  size_t next_ = 0, failed_ = 0;
};

void print_resolved(const GenerateOptions& options, const Engine& engine, std::ostream& out) {
  GenerationConfig resolved = options.config;
  resolved.model = engine.model_dir();
  resolved.sampler = item_settings(engine, options.layers, nullptr).sampling;
  out << to_yaml(resolved);
}

}  // namespace

int run_generate(const GenerateOptions& options) {
  const GenerationConfig& config = options.config;
  const auto start = std::chrono::steady_clock::now();
  std::vector<PromptItem> items;
  if (!options.print_config) items = collect_prompt_items(config.prompts, options.prompts);
  const std::unique_ptr<Engine> opened =
      open_engine(resolve_model_dir(config.model), options.model_config, options.device);
  Engine& engine = *opened;
  // The run's own settings must be good, whatever the items add.
  item_settings(engine, options.layers, nullptr);
  if (options.chat && engine.spec().chat.empty()) {
    fail_input("--chat: {} has no chat template (give one in the 'chat' section of a --model-config overlay)",
               engine.model_dir());
  }
  if (options.print_config) {
    print_resolved(options, engine, std::cout);
    return kExitOk;
  }
  if (options.verbose) print_resolved(options, engine, std::cerr);

  std::set<std::string> done;
  if (options.resume) done = recorded_ids(config.output);
  // Opened once everything else is known to be good.
  JsonlWriter writer(config.output, options.resume ? JsonlWriter::Mode::Append : JsonlWriter::Mode::Truncate);
  OrderedOutput output(writer);

  // An item that cannot be decoded (a malformed line, too long, bad settings) gets its error record; the
  // others decode.
  std::vector<const PromptItem*> slot_items;
  std::vector<RequestGroup> groups;
  for (const PromptItem& item : items) {
    if (done.contains(item.id.dump())) continue;
    const size_t slot = slot_items.size();
    slot_items.push_back(&item);
    if (!item.ok()) {
      output.put(slot, error_record(item, item.error));
      continue;
    }
    try {
      const ItemSettings settings = item_settings(engine, options.layers, &item);
      add_to_group(groups, settings, item_request(engine, item, settings, options.chat), slot);
    } catch (const InputError& error) {
      output.put(slot, error_record(item, item_error_text(item, error)));
    }
  }
  if (options.resume && options.verbose) {
    std::cerr << fmt::format("dlm generate: resuming: {} of {} items already in {}\n",
                             items.size() - slot_items.size(), items.size(), config.output);
  }

  {  // the bar is cleared before the summary
    ProgressBar progress(stderr, slot_items.size() - output.failed(), options.progress && !options.visual);
    std::optional<CanvasView> canvas;
    if (options.visual) canvas.emplace(engine.tokenizer(), engine.context().mask_id, stderr);
    for (const RequestGroup& group : groups) {
      auto label = [&](size_t r) { return slot_items[group.slots[r]]->id.dump(); };
      StepObserver observer;
      if (canvas)
        observer = [&](size_t r, std::span<const int32_t> generated) { canvas->update(label(r), generated); };
      engine.generate(
          group.requests, group.settings.sampling, options.batch_size,
          [&](size_t r, GenerationResult result) {
            if (canvas) canvas->retire(label(r));
            progress.add(1, result.committed);
            const PromptItem& item = *slot_items[group.slots[r]];
            try {
              output.put(group.slots[r], result_record(engine, item, result, group.settings));
            } catch (const InputError& error) {
              output.put(group.slots[r],
                         error_record(item, fmt::format("{}: {}", item.source, error.what())));
            }
          },
          observer);
    }
  }
  if (options.verbose) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cerr << fmt::format("dlm generate: {} items, {} ok, {} failed, {:.2f} s\n", slot_items.size(),
                             slot_items.size() - output.failed(), output.failed(), seconds);
  }
  return output.failed() == 0 ? kExitOk : kExitItemsFailed;
}

}  // namespace dlm::cli
