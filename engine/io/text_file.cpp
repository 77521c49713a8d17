#include "engine/io/text_file.h"

#include "engine/io/mapped_file.h"

namespace dlm {

std::string read_text_file(const std::string& path) {
  MappedFile file(path);
  if (file.size() == 0) return {};
  return std::string(reinterpret_cast<const char*>(file.data()), file.size());
}

}  // namespace dlm
