#include "samplers/decode_task.h"

#include <algorithm>

namespace dlm {

void add_span(ForwardBatch& batch, const std::vector<int32_t>& tokens, int64_t begin, int64_t end,
              CacheUse cache) {
  batch.token_ids.insert(batch.token_ids.end(), tokens.begin() + begin, tokens.begin() + end);
  for (int64_t p = begin; p < end; ++p) batch.positions.push_back(static_cast<int32_t>(p));
  batch.offsets.push_back(static_cast<int32_t>(batch.token_ids.size()));
  batch.caches.push_back(cache);
}

bool holds_stop(const std::vector<int32_t>& canvas, int64_t begin, int64_t end,
                std::span<const int32_t> stop_ids) {
  return std::find_first_of(canvas.begin() + begin, canvas.begin() + end, stop_ids.begin(), stop_ids.end()) !=
         canvas.begin() + end;
}

TaskOutput finish_output(const std::vector<int32_t>& canvas, int64_t begin, int64_t end,
                         std::span<const int32_t> stop_ids, bool cut_at_stop, int64_t committed) {
  TaskOutput out;
  out.committed = committed;
  auto last = canvas.begin() + end;
  if (cut_at_stop) {
    const auto stop = std::find_first_of(canvas.begin() + begin, last, stop_ids.begin(), stop_ids.end());
    if (stop != last) {
      last = stop + 1;
      out.finish = FinishReason::StopToken;
    }
  }
  out.tokens.assign(canvas.begin() + begin, last);
  return out;
}

}  // namespace dlm
