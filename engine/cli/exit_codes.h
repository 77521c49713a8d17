#pragma once
// The process exit codes of the dlm command, as documented in `dlm --help`.
namespace dlm::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitItemsFailed = 1;  // the run finished, but some items have error records
inline constexpr int kExitUsage = 2;        // bad flags, config, model or input files: nothing was generated
inline constexpr int kExitInternal = 3;     // a bug or an environment fault (out of memory, ...)

}  // namespace dlm::cli
