#pragma once
// Gathers a checkpoint's tensors into a typed weight struct, checking each against the shape the config
// implies. Problems are collected rather than thrown one by one, so a bad checkpoint is reported in full:
// every missing tensor and every shape or dtype mismatch, by name, with expected and actual.
#include <string>
#include <string_view>
#include <vector>

#include "engine/core/tensor.h"
#include "engine/io/safetensors.h"

namespace dlm {

class WeightCollector {
 public:
  explicit WeightCollector(const Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

  // A tensor the architecture needs. On a problem it records it and returns an empty tensor.
  Tensor require(const std::string& name, const Shape& expected);
  // Throws InputError naming `what` (e.g. the model directory) and listing every problem, if any.
  void finish(std::string_view what) const;
  // The checkpoint's tensors nothing asked for, sorted: a checkpoint of another architecture, or extras
  // such as a multi-token-prediction head, show here.
  std::vector<std::string> unused() const;

 private:
  const Checkpoint& checkpoint_;
  std::vector<std::string> problems_;
  std::vector<std::string> requested_;
};

}  // namespace dlm
