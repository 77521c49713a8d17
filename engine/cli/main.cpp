// The dlm command: parses the command line, runs the chosen command, and maps errors to exit codes. This is
// the only place that catches the library's errors.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <exception>
#include <iostream>
#include <string>

#include "engine/cli/bench_command.h"
#include "engine/cli/compare_command.h"
#include "engine/cli/exit_codes.h"
#include "engine/cli/generate_command.h"
#include "engine/cli/generate_options.h"
#include "engine/cli/help_formatter.h"
#include "engine/cli/info_command.h"
#include "engine/core/error.h"

namespace {

// Errors go to stderr as one line.
void print_error(std::string_view kind, std::string message) {
  std::replace(message.begin(), message.end(), '\n', ' ');
  std::cerr << "dlm: " << kind << ": " << message << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace dlm::cli;
  CLI::App app{"dlm: text generation with diffusion language models.", "dlm"};
  app.footer(
      "Exit codes: 0 success; 1 some items failed (their records hold the error); 2 usage, config, model or\n"
      "input file error (nothing generated); 3 internal error.\n"
      "Run 'dlm COMMAND --help' for a command's options.");
  app.require_subcommand(1);
  use_help_formatter(app);
  GenerateFlags generate_flags;
  CLI::App* generate = add_generate_command(app, generate_flags);
  InfoFlags info_flags;
  CLI::App* info = add_info_command(app, info_flags);
  CompareFlags compare_flags;
  CLI::App* compare = add_compare_command(app, compare_flags);
  BenchFlags bench_flags;
  bench_flags.command_line.assign(argv, argv + argc);
  CLI::App* bench = add_bench_command(app, bench_flags);

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& success) {
    return app.exit(success);  // --help
  } catch (const CLI::ParseError& error) {
    print_error("error", std::string(error.what()) + " (run 'dlm --help')");
    return kExitUsage;
  }

  try {
    if (generate->parsed()) return run_generate(resolve_generate_options(generate_flags));
    if (info->parsed()) return run_info(info_flags);
    if (compare->parsed()) return run_compare(compare_flags);
    if (bench->parsed()) return run_bench(bench_flags);
    return kExitUsage;  // require_subcommand(1) makes this unreachable
  } catch (const dlm::InputError& error) {
    print_error("error", error.what());
    return kExitUsage;
  } catch (const dlm::Error& error) {
    print_error("internal error", error.what());
    return kExitInternal;
  } catch (const std::exception& error) {
    print_error("internal error", error.what());
    return kExitInternal;
  }
}
