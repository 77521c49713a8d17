#pragma once
// How many masked positions a block commits at each of its steps.
#include <cstdint>
#include <vector>

namespace dlm {

// LLaDA's get_num_transfer_tokens: `masked` positions spread evenly over `steps`, the remainder going one
// each to the first steps (10 over 4 steps gives 3, 3, 2, 2).
std::vector<int64_t> num_transfer_tokens(int64_t masked, int64_t steps);

}  // namespace dlm
