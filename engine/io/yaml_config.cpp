#include "engine/io/yaml_config.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <sstream>

#include "engine/core/error.h"
#include "engine/core/utf8.h"
#include "engine/io/text_file.h"

namespace dlm {

namespace {
// Where a value is, for error messages: "run.yaml: sampler.steps: ... (line 4)".
struct Location {
  const std::string& source;
  std::string path;
  int line = -1;  // 0-based, as yaml-cpp counts; -1 when unknown
};

// The characters a YAML document may hold as they are (YAML 1.2, c-printable).
bool is_yaml_printable(char32_t c) {
  return c == 0x9 || c == 0xa || c == 0xd || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
         (c >= 0xa0 && c <= 0xfffd) || c >= 0x10000;
}

// YAML documents are Unicode text of printable characters; yaml-cpp does not check, and would pass
// malformed bytes through into strings.
void check_characters(const std::string& source, std::string_view text) {
  size_t offset = 0;
  while (offset < text.size()) {
    size_t length = utf8_sequence_length(text, offset);
    auto line = [&] {
      return std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n') + 1;
    };
    if (length == 0) fail_input("{}: invalid UTF-8 at byte {} (line {})", source, offset, line());
    char32_t c = decode_utf8_at(text, offset, length);
    if (!is_yaml_printable(c)) {
      fail_input("{}: character U+{:04X} at byte {} (line {}) is not allowed in YAML", source,
                 static_cast<uint32_t>(c), offset, line());
    }
    offset += length;
  }
}

// Counts the documents of a stream by parsing it with a handler that only records where each one starts.
// YAML::LoadAll is not used: yaml-cpp 0.7 can report a document without consuming the token it stopped at
// (a stray ',' at the top level), and LoadAll then loops forever adding null documents. Here a document
// that starts where the previous one did is that unconsumed token, reported as an error.
class DocumentCounter : public YAML::EventHandler {
 public:
  static size_t count(const std::string& source, const std::string& text) {
    std::stringstream stream(text);
    YAML::Parser parser(stream);
    DocumentCounter counter;
    while (parser.HandleNextDocument(counter)) {
      const auto& starts = counter.starts_;
      if (starts.size() > 1 && starts.back().pos <= starts[starts.size() - 2].pos) {
        const YAML::Mark& stuck = starts.back();
        size_t pos = static_cast<size_t>(stuck.pos);
        fail_input("{}: invalid YAML: unexpected '{}' (line {}, column {})", source,
                   pos < text.size() ? text.substr(pos, 1) : std::string(), stuck.line + 1, stuck.column + 1);
      }
    }
    return counter.starts_.size();
  }

  void OnDocumentStart(const YAML::Mark& mark) override { starts_.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
  }
  void OnMapEnd() override {}

 private:
  std::vector<YAML::Mark> starts_;
};

// The one document of a config (null when the text holds none), checked for encoding and syntax.
YAML::Node load_single_document(const std::string& source, std::string_view text) {
  check_characters(source, text);
  std::string copy(text);
  try {
    size_t documents = DocumentCounter::count(source, copy);
    if (documents > 1) {
      fail_input("{}: holds {} YAML documents; a config is a single document", source, documents);
    }
    return YAML::Load(copy);
  } catch (const YAML::Exception& error) {
    if (error.mark.is_null()) fail_input("{}: invalid YAML: {}", source, error.msg);
    fail_input("{}: invalid YAML: {} (line {}, column {})", source, error.msg, error.mark.line + 1,
               error.mark.column + 1);
  }
}

// A scalar's text. yaml-cpp 0.7 decodes the escapes \N and \_ to the lone bytes 0x85 and 0xA0 rather than
// to the UTF-8 of U+0085 and U+00A0. The document was checked to be UTF-8 and every other escape is
// encoded, so a byte that starts no well-formed sequence is one of those two.
std::string scalar_text(const YAML::Node& node) {
  const std::string& decoded = node.Scalar();
  if (is_valid_utf8(decoded)) return decoded;
  std::string text;
  for (size_t pos = 0; pos < decoded.size();) {
    size_t length = utf8_sequence_length(decoded, pos);
    if (length == 0) {
      append_utf8(text, static_cast<unsigned char>(decoded[pos]));
      ++pos;
    } else {
      text.append(decoded, pos, length);
      pos += length;
    }
  }
  return text;
}

[[noreturn]] void fail_located(const Location& at, std::string_view message) {
  if (at.line >= 0) fail_input("{}: {}: {} (line {})", at.source, at.path, message, at.line + 1);
  fail_input("{}: {}: {}", at.source, at.path, message);
}

bool is_string_literal(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";  // quoted, or tagged !!str
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar: {
      const std::string text = abbreviate_utf8(scalar_text(node), kQuotedValueCharacters);
      return is_string_literal(node) ? fmt::format("string '{}'", text) : fmt::format("'{}'", text);
    }
    default:
      return "an undefined value";
  }
}

// Parses the whole of `text` as a number with std::from_chars; a leading '+' is accepted.
enum class NumberParse { kOk, kInvalid, kOutOfRange };
template <class T>
NumberParse parse_number(std::string_view text, T& out) {
  if (text.size() > 1 && text[0] == '+' && text[1] != '-') text.remove_prefix(1);
  if constexpr (std::is_floating_point_v<T>) {
    // from_chars also reads "inf" and "nan": keep to plain decimal and exponent notation.
    if (text.find_first_not_of("0123456789+-.eE") != std::string_view::npos) return NumberParse::kInvalid;
  }
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (error == std::errc::result_out_of_range) return NumberParse::kOutOfRange;
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return NumberParse::kInvalid;
  return NumberParse::kOk;
}

template <class T>
struct FromYaml;

// Integers and floats share their conversion; only the wording differs.
template <class T>
struct YamlNumber {
  static T from(const YAML::Node& node, const Location& at) {
    if (!node.IsScalar() || is_string_literal(node)) {
      fail_located(at, fmt::format("expected {}, got {}", FromYaml<T>::kExpected, describe(node)));
    }
    T value{};
    switch (parse_number(node.Scalar(), value)) {
      case NumberParse::kOk:
        return value;
      case NumberParse::kOutOfRange:
        fail_located(at, fmt::format("{} is out of range for {}", node.Scalar(), FromYaml<T>::kRange));
      case NumberParse::kInvalid:
        break;
    }
    fail_located(at, fmt::format("expected {}, got {}", FromYaml<T>::kExpected, describe(node)));
  }
};

template <>
struct FromYaml<int> : YamlNumber<int> {
  static constexpr std::string_view kExpected = "an integer";
  static constexpr std::string_view kRange = "a 32-bit integer";
};
template <>
struct FromYaml<int64_t> : YamlNumber<int64_t> {
  static constexpr std::string_view kExpected = "an integer";
  static constexpr std::string_view kRange = "a 64-bit integer";
};
template <>
struct FromYaml<uint64_t> : YamlNumber<uint64_t> {
  static constexpr std::string_view kExpected = "a non-negative integer";
  static constexpr std::string_view kRange = "a 64-bit unsigned integer";
};
template <>
struct FromYaml<double> : YamlNumber<double> {
  static constexpr std::string_view kExpected = "a number";
  static constexpr std::string_view kRange = "a double";
};

template <>
struct FromYaml<bool> {
  static bool from(const YAML::Node& node, const Location& at) {
    if (node.IsScalar() && !is_string_literal(node)) {
      const std::string& text = node.Scalar();
      if (text == "true" || text == "True" || text == "TRUE") return true;
      if (text == "false" || text == "False" || text == "FALSE") return false;
    }
    fail_located(at, fmt::format("expected true or false, got {}", describe(node)));
  }
};

template <>
struct FromYaml<std::string> {
  static std::string from(const YAML::Node& node, const Location& at) {
    if (!node.IsScalar()) fail_located(at, fmt::format("expected a string, got {}", describe(node)));
    return scalar_text(node);
  }
};

template <class T>
struct FromYaml<std::vector<T>> {
  static std::vector<T> from(const YAML::Node& node, const Location& at) {
    if (!node.IsSequence()) fail_located(at, fmt::format("expected a sequence, got {}", describe(node)));
    std::vector<T> out;
    out.reserve(node.size());
    for (size_t i = 0; i < node.size(); ++i) {
      const YAML::Node element = node[i];
      out.push_back(FromYaml<T>::from(
          element, Location{at.source, fmt::format("{}[{}]", at.path, i), element.Mark().line}));
    }
    return out;
  }
};

}  // namespace

struct YamlMap::State {
  struct Entry {
    std::string key;
    YAML::Node value;
    int line = -1;  // of the key
  };

  std::string source;
  std::string prefix;          // "sampler." inside a nested map, "" at the top level
  int line = -1;               // of the key holding the map (or of a list element); -1 at the top level
  std::vector<Entry> entries;  // in document order
  std::map<std::string, size_t, std::less<>> index;
  std::set<std::string, std::less<>> known;  // every key a reader asked for
  std::map<std::string, std::vector<std::shared_ptr<State>>, std::less<>> children;

  State(std::string source_name, std::string key_prefix, const YAML::Node& node, int map_line)
      : source(std::move(source_name)), prefix(std::move(key_prefix)), line(map_line) {
    if (node.IsNull()) return;  // an empty document or an empty section: a map without keys
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      if (!key.IsScalar()) {
        std::string map_path =
            prefix.empty() ? std::string("top level") : prefix.substr(0, prefix.size() - 1);
        fail_located(Location{source, map_path, key.Mark().line},
                     fmt::format("keys must be strings, got {}", describe(key)));
      }
      std::string name = scalar_text(key);
      auto [found, inserted] = index.emplace(name, entries.size());
      if (!inserted) {
        fail_located(Location{source, prefix + name, key.Mark().line},
                     fmt::format("duplicate key (first on line {})", entries[found->second].line + 1));
      }
      entries.push_back(Entry{std::move(name), it->second, key.Mark().line});
    }
  }

  const Entry* find(std::string_view key) {
    known.emplace(key);
    auto it = index.find(key);
    return it == index.end() ? nullptr : &entries[it->second];
  }

  Location locate(std::string_view key, const Entry* entry) const {
    return Location{source, prefix + std::string(key), entry != nullptr ? entry->line : line};
  }
};

YamlMap::YamlMap(std::shared_ptr<State> state) : state_(std::move(state)) {}

YamlMap YamlMap::load(const std::string& path) {
  return parse(read_text_file(path), path);
}

YamlMap YamlMap::parse(std::string_view text, std::string source) {
  YAML::Node root = load_single_document(source, text);
  if (!root.IsNull() && !root.IsMap()) {
    fail_input("{}: the top level must be a map of keys, got {}", source, describe(root));
  }
  return YamlMap(std::make_shared<State>(std::move(source), "", root, -1));
}

const std::string& YamlMap::source() const {
  return state_->source;
}

std::string YamlMap::path(std::string_view key) const {
  return state_->prefix + std::string(key);
}

bool YamlMap::has(std::string_view key) const {
  const State::Entry* entry = state_->find(key);
  return entry != nullptr && !entry->value.IsNull();
}

template <YamlValue T>
std::optional<T> YamlMap::optional(std::string_view key) const {
  const State::Entry* entry = state_->find(key);
  if (entry == nullptr) return std::nullopt;
  return FromYaml<T>::from(entry->value, state_->locate(key, entry));
}

template <YamlValue T>
T YamlMap::required(std::string_view key) const {
  std::optional<T> value = optional<T>(key);
  if (!value) fail_at(key, "required key is missing");
  return std::move(*value);
}

std::optional<size_t> YamlMap::choose(std::string_view key, const std::vector<std::string_view>& allowed,
                                      bool required) const {
  const State::Entry* entry = state_->find(key);
  if (entry == nullptr) {
    if (required) fail_at(key, fmt::format("required key is missing (one of {})", fmt::join(allowed, ", ")));
    return std::nullopt;
  }
  Location at = state_->locate(key, entry);
  if (entry->value.IsScalar()) {
    for (size_t i = 0; i < allowed.size(); ++i) {
      if (entry->value.Scalar() == allowed[i]) return i;
    }
  }
  fail_located(at,
               fmt::format("expected one of {}; got {}", fmt::join(allowed, ", "), describe(entry->value)));
}

std::optional<YamlMap> YamlMap::optional_map(std::string_view key) const {
  const State::Entry* entry = state_->find(key);
  if (entry == nullptr) return std::nullopt;
  auto& children = state_->children[std::string(key)];
  if (children.empty()) {
    if (!entry->value.IsMap() && !entry->value.IsNull()) {
      fail_located(state_->locate(key, entry), fmt::format("expected a map, got {}", describe(entry->value)));
    }
    children.push_back(std::make_shared<State>(state_->source, path(key) + ".", entry->value, entry->line));
  }
  return YamlMap(children.front());
}

YamlMap YamlMap::map(std::string_view key) const {
  std::optional<YamlMap> nested = optional_map(key);
  if (!nested) fail_at(key, "required section is missing");
  return std::move(*nested);
}

std::vector<YamlMap> YamlMap::map_list(std::string_view key) const {
  const State::Entry* entry = state_->find(key);
  if (entry == nullptr) fail_at(key, "required list is missing");
  auto& children = state_->children[std::string(key)];
  if (children.empty()) {
    const YAML::Node& list = entry->value;
    if (!list.IsSequence()) {
      fail_located(state_->locate(key, entry),
                   fmt::format("expected a sequence of maps, got {}", describe(list)));
    }
    std::vector<std::shared_ptr<State>> elements;  // kept only once every element is a map
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node element = list[i];
      std::string element_path = fmt::format("{}[{}]", path(key), i);
      if (!element.IsMap()) {
        fail_located(Location{state_->source, element_path, element.Mark().line},
                     fmt::format("expected a map, got {}", describe(element)));
      }
      elements.push_back(
          std::make_shared<State>(state_->source, element_path + ".", element, element.Mark().line));
    }
    children = std::move(elements);
  }
  std::vector<YamlMap> maps;
  for (const auto& child : children) maps.push_back(YamlMap(child));
  return maps;
}

void YamlMap::fail_at(std::string_view key, std::string_view message) const {
  auto it = state_->index.find(key);
  fail_located(state_->locate(key, it == state_->index.end() ? nullptr : &state_->entries[it->second]),
               message);
}

void YamlMap::finish() const {
  const State& state = *state_;
  for (const auto& entry : state.entries) {
    if (state.known.contains(entry.key)) continue;
    std::string known = state.known.empty() ? std::string("no keys are allowed here")
                                            : fmt::format("known keys: {}", fmt::join(state.known, ", "));
    fail_input("{}: unknown key '{}{}' (line {}; {})", state.source, state.prefix, entry.key, entry.line + 1,
               known);
  }
  for (const auto& [key, children] : state.children) {
    for (const auto& child : children) YamlMap(child).finish();
  }
}

#define DLM_YAML_GETTERS(T)                                    \
  template T YamlMap::required<T>(std::string_view key) const; \
  template std::optional<T> YamlMap::optional<T>(std::string_view key) const;
DLM_YAML_GETTERS(bool)
DLM_YAML_GETTERS(int)
DLM_YAML_GETTERS(int64_t)
DLM_YAML_GETTERS(uint64_t)
DLM_YAML_GETTERS(double)
DLM_YAML_GETTERS(std::string)
DLM_YAML_GETTERS(std::vector<int64_t>)
DLM_YAML_GETTERS(std::vector<int>)
DLM_YAML_GETTERS(std::vector<double>)
DLM_YAML_GETTERS(std::vector<std::string>)
#undef DLM_YAML_GETTERS

std::string yaml_double_quoted(std::string_view text, std::string_view what) {
  std::string quoted = "\"";
  for (size_t pos = 0; pos < text.size();) {
    size_t length = utf8_sequence_length(text, pos);
    if (length == 0) fail_input("{}: invalid UTF-8 at byte {}, which YAML cannot hold", what, pos);
    char32_t c = decode_utf8_at(text, pos, length);
    if (c == '"' || c == '\\') {
      quoted += '\\';
      quoted += static_cast<char>(c);
    } else if (c == '\n') {
      quoted += "\\n";
    } else if (c == '\t') {
      quoted += "\\t";
    } else if (c == '\r') {
      quoted += "\\r";
    } else if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029 || c == 0xfeff ||
               !is_yaml_printable(c)) {
      uint32_t code = static_cast<uint32_t>(c);
      quoted += code <= 0xff     ? fmt::format("\\x{:02x}", code)
                : code <= 0xffff ? fmt::format("\\u{:04x}", code)
                                 : fmt::format("\\U{:08x}", code);
    } else {
      quoted.append(text.substr(pos, length));
    }
    pos += length;
  }
  return quoted + '"';
}

}  // namespace dlm
