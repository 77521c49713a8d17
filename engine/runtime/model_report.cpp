#include "engine/runtime/model_report.h"

#include <fmt/format.h>

#include "engine/backend/cpu/cpu_backend.h"
#include "engine/runtime/model_sampling.h"

namespace dlm {

ModelReport describe_model(const std::string& dir, const ModelLoadOptions& options) {
  CpuBackend backend(1);
  const LoadedModel model = load_model(backend, dir, options);
  const ModelSpec& spec = model.spec;
  ModelReport report;
  report.dir = dir;
  report.family = spec.family->title;
  report.family_key = spec.family->name;
  report.architecture = spec.architecture;
  report.decoding = decoding_name(spec.family->decoding);
  report.attention = visibility_name(spec.visibility.kind);
  if (spec.visibility.kind == VisibilityKind::BlockCausal)
    report.attention += fmt::format(" (block {})", spec.visibility.block_size);
  report.backbone = model.backbone->summary();
  report.max_positions = model.backbone->max_positions();

  for (const auto& [dtype, entry] : report.backbone.checkpoint_dtypes) report.weight_bytes += entry.bytes;

  const Tokenizer& tokenizer = *model.tokenizer;
  report.tokenizer_tokens = tokenizer.vocab_size();
  auto add = [&](std::string role, std::optional<int32_t> id) {
    // An id the tokenizer lacks (a padded vocabulary, a gap in its ids) has no text.
    if (id)
      report.tokens.push_back(
          {std::move(role), *id, tokenizer.has_id(*id) ? tokenizer.id_to_token(*id) : ""});
  };
  add("bos", spec.bos_token_id);
  add("mask", spec.mask_token_id);
  add("pad", spec.pad_token_id);
  for (int32_t id : spec.stop_token_ids) add("stop", id);
  report.logit_shift = spec.logit_shift;
  report.block_size = spec.block_size;
  report.chat_template = !spec.chat.empty();
  report.tokenizer_kind = tokenizer.kind();
  report.default_sampler =
      resolve_for_model(model_default_sampling(spec), spec, model_decode_context(spec, tokenizer),
                        model.backbone->vocab_size(), dir);
  return report;
}

}  // namespace dlm
