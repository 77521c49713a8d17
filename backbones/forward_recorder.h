#pragma once
// Replays forwards that repeat, on a backend that records work (CUDA graphs): a forward whose signature
// equals the previous forward's is recorded, and replayed from then on whenever it comes back, so a
// steady-state denoising step costs one launch instead of one per op. The signature must pin everything the
// queued work depends on other than the contents of device memory and of the allocate_host() memory its
// copies read: shapes, addresses, and every decision the host made while queueing.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "engine/backend/backend.h"

namespace dlm {

class ForwardRecorder {
 public:
  explicit ForwardRecorder(Backend& backend) : backend_(backend) {}

  // Queues the work of `queue_work`: a replay of its recording, a new recording and its replay, or the
  // calls themselves. True when it was queued through a recording: the work then reads its host memory when
  // it runs, not before this returns.
  bool run(std::span<const int64_t> signature, const std::function<void()>& queue_work);

  // How the forwards went so far.
  struct Counts {
    int64_t direct = 0;    // queued op by op
    int64_t recorded = 0;  // recorded, then replayed
    int64_t replayed = 0;  // replays of an earlier recording
    int64_t refused = 0;   // a recording that failed; the work was queued op by op instead
  };
  const Counts& counts() const { return counts_; }

 private:
  // A signature's recording, or none where recording it failed (so it is not tried again).
  struct Recording {
    std::vector<int64_t> signature;
    std::unique_ptr<RecordedWork> work;
  };
  static constexpr size_t kKept = 4;  // recordings kept, the most recently used first

  // queue_work's recording, or nullptr where it failed (the backend has then left its recording state).
  std::unique_ptr<RecordedWork> record(const std::function<void()>& queue_work);

  Backend& backend_;
  std::vector<Recording> recordings_;
  std::vector<int64_t> previous_;  // the last forward's signature
  Counts counts_;
};

}  // namespace dlm
