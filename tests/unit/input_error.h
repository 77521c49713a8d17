#pragma once
// Test helper: the message of the InputError an action throws.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "engine/core/error.h"

namespace dlm {

// The InputError message `action` throws; a test failure (and "") if it throws nothing.
inline std::string input_error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const InputError& error) {
    return error.what();
  }
  ADD_FAILURE() << "expected an InputError";
  return "";
}

}  // namespace dlm
