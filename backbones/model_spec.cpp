#include "backbones/model_spec.h"

#include <algorithm>

#include "engine/core/error.h"

namespace dlm {

namespace {

class SpecResolver {
 public:
  SpecResolver(const Tokenizer& tokenizer, int64_t vocab_size)
      : tokenizer_(tokenizer), vocab_size_(vocab_size) {}

  int32_t checked(int64_t id, std::string_view source, std::string_view what) const {
    if (id < 0 || id >= vocab_size_)
      fail_input("{}: {} id {} is outside the model's vocabulary of {}", source, what, id, vocab_size_);
    return static_cast<int32_t>(id);
  }
  // A token given by text: a user overlay must name a real token, the built-in one may not apply.
  std::optional<int32_t> by_text(const std::string& text, const ModelOverlay& overlay, bool required,
                                 std::string_view what) const {
    std::optional<int32_t> id = tokenizer_.token_to_id(text);
    if (!id && required)
      fail_input("{}: {} '{}' is not a token of the model's tokenizer", overlay.source, what, text);
    if (id) return checked(*id, overlay.source, what);
    return std::nullopt;
  }
  std::optional<int32_t> mask_of(const ModelOverlay& overlay, bool required) const {
    if (overlay.mask_token_id) return checked(*overlay.mask_token_id, overlay.source, "mask token");
    if (overlay.mask_token) return by_text(*overlay.mask_token, overlay, required, "mask token");
    return std::nullopt;
  }
  void add_stops(const ModelOverlay& overlay, bool required, std::vector<int32_t>& stops) const {
    for (const std::string& text : overlay.stop_tokens) {
      if (std::optional<int32_t> id = by_text(text, overlay, required, "stop token")) add(*id, stops);
    }
    for (int64_t id : overlay.stop_token_ids) add(checked(id, overlay.source, "stop token"), stops);
  }
  static void add(int32_t id, std::vector<int32_t>& ids) {
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }

 private:
  const Tokenizer& tokenizer_;
  int64_t vocab_size_;
};

// Every text of a chat template, for the token check.
std::string chat_text(const ChatTemplate& chat) {
  return chat.system + chat.user + chat.assistant + chat.generation;
}

// Whether every special-token-like piece of a template ("<|...|>") is a token of the tokenizer: a family's
// chat format does not apply to a model of that family trained without it (a base model, our own models).
bool names_only_known_tokens(std::string_view chat_template, const Tokenizer& tokenizer) {
  for (size_t open = chat_template.find("<|"); open != std::string::npos;
       open = chat_template.find("<|", open + 2)) {
    const size_t close = chat_template.find("|>", open + 2);
    if (close == std::string::npos) break;
    if (!tokenizer.token_to_id(std::string_view(chat_template).substr(open, close + 2 - open))) return false;
  }
  return true;
}

}  // namespace

ModelSpec resolve_model_spec(const FamilyTraits& family, const HfConfig& config,
                             const std::optional<HfConfig>& generation_config, const Tokenizer& tokenizer,
                             int64_t vocab_size, const ModelOverlay& builtin, const ModelOverlay* user) {
  const SpecResolver resolve(tokenizer, vocab_size);
  ModelSpec spec;
  spec.family = &family;
  const auto architectures = config.optional<std::vector<std::string>>("architectures");
  spec.architecture = architectures && !architectures->empty() ? architectures->front()
                                                               : config.required<std::string>("model_type");

  const SpecialTokens& special = tokenizer.special_tokens();
  if (user) spec.mask_token_id = resolve.mask_of(*user, true);
  if (!spec.mask_token_id && config.has("mask_token_id"))
    spec.mask_token_id =
        resolve.checked(config.required<int64_t>("mask_token_id"), config.source(), "mask token");
  if (!spec.mask_token_id && special.mask)
    spec.mask_token_id = resolve.checked(*special.mask, "tokenizer", "mask token");
  if (!spec.mask_token_id) spec.mask_token_id = resolve.mask_of(builtin, false);
  if (!spec.mask_token_id && family.decoding != DecodingKind::Autoregressive) {
    fail_input(
        "{}: no mask token for this {} model: config.json has no mask_token_id, the tokenizer has no mask "
        "token, and {} names none; give one with mask_token in a model overlay",
        config.source(), family.title, builtin.source);
  }
  if (special.bos) spec.bos_token_id = resolve.checked(*special.bos, "tokenizer", "BOS token");
  if (special.pad) spec.pad_token_id = resolve.checked(*special.pad, "tokenizer", "padding token");

  if (user && (!user->stop_tokens.empty() || !user->stop_token_ids.empty())) {
    resolve.add_stops(*user, true, spec.stop_token_ids);
  } else {
    if (special.eos)
      SpecResolver::add(resolve.checked(*special.eos, "tokenizer", "EOS token"), spec.stop_token_ids);
    for (const HfConfig* source : {&config, generation_config ? &*generation_config : nullptr}) {
      if (source == nullptr) continue;
      for (int64_t id : source->optional_int_list("eos_token_id").value_or(std::vector<int64_t>{}))
        SpecResolver::add(resolve.checked(id, source->source(), "EOS token"), spec.stop_token_ids);
    }
    resolve.add_stops(builtin, false, spec.stop_token_ids);
  }

  auto pick = [&](auto member) {
    if (user && (user->*member)) return user->*member;
    return builtin.*member;
  };
  spec.logit_shift = pick(&ModelOverlay::logit_shift).value_or(0);
  if (user && user->chat) {
    spec.chat = *user->chat;
  } else if (builtin.chat && names_only_known_tokens(chat_text(*builtin.chat), tokenizer)) {
    spec.chat = *builtin.chat;
  }
  for (const ModelOverlay* overlay : {&builtin, user}) {
    if (overlay && overlay->sampler) spec.sampler_layers.push_back(*overlay->sampler);
  }
  switch (family.attention) {
    case VisibilityKind::BlockCausal: {
      std::optional<int64_t> block = user ? user->block_size : std::nullopt;
      if (!block && !family.block_size_key.empty() && config.has(family.block_size_key)) {
        block = config.required<int64_t>(family.block_size_key);
        if (*block < 1) {
          fail_input("{}: key '{}' (the block size) must be at least 1, got {}", config.source(),
                     family.block_size_key, *block);
        }
      }
      if (!block) block = builtin.block_size;
      if (!block)
        fail_input("{}: no block size for this {} model; give block_size in a model overlay", config.source(),
                   family.title);
      spec.block_size = *block;
      spec.visibility = Visibility::block_causal(spec.block_size);
      break;
    }
    case VisibilityKind::Causal:
      spec.visibility = Visibility::causal();
      break;
    default:
      spec.visibility = Visibility::bidirectional();
      break;
  }
  return spec;
}

}  // namespace dlm
