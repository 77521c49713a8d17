#include "engine/cli/help_formatter.h"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <sstream>

#include "engine/cli/progress_bar.h"

namespace dlm::cli {

namespace {

constexpr size_t kMaxWidth = 100;
constexpr size_t kMinDescriptionWidth = 30;

}  // namespace

std::string wrap_text(const std::string& text, size_t width) {
  std::string out;
  std::istringstream lines(text);
  bool first_line = true;
  for (std::string line; std::getline(lines, line);) {
    if (!first_line) out += '\n';
    first_line = false;
    size_t column = 0;
    std::istringstream words(line);
    for (std::string word; words >> word;) {
      if (column > 0 && column + 1 + word.size() > width) {
        out += '\n';
        column = 0;
      } else if (column > 0) {
        out += ' ';
        ++column;
      }
      out += word;
      column += word.size();
    }
  }
  return out;
}

HelpFormatter::HelpFormatter(size_t width) : width_(width) {}

std::string HelpFormatter::make_option_desc(const CLI::Option* option) const {
  const size_t column = get_column_width();
  return wrap_text(CLI::Formatter::make_option_desc(option),
                   std::max(kMinDescriptionWidth, width_ > column ? width_ - column : 0));
}

std::string HelpFormatter::make_subcommand(const CLI::App* command) const {
  std::stringstream out;
  const size_t column = get_column_width();
  CLI::detail::format_help(out, command->get_display_name(true),
                           wrap_text(command->get_description(),
                                     std::max(kMinDescriptionWidth, width_ > column ? width_ - column : 0)),
                           column);
  return out.str();
}

std::string HelpFormatter::make_description(const CLI::App* app) const {
  const std::string description = CLI::Formatter::make_description(app);
  return description.empty() ? description : wrap_text(description, width_) + "\n";
}

void use_help_formatter(CLI::App& app) {
  size_t width = kMaxWidth;
  if (isatty(STDOUT_FILENO) != 0) width = std::min(width, static_cast<size_t>(terminal_columns(stdout)));
  app.formatter(std::make_shared<HelpFormatter>(width));
}

}  // namespace dlm::cli
