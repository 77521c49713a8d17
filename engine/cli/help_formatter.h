#pragma once
// `--help` text that fits the terminal: option and command descriptions wrapped into their column instead of
// running off as one long line.
#include <CLI/CLI.hpp>
#include <cstddef>
#include <string>

namespace dlm::cli {

// `text` broken at spaces into lines of at most `width` columns (a longer word gets a line of its own);
// existing line breaks are kept.
std::string wrap_text(const std::string& text, size_t width);

class HelpFormatter : public CLI::Formatter {
 public:
  explicit HelpFormatter(size_t width);

  std::string make_option_desc(const CLI::Option* option) const override;
  std::string make_subcommand(const CLI::App* command) const override;
  std::string make_description(const CLI::App* app) const override;

 private:
  size_t width_;
};

// Installs the formatter on `app` (commands added after this inherit it); 100 columns, or the terminal's
// width when standard output is a narrower terminal.
void use_help_formatter(CLI::App& app);

}  // namespace dlm::cli
