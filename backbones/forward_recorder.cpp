#include "backbones/forward_recorder.h"

#include <algorithm>
#include <exception>
#include <utility>

namespace dlm {

bool ForwardRecorder::run(std::span<const int64_t> signature, const std::function<void()>& queue_work) {
  const auto same = [&](const std::vector<int64_t>& other) { return std::ranges::equal(other, signature); };
  if (!backend_.records_work()) {
    ++counts_.direct;
    queue_work();
    return false;
  }
  const auto known = std::ranges::find_if(recordings_, [&](const Recording& r) { return same(r.signature); });
  if (known != recordings_.end()) {
    std::rotate(recordings_.begin(), known, known + 1);
    const Recording& recording = recordings_.front();
    if (!recording.work) {
      ++counts_.direct;
      queue_work();
      return false;
    }
    backend_.replay(*recording.work);
    ++counts_.replayed;
    return true;
  }
  const bool repeats = same(previous_);
  previous_.assign(signature.begin(), signature.end());
  if (!repeats) {
    ++counts_.direct;
    queue_work();
    return false;
  }

  std::unique_ptr<RecordedWork> work = record(queue_work);
  recordings_.insert(recordings_.begin(), Recording{previous_, nullptr});
  if (recordings_.size() > kKept) recordings_.pop_back();
  if (!work) {
    // Queued op by op: an error that was not the recording's own shows again here.
    ++counts_.refused;
    queue_work();
    return false;
  }
  backend_.replay(*work);
  recordings_.front().work = std::move(work);
  ++counts_.recorded;
  return true;
}

std::unique_ptr<RecordedWork> ForwardRecorder::record(const std::function<void()>& queue_work) {
  backend_.begin_recording();
  try {
    queue_work();
  } catch (const std::exception&) {
    backend_.end_recording();  // leaves the recording state; what it holds is dropped
    return nullptr;
  }
  return backend_.end_recording();
}

}  // namespace dlm
