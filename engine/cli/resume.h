#pragma once
// --resume: what an earlier run already wrote to a JSON Lines output file.
#include <set>
#include <string>

namespace dlm::cli {

// The ids of the records in `path`, each as its JSON text ("7", "\"q1\""). A missing file holds none. A last
// line without its newline (a run killed while writing it) is cut off the file, so that item is redone.
// InputError naming the file and line for a complete line that is not a JSON object with an "id".
std::set<std::string> recorded_ids(const std::string& path);

}  // namespace dlm::cli
