#include "samplers/transfer_schedule.h"

#include "engine/core/error.h"

namespace dlm {

std::vector<int64_t> num_transfer_tokens(int64_t masked, int64_t steps) {
  DLM_CHECK(masked >= 0 && steps > 0, "transfer schedule of {} masked positions over {} steps", masked,
            steps);
  std::vector<int64_t> counts(static_cast<size_t>(steps), masked / steps);
  for (int64_t i = 0; i < masked % steps; ++i) ++counts[static_cast<size_t>(i)];
  return counts;
}

}  // namespace dlm
