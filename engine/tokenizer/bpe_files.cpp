// Reads the byte-level BPE formats that predate tokenizer.json: tiktoken rank files and GPT-2's
// encoder.json + vocab.bpe.
#include <functional>

#include "engine/core/error.h"
#include "engine/io/json_parse.h"
#include "engine/io/text_file.h"
#include "engine/tokenizer/bpe_tokenizer.h"
#include "engine/tokenizer/bpe_vocab.h"
#include "engine/tokenizer/byte_level.h"

namespace dlm {
namespace {

// Strict standard base64 (RFC 4648 with padding); nullopt on any other character or a bad length.
std::optional<std::string> decode_base64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    size_t padding = 0;
    if (i + 4 == text.size()) padding = (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=');
    uint32_t group = 0;
    for (size_t k = 0; k < 4; ++k) {
      int v = k >= 4 - padding ? 0 : value(text[i + k]);
      if (v < 0) return std::nullopt;
      group = group << 6 | static_cast<uint32_t>(v);
    }
    out.push_back(static_cast<char>(group >> 16));
    if (padding < 2) out.push_back(static_cast<char>(group >> 8));
    if (padding < 1) out.push_back(static_cast<char>(group));
  }
  return out;
}

std::vector<AddedToken> special_added_tokens(const std::vector<std::pair<std::string, int32_t>>& specials) {
  std::vector<AddedToken> added;
  for (const auto& [content, id] : specials) {
    AddedToken t;
    t.content = content;
    t.id = id;
    t.special = true;
    added.push_back(std::move(t));
  }
  return added;
}

// Calls visit(line_number, line) for each line of text (1-based numbers, without the '\n').
void for_each_line(std::string_view text, const std::function<void(size_t, std::string_view)>& visit) {
  size_t line_number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    visit(++line_number, text.substr(pos, end - pos));
    pos = end + 1;
  }
}

}  // namespace

std::unique_ptr<BpeTokenizer> load_tiktoken(
    const std::filesystem::path& path, std::string_view pattern,
    const std::vector<std::pair<std::string, int32_t>>& special_tokens) {
  std::string text = read_text_file(path.string());
  std::vector<std::optional<std::string>> token_bytes;
  for_each_line(text, [&](size_t line_number, std::string_view line) {
    if (line.empty()) return;
    size_t space = line.find(' ');
    std::optional<std::string> bytes;
    int64_t rank = -1;
    if (space != std::string_view::npos) {
      bytes = decode_base64(line.substr(0, space));
      std::string_view digits = line.substr(space + 1);
      if (!digits.empty() && digits.size() <= 9 &&
          digits.find_first_not_of("0123456789") == std::string::npos) {
        rank = std::stoll(std::string(digits));
      }
    }
    if (!bytes || bytes->empty() || rank < 0) {
      fail_input("{}:{}: expected 'base64-token rank', got '{}'", path.string(), line_number, line);
    }
    if (rank >= kMaxTokenId) fail_input("{}:{}: rank {} is out of range", path.string(), line_number, rank);
    if (static_cast<size_t>(rank) >= token_bytes.size()) token_bytes.resize(rank + 1);
    if (token_bytes[rank]) fail_input("{}:{}: rank {} appears twice", path.string(), line_number, rank);
    token_bytes[rank] = std::move(bytes);
  });
  if (token_bytes.empty()) fail_input("{}: no ranks", path.string());

  BpeOptions options;
  options.ignore_merges = true;
  BpeModel model = BpeModel::from_ranks(token_bytes, options);
  std::vector<std::optional<std::string>> strings(token_bytes.size());
  for (size_t id = 0; id < token_bytes.size(); ++id) {
    if (token_bytes[id]) strings[id] = byte_level_encode(*token_bytes[id]);
  }
  PreTokenizer pre_tokenizer;
  pre_tokenizer.add_split(SplitRegex(pattern, RegexDialect::Tiktoken), SplitBehavior::Isolated, false);
  return std::make_unique<BpeTokenizer>(std::move(strings), std::move(model), std::move(pre_tokenizer),
                                        special_added_tokens(special_tokens), TextNormalizer::None);
}

std::unique_ptr<BpeTokenizer> load_gpt2_bpe(
    const std::filesystem::path& encoder_json, const std::filesystem::path& vocab_bpe,
    const std::vector<std::pair<std::string, int32_t>>& special_tokens) {
  BpeVocab vocab(encoder_json.string());
  nlohmann::json encoder = parse_json(encoder_json.string(), read_text_file(encoder_json.string()));
  if (!encoder.is_object()) fail_input("{}: not a JSON object", encoder_json.string());
  for (const auto& [token, id] : encoder.items()) {
    if (!id.is_number_integer()) fail_input("{}: '{}' has a non-integer id", encoder_json.string(), token);
    vocab.add(token, id.get<int64_t>());
  }

  std::string text = read_text_file(vocab_bpe.string());
  std::vector<std::pair<std::string, std::string>> merges;
  for_each_line(text, [&](size_t line_number, std::string_view line) {
    if (line.empty() || (line_number == 1 && line.starts_with("#version"))) return;
    size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos) {
      fail_input("{}:{}: expected two tokens separated by one space, got '{}'", vocab_bpe.string(),
                 line_number, line);
    }
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  });
  BpeModel model = vocab.build(merges, BpeOptions{}, false);
  PreTokenizer pre_tokenizer;
  pre_tokenizer.add_split(SplitRegex(kGpt2Pattern, RegexDialect::Tiktoken), SplitBehavior::Isolated, false);
  return std::make_unique<BpeTokenizer>(vocab.release_strings(), std::move(model), std::move(pre_tokenizer),
                                        special_added_tokens(special_tokens), TextNormalizer::None);
}

}  // namespace dlm
