#pragma once
// Test helper: whether a document is well-formed XML as far as its tags go (every element closed in order,
// attribute values quoted), and counting elements by their opening text.
#include <string>
#include <string_view>
#include <vector>

namespace dlm {

// "" when well-formed (every '&' an entity, too); else what is wrong. Comments, declarations and processing
// instructions are skipped.
inline std::string xml_tag_error(std::string_view text) {
  for (size_t at = text.find('&'); at != std::string_view::npos; at = text.find('&', at + 1)) {
    const std::string_view rest = text.substr(at + 1);
    if (!rest.starts_with("amp;") && !rest.starts_with("lt;") && !rest.starts_with("gt;") &&
        !rest.starts_with("quot;") && !rest.starts_with("apos;") && !rest.starts_with('#')) {
      return "a bare '&'";
    }
  }
  std::vector<std::string> open;
  for (size_t at = text.find('<'); at != std::string_view::npos; at = text.find('<', at + 1)) {
    if (text.substr(at, 4) == "<!--") {
      at = text.find("-->", at);
      if (at == std::string_view::npos) return "an unclosed comment";
      continue;
    }
    // The tag ends at the first '>' outside a quoted attribute value.
    size_t end = at + 1;
    char quote = 0;
    for (; end < text.size() && (quote != 0 || text[end] != '>'); ++end) {
      if (quote == 0 && (text[end] == '"' || text[end] == '\'')) {
        quote = text[end];
      } else if (quote != 0 && text[end] == quote) {
        quote = 0;
      } else if (quote == 0 && text[end] == '<') {
        return "a '<' inside a tag";
      }
    }
    if (end >= text.size()) return "an unclosed tag";
    const std::string_view tag = text.substr(at + 1, end - at - 1);
    if (tag.starts_with('?') || tag.starts_with('!')) continue;
    const std::string name(
        tag.substr(tag.starts_with('/'), tag.find_first_of(" \t\n/", 1) - tag.starts_with('/')));
    if (tag.starts_with('/')) {
      if (open.empty() || open.back() != name)
        return "</" + name + "> closes " + (open.empty() ? "nothing" : open.back());
      open.pop_back();
    } else if (!tag.ends_with('/')) {
      open.push_back(name);
    }
    at = end;
  }
  return open.empty() ? "" : "<" + open.back() + "> is never closed";
}

inline size_t count_of(std::string_view text, std::string_view needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos; at = text.find(needle, at + 1)) ++count;
  return count;
}

}  // namespace dlm
