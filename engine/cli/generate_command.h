#pragma once
// `dlm generate`: prompts in, one JSON record per prompt out.
#include "engine/cli/generate_options.h"

namespace dlm::cli {

// Returns kExitOk, or kExitItemsFailed when some prompts got error records. Throws InputError for a fault
// that stops the whole run (model, prompts file, output file).
int run_generate(const GenerateOptions& options);

}  // namespace dlm::cli
