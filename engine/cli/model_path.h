#pragma once
// Where `--model` points: a model directory as given, or a bare name (no '/') of a shipped model, looked up
// in the models/ folders the dlm binary can see.
#include <filesystem>
#include <string>
#include <vector>

namespace dlm::cli {

// The folders a bare model name is looked up in, in order: ./models, then models/ beside the dlm binary's
// directory and its parent (a build tree inside the source tree), then ../share/dlm/models (an install).
std::vector<std::filesystem::path> model_search_dirs();

// `model` itself when it exists (or names a path, holding a '/'); else the first models/<model> directory
// found. InputError naming the model, the folders searched and the models they hold when none matches.
std::string resolve_model_dir(const std::string& model);

}  // namespace dlm::cli
