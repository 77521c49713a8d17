#include "engine/cli/model_path.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <system_error>

#include "engine/core/error.h"

namespace dlm::cli {

namespace fs = std::filesystem;

namespace {

// The running binary's directory; empty when the system does not say.
fs::path binary_dir() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  return error ? fs::path() : exe.parent_path();
}

bool is_model_dir(const fs::path& dir) {
  std::error_code error;
  return fs::is_regular_file(dir / "config.json", error);
}

}  // namespace

std::vector<fs::path> model_search_dirs() {
  std::vector<fs::path> dirs = {"models"};
  if (const fs::path bin = binary_dir(); !bin.empty()) {
    for (const fs::path& dir :
         {bin / "models", bin.parent_path() / "models", bin.parent_path() / "share/dlm/models"}) {
      std::error_code error;
      if (fs::is_directory(dir, error)) dirs.push_back(dir.lexically_normal());
    }
  }
  return dirs;
}

std::string resolve_model_dir(const std::string& model) {
  std::error_code error;
  if (model.empty()) fail_input("--model: empty model name");
  if (model.find('/') != std::string::npos || fs::exists(model, error)) return model;
  std::vector<std::string> searched, available;
  for (const fs::path& dir : model_search_dirs()) {
    if (is_model_dir(dir / model)) return (dir / model).string();
    searched.push_back(dir.string());
    for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
      if (is_model_dir(it->path())) available.push_back(it->path().filename().string());
    }
  }
  std::sort(available.begin(), available.end());
  available.erase(std::unique(available.begin(), available.end()), available.end());
  fail_input("model '{}': no such directory, and no model of that name in {}; {}", model,
             fmt::join(searched, ", "),
             available.empty() ? std::string("no models found there")
                               : fmt::format("models there: {}", fmt::join(available, ", ")));
}

}  // namespace dlm::cli
