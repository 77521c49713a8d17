// Fuzzes safetensors validation: the in-memory parser on every input, and for inputs it accepts, the
// memory-mapped SafetensorsFile over the same bytes. Accepted layouts must keep their promises (ranges inside
// the data section, sizes matching dtype x shape, no overlap, aligned views with the file's bytes).
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/core/error.h"
#include "engine/io/safetensors.h"

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

// A per-process file for the SafetensorsFile check, removed at exit.
struct ScratchFile {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("dlm_fuzz_safetensors_" + std::to_string(::getpid()) + ".safetensors"))
                         .string();
  ~ScratchFile() {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
  }
};

const std::string& scratch_file() {
  static const ScratchFile file;
  return file.path;
}

void check_layout(const dlm::SafetensorsLayout& layout, const uint8_t* data, size_t size) {
  require(layout.data_start >= 8 && layout.data_start <= size);
  size_t previous_end = 0;
  for (const auto& entry : layout.entries) {
    require(entry.begin <= entry.end && entry.end <= size - layout.data_start);
    require(static_cast<size_t>(entry.shape.numel()) * dtype_size(entry.dtype) == entry.end - entry.begin);
    if (entry.begin == entry.end) continue;
    require(entry.begin >= previous_end);
    previous_end = entry.end;
    // Read both ends of the range: AddressSanitizer reports any byte outside the input.
    volatile uint8_t first = data[layout.data_start + entry.begin];
    volatile uint8_t last = data[layout.data_start + entry.end - 1];
    (void)first;
    (void)last;
  }
}

void check_file(const dlm::SafetensorsLayout& layout, const uint8_t* data, size_t size) {
  std::ofstream(scratch_file(), std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  dlm::SafetensorsFile file(scratch_file());
  require(file.entries().size() == layout.entries.size());
  for (const auto& entry : file.entries()) {
    dlm::Tensor tensor = file.tensor(entry.name);
    require(reinterpret_cast<uintptr_t>(tensor.data()) % dtype_size(entry.dtype) == 0);
    require(tensor.nbytes() == entry.end - entry.begin);
    require(tensor.nbytes() == 0 ||
            std::memcmp(tensor.data(), data + layout.data_start + entry.begin, tensor.nbytes()) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dlm::SafetensorsLayout layout = dlm::parse_safetensors("fuzz", data, size);
    check_layout(layout, data, size);
    check_file(layout, data, size);
  } catch (const dlm::Error&) {
    // Rejected input: the expected outcome for most inputs.
  }
  return 0;
}
