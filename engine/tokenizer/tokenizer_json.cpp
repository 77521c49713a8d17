// Reads Hugging Face tokenizer.json files whose model is byte-level BPE.
#include <unordered_map>

#include "engine/core/error.h"
#include "engine/io/json_parse.h"
#include "engine/io/text_file.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/bpe_vocab.h"

namespace dlm {
namespace {

using nlohmann::json;

class JsonReader {
 public:
  explicit JsonReader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fault(std::string_view what) const { fail_input("{}: {}", source_, what); }
  [[noreturn]] void unsupported(std::string_view what) const {
    throw UnsupportedTokenizer(fmt::format("{}: {} is unsupported", source_, what));
  }

  const json& member(const json& object, const char* key, const char* where) const {
    if (!object.is_object()) fault(fmt::format("{} is not an object", where));
    auto it = object.find(key);
    if (it == object.end()) fault(fmt::format("{} has no \"{}\"", where, key));
    return *it;
  }
  std::string string_member(const json& object, const char* key, const char* where) const {
    const json& value = member(object, key, where);
    if (!value.is_string()) fault(fmt::format("{}.{} is not a string", where, key));
    return value.get<std::string>();
  }
  bool bool_member(const json& object, const char* key, bool fallback, const char* where) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fault(fmt::format("{}.{} is not a boolean", where, key));
    return it->get<bool>();
  }

  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

TextNormalizer read_normalizer(const JsonReader& r, const json& normalizer) {
  if (normalizer.is_null()) return TextNormalizer::None;
  std::string type = r.string_member(normalizer, "type", "normalizer");
  if (type == "NFC") return TextNormalizer::Nfc;
  if (type == "Sequence") {
    const json& list = r.member(normalizer, "normalizers", "normalizer");
    if (!list.is_array()) r.fault("normalizer.normalizers is not a list");
    if (list.empty()) return TextNormalizer::None;
    if (list.size() == 1) return read_normalizer(r, list[0]);
  }
  r.unsupported(fmt::format("normalizer '{}' (only none or NFC)", type));
}

SplitBehavior read_behavior(const JsonReader& r, const std::string& name) {
  if (name == "Removed") return SplitBehavior::Removed;
  if (name == "Isolated") return SplitBehavior::Isolated;
  if (name == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (name == "Contiguous") return SplitBehavior::Contiguous;
  r.fault(fmt::format("Split behavior '{}' is unknown", name));
}

SplitRegex compile(const JsonReader& r, std::string_view pattern) {
  try {
    return SplitRegex(pattern, RegexDialect::Oniguruma);
  } catch (const InputError& e) {
    r.fault(fmt::format("pre_tokenizer: {}", e.what()));
  }
}

// Flattens Sequence pre-tokenizers into `steps`; returns whether a ByteLevel step was seen (it must be last:
// steps after it would see the byte-level alphabet, not the text).
void read_pre_tokenizer(const JsonReader& r, const json& node, PreTokenizer& steps, bool& byte_level) {
  std::string type = r.string_member(node, "type", "pre_tokenizer");
  if (type == "Sequence") {
    const json& list = r.member(node, "pretokenizers", "pre_tokenizer");
    if (!list.is_array()) r.fault("pre_tokenizer.pretokenizers is not a list");
    for (const json& child : list) read_pre_tokenizer(r, child, steps, byte_level);
    return;
  }
  if (byte_level) r.unsupported(fmt::format("pre_tokenizer '{}' after ByteLevel", type));
  if (type == "Split") {
    const json& pattern = r.member(node, "pattern", "Split pre_tokenizer");
    std::string regex;
    if (pattern.contains("Regex")) {
      regex = r.string_member(pattern, "Regex", "Split pattern");
    } else if (pattern.contains("String")) {
      regex = escape_regex(r.string_member(pattern, "String", "Split pattern"));
    } else {
      r.fault(fmt::format("Split pattern {} is neither Regex nor String", pattern.dump()));
    }
    SplitBehavior behavior = read_behavior(r, r.string_member(node, "behavior", "Split pre_tokenizer"));
    steps.add_split(compile(r, regex), behavior, r.bool_member(node, "invert", false, "Split pre_tokenizer"));
  } else if (type == "ByteLevel") {
    byte_level = true;
    if (r.bool_member(node, "add_prefix_space", true, "ByteLevel pre_tokenizer")) steps.add_prefix_space();
    if (r.bool_member(node, "use_regex", true, "ByteLevel pre_tokenizer")) {
      steps.add_split(compile(r, kGpt2Pattern), SplitBehavior::Isolated, false);
    }
  } else {
    r.unsupported(fmt::format("pre_tokenizer '{}' (only Split, ByteLevel, Sequence)", type));
  }
}

void check_decoder(const JsonReader& r, const json& decoder) {
  if (decoder.is_null()) r.unsupported("a missing decoder (only ByteLevel)");
  std::string type = r.string_member(decoder, "type", "decoder");
  if (type != "ByteLevel") r.unsupported(fmt::format("decoder '{}' (only ByteLevel)", type));
}

std::pair<std::string, std::string> read_merge(const JsonReader& r, const json& merge, size_t index) {
  if (merge.is_string()) {
    const std::string& line = merge.get_ref<const std::string&>();
    size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      r.fault(fmt::format("merge {} '{}' is not two tokens separated by one space", index, line));
    }
    return {line.substr(0, space), line.substr(space + 1)};
  }
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return {merge[0].get<std::string>(), merge[1].get<std::string>()};
  }
  r.fault(fmt::format("merge {} {} is neither \"a b\" nor [\"a\", \"b\"]", index, merge.dump()));
}

void check_model_kind(const JsonReader& r, const json& model) {
  std::string type = model.is_object() ? model.value("type", "BPE") : "";
  if (type != "BPE") r.unsupported(fmt::format("model type '{}' (only byte-level BPE)", type));
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"] != 0) {
    r.unsupported("BPE dropout");
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && !model[key].is_null() && model[key] != "") {
      r.unsupported(fmt::format("BPE {}", key));
    }
  }
}

BpeModel read_model(const JsonReader& r, const json& model, BpeVocab& vocab) {
  const json& vocab_json = r.member(model, "vocab", "model");
  if (!vocab_json.is_object()) r.fault("model.vocab is not an object");
  for (const auto& [token, id] : vocab_json.items()) {
    if (!id.is_number_integer()) {
      r.fault(fmt::format("vocab token '{}' has id {}, not an integer", token, id.dump()));
    }
    vocab.add(token, id.get<int64_t>());
  }

  const json& merges_json = r.member(model, "merges", "model");
  if (!merges_json.is_array()) r.fault("model.merges is not a list");
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(merges_json.size());
  for (size_t i = 0; i < merges_json.size(); ++i) merges.push_back(read_merge(r, merges_json[i], i));

  BpeOptions options;
  options.ignore_merges = r.bool_member(model, "ignore_merges", false, "model");
  options.fuse_unk = r.bool_member(model, "fuse_unk", false, "model");
  if (model.contains("unk_token") && !model["unk_token"].is_null()) {
    std::string unk = r.string_member(model, "unk_token", "model");
    options.unk = vocab.find(unk);
    if (!options.unk) r.fault(fmt::format("unk_token '{}' is not in the vocab", unk));
  }
  return vocab.build(merges, options, r.bool_member(model, "byte_fallback", false, "model"));
}

// Hugging Face ignores the ids written with the added tokens and gives each the id of the same token in the
// vocab, else the next id after the vocab's entries; a file whose ids disagree is rejected, since the model
// was trained with the ids Hugging Face assigns.
std::vector<AddedToken> read_added_tokens(const JsonReader& r, const json& root, const BpeVocab& vocab) {
  std::vector<AddedToken> added;
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return added;
  const json& list = root["added_tokens"];
  if (!list.is_array()) r.fault("added_tokens is not a list");
  std::unordered_map<std::string, size_t> added_index;  // content -> position in `added`
  int64_t next_id = static_cast<int64_t>(vocab.size());
  for (const json& entry : list) {
    AddedToken t;
    t.content = r.string_member(entry, "content", "added token");
    if (t.content.empty()) continue;  // never matches, as in the reference implementation
    const json& id = r.member(entry, "id", "added token");
    if (!id.is_number_integer()) {
      r.fault(fmt::format("added token '{}' has id {}, not an integer", t.content, id.dump()));
    }
    auto known = added_index.find(t.content);
    std::optional<int32_t> in_vocab = vocab.find(t.content);
    int64_t expected = known != added_index.end() ? added[known->second].id
                       : in_vocab                 ? *in_vocab
                                                  : next_id++;
    if (id.get<int64_t>() != expected || expected >= kMaxTokenId) {
      r.fault(fmt::format(
          "added token '{}' has id {}, but its id is {} (its vocab id, or the next id after the vocab's {} "
          "entries and the added tokens before it)",
          t.content, id.dump(), expected, vocab.size()));
    }
    t.id = static_cast<int32_t>(expected);
    t.special = r.bool_member(entry, "special", false, "added token");
    t.single_word = r.bool_member(entry, "single_word", false, "added token");
    t.lstrip = r.bool_member(entry, "lstrip", false, "added token");
    t.rstrip = r.bool_member(entry, "rstrip", false, "added token");
    t.normalized = r.bool_member(entry, "normalized", !t.special, "added token");
    if (known != added_index.end()) {
      added[known->second] = std::move(t);  // a repeated token takes the later flags
    } else {
      added_index.emplace(t.content, added.size());
      added.push_back(std::move(t));
    }
  }
  return added;
}

std::unique_ptr<BpeTokenizer> parse(const JsonReader& r, const json& root) {
  if (!root.is_object()) r.fault("the top level is not an object");
  // What is supported is settled first, so a tokenizer of another kind is reported as such.
  const json& model = r.member(root, "model", "tokenizer");
  check_model_kind(r, model);
  TextNormalizer normalizer =
      root.contains("normalizer") ? read_normalizer(r, root["normalizer"]) : TextNormalizer::None;
  PreTokenizer pre_tokenizer;
  bool byte_level = false;
  const json& pre = r.member(root, "pre_tokenizer", "tokenizer");
  if (!pre.is_null()) read_pre_tokenizer(r, pre, pre_tokenizer, byte_level);
  if (!byte_level) r.unsupported("a pre_tokenizer without ByteLevel (only byte-level BPE)");
  check_decoder(r, r.member(root, "decoder", "tokenizer"));

  BpeVocab vocab(r.source());
  BpeModel bpe = read_model(r, model, vocab);
  std::vector<AddedToken> added = read_added_tokens(r, root, vocab);
  return std::make_unique<BpeTokenizer>(vocab.release_strings(), std::move(bpe), std::move(pre_tokenizer),
                                        std::move(added), normalizer);
}

}  // namespace

std::unique_ptr<BpeTokenizer> parse_tokenizer_json(std::string_view text, const std::string& source) {
  JsonReader reader(source);
  json root = parse_json(source, text);
  try {
    return parse(reader, root);
  } catch (const json::exception& e) {
    reader.fault(e.what());
  }
}

std::unique_ptr<BpeTokenizer> load_tokenizer_json(const std::filesystem::path& path) {
  return parse_tokenizer_json(read_text_file(path.string()), path.string());
}

}  // namespace dlm
