#pragma once
// `dlm info`: what a model directory holds, as text for people or as one JSON object.
#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace dlm::cli {

struct InfoFlags {
  std::string model;
  std::optional<std::string> model_config;
  bool json = false;
};

CLI::App* add_info_command(CLI::App& app, InfoFlags& flags);
// Throws InputError for a model directory that does not load.
int run_info(const InfoFlags& flags);

}  // namespace dlm::cli
