#pragma once
// Reading whole text files (configs) and checking their encoding; errors name the file.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dlm {

std::string read_text_file(const std::string& path);  // InputError if missing, unreadable or not a file

}  // namespace dlm
