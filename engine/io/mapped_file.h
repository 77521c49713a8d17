#pragma once
// A read-only memory map of a whole file (RAII). Weights are zero-copy views into it on the CPU.
#include <cstddef>
#include <cstdint>
#include <string>

namespace dlm {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws InputError naming the file
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace dlm
