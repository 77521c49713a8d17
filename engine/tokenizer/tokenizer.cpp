#include "engine/tokenizer/tokenizer.h"

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/io/json_parse.h"
#include "engine/io/text_file.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"

namespace dlm {
namespace {

using nlohmann::json;

struct SpecialField {
  const char* name;  // "bos" -> bos_token, bos_token_id
  std::optional<int32_t> SpecialTokens::*member;
};
constexpr SpecialField kSpecialFields[] = {
    {"bos", &SpecialTokens::bos}, {"eos", &SpecialTokens::eos},   {"pad", &SpecialTokens::pad},
    {"unk", &SpecialTokens::unk}, {"mask", &SpecialTokens::mask},
};

std::optional<json> read_json_if_present(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return std::nullopt;
  json root = parse_json(path.string(), read_text_file(path.string()));
  if (!root.is_object()) fail_input("{}: the top level is not an object", path.string());
  return root;
}

// config.json: "<name>_token_id" is an id, a list of ids (the first is taken), or null. A negative id means
// none, as some configs write pad_token_id: -1.
void apply_config_ids(const std::filesystem::path& path, const Tokenizer& tokenizer, SpecialTokens& special) {
  std::optional<json> root = read_json_if_present(path);
  if (!root) return;
  for (const SpecialField& field : kSpecialFields) {
    std::string key = fmt::format("{}_token_id", field.name);
    auto it = root->find(key);
    if (it == root->end() || it->is_null()) continue;
    const json* value = &*it;
    if (value->is_array() && !value->empty()) value = &value->front();
    if (!value->is_number_integer()) {
      fail_input("{}: {} must be an integer or a list of integers, got {}", path.string(), key,
                 describe_json(*it));
    }
    int64_t id = value->get<int64_t>();
    if (id < 0) continue;
    if (id >= tokenizer.vocab_size()) {
      fail_input("{}: {} {} is outside the tokenizer's vocabulary of {}", path.string(), key, id,
                 tokenizer.vocab_size());
    }
    special.*field.member = static_cast<int32_t>(id);
  }
}

// special_tokens_map.json and tokenizer_config.json: "<name>_token" is a string, an AddedToken object with a
// "content", or null.
void apply_token_strings(const std::filesystem::path& path, const Tokenizer& tokenizer,
                         SpecialTokens& special) {
  std::optional<json> root = read_json_if_present(path);
  if (!root) return;
  for (const SpecialField& field : kSpecialFields) {
    std::string key = fmt::format("{}_token", field.name);
    auto it = root->find(key);
    if (it == root->end() || it->is_null()) continue;
    const json* value = &*it;
    if (value->is_object() && value->contains("content")) value = &(*value)["content"];
    if (!value->is_string()) {
      fail_input("{}: {} must be a string or an object with a \"content\" string, got {}", path.string(), key,
                 describe_json(*it));
    }
    const std::string& token = value->get_ref<const std::string&>();
    std::optional<int32_t> id = tokenizer.token_to_id(token);
    if (!id) fail_input("{}: {} '{}' is not in the tokenizer's vocabulary", path.string(), key, token);
    special.*field.member = *id;
  }
}

SpecialTokens resolve_special_tokens(const std::filesystem::path& dir, const Tokenizer& tokenizer) {
  SpecialTokens special = tokenizer.special_tokens();
  apply_config_ids(dir / "config.json", tokenizer, special);
  apply_token_strings(dir / "special_tokens_map.json", tokenizer, special);
  apply_token_strings(dir / "tokenizer_config.json", tokenizer, special);
  return special;
}

template <class T>
std::unique_ptr<Tokenizer> with_special_tokens(std::unique_ptr<T> tokenizer,
                                               const std::filesystem::path& dir) {
  tokenizer->set_special_tokens(resolve_special_tokens(dir, *tokenizer));
  return tokenizer;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& model_dir) {
  std::filesystem::path json_file = model_dir / "tokenizer.json";
  std::filesystem::path model_file = model_dir / "tokenizer.model";
  bool has_model = std::filesystem::exists(model_file);
  if (std::filesystem::exists(json_file)) {
    try {
      return with_special_tokens(load_tokenizer_json(json_file), model_dir);
    } catch (const UnsupportedTokenizer&) {
      if (!has_model) throw;
    }
  }
  if (has_model) return with_special_tokens(std::make_unique<SentencePieceTokenizer>(model_file), model_dir);
  fail_input("{}: no tokenizer.json or tokenizer.model", model_dir.string());
}

}  // namespace dlm
