#pragma once
// Prompts files: one prompt per line.
#include <string>
#include <vector>

namespace dlm::cli {

// The file's prompts in order: blank lines (empty or only whitespace) are skipped and a trailing "\r" is
// dropped. InputError naming the file, and the line, when it cannot be read, is not text (a NUL byte) or a
// line is not valid UTF-8.
std::vector<std::string> read_prompts_file(const std::string& path);

}  // namespace dlm::cli
