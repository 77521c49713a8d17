// Fuzzes model.safetensors.index.json handling: the in-memory index parser on every input, and for inputs it
// accepts, Checkpoint::open on a directory holding that index beside two valid shards
// (model-00001-of-00002.safetensors: a, b; model-00002-of-00002.safetensors: c).
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "engine/core/buffer.h"
#include "engine/core/error.h"
#include "engine/io/safetensors.h"

namespace {

void require(bool condition) {
  if (!condition) __builtin_trap();
}

// A per-process checkpoint directory with the two shards, removed at exit.
struct CheckpointDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("dlm_fuzz_index_" + std::to_string(::getpid()));
  CheckpointDir() {
    std::filesystem::create_directories(path);
    dlm::HostTensor a = dlm::HostTensor::from<float>({2}, {1.0f, 2.0f});
    dlm::HostTensor b = dlm::HostTensor::from<int32_t>({1, 3}, {4, 5, 6});
    dlm::HostTensor c = dlm::HostTensor::from<uint8_t>({3}, {7, 8, 9});
    dlm::write_safetensors((path / "model-00001-of-00002.safetensors").string(), {{"a", a}, {"b", b}});
    dlm::write_safetensors((path / "model-00002-of-00002.safetensors").string(), {{"c", c}});
  }
  ~CheckpointDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
};

const std::filesystem::path& checkpoint_dir() {
  static const CheckpointDir dir;
  return dir.path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::filesystem::path& dir = checkpoint_dir();
  try {
    auto weight_map = dlm::parse_safetensors_index("fuzz.index.json", text);
    std::ofstream(dir / "model.safetensors.index.json", std::ios::binary | std::ios::trunc)
        .write(text.data(), static_cast<std::streamsize>(text.size()));
    dlm::Checkpoint checkpoint = dlm::Checkpoint::open(dir.string());
    // Accepted: the index names exactly the shards' tensors.
    require(checkpoint.names().size() == weight_map.size());
    for (const auto& name : checkpoint.names()) {
      require(weight_map.contains(name));
      require(checkpoint.tensor(name).numel() == checkpoint.entry(name).shape.numel());
    }
  } catch (const dlm::Error&) {
    // Rejected input: the expected outcome for most inputs.
  }
  return 0;
}
