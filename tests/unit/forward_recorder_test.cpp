// ForwardRecorder's policy, on a CPU backend that pretends to record: it counts begin/end/replay and can be
// told to refuse a recording. What runs when: the first occurrence of a signature directly, its immediate
// repeat recorded (the work queued once while recording) then replayed, later repeats replayed only; a
// refused recording runs the work directly and is not tried again; at most four recordings are kept.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <vector>

#include "backbones/forward_recorder.h"
#include "engine/backend/cpu/cpu_backend.h"

namespace dlm {
namespace {

class PretendRecording final : public CpuBackend {
 public:
  struct Work final : RecordedWork {
    int id = 0;
  };

  PretendRecording() : CpuBackend(1) {}
  bool records_work() const override { return true; }
  void begin_recording() override {
    EXPECT_FALSE(recording);
    recording = true;
  }
  std::unique_ptr<RecordedWork> end_recording() override {
    EXPECT_TRUE(recording);
    recording = false;
    if (refuse) return nullptr;
    auto work = std::make_unique<Work>();
    work->id = ++made;
    return work;
  }
  void replay(const RecordedWork& work) override {
    EXPECT_FALSE(recording);
    replayed.push_back(dynamic_cast<const Work&>(work).id);
  }

  bool recording = false;
  bool refuse = false;
  int made = 0;
  std::vector<int> replayed;  // the ids of the works replayed, in order
};

struct Queued {
  int direct = 0, while_recording = 0;
};

// Runs one forward of `signature`, counting how its work was queued.
bool run(ForwardRecorder& recorder, PretendRecording& backend, std::vector<int64_t> signature,
         Queued& queued) {
  return recorder.run(signature, [&] { ++(backend.recording ? queued.while_recording : queued.direct); });
}

TEST(ForwardRecorder, RecordsTheFirstRepeatAndReplaysTheRest) {
  PretendRecording backend;
  ForwardRecorder recorder(backend);
  Queued queued;
  EXPECT_FALSE(run(recorder, backend, {1, 2}, queued));  // first seen: direct
  EXPECT_TRUE(run(recorder, backend, {1, 2}, queued));   // repeated: recorded, then replayed
  EXPECT_TRUE(run(recorder, backend, {1, 2}, queued));   // replayed
  EXPECT_TRUE(run(recorder, backend, {1, 2}, queued));
  EXPECT_EQ(queued.direct, 1);
  EXPECT_EQ(queued.while_recording, 1);
  EXPECT_EQ(backend.replayed, (std::vector<int>{1, 1, 1}));
  const ForwardRecorder::Counts& counts = recorder.counts();
  EXPECT_EQ(counts.direct, 1);
  EXPECT_EQ(counts.recorded, 1);
  EXPECT_EQ(counts.replayed, 2);
  EXPECT_EQ(counts.refused, 0);
}

TEST(ForwardRecorder, AlternatingSignaturesRunDirectlyUntilOneRepeats) {
  PretendRecording backend;
  ForwardRecorder recorder(backend);
  Queued queued;
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(run(recorder, backend, {1}, queued));
    EXPECT_FALSE(run(recorder, backend, {2}, queued));
  }
  EXPECT_EQ(queued.direct, 6);
  EXPECT_EQ(backend.made, 0);
  // {2} then {2}: recorded; {1} is still direct, and a later {2} replays its recording.
  EXPECT_TRUE(run(recorder, backend, {2}, queued));
  EXPECT_FALSE(run(recorder, backend, {1}, queued));
  EXPECT_TRUE(run(recorder, backend, {2}, queued));
  EXPECT_EQ(backend.replayed, (std::vector<int>{1, 1}));
  // A prefix of a signature is another signature.
  EXPECT_FALSE(run(recorder, backend, {2, 0}, queued));
}

TEST(ForwardRecorder, ARefusedRecordingRunsTheWorkAndIsNotTriedAgain) {
  PretendRecording backend;
  backend.refuse = true;
  ForwardRecorder recorder(backend);
  Queued queued;
  run(recorder, backend, {7}, queued);
  EXPECT_FALSE(run(recorder, backend, {7}, queued));  // recording refused: queued directly as well
  EXPECT_EQ(queued.while_recording, 1);
  EXPECT_EQ(queued.direct, 2);
  backend.refuse = false;
  EXPECT_FALSE(run(recorder, backend, {7}, queued));  // not tried again
  EXPECT_EQ(queued.while_recording, 1);
  EXPECT_EQ(queued.direct, 3);
  EXPECT_EQ(recorder.counts().refused, 1);
  EXPECT_TRUE(backend.replayed.empty());
}

TEST(ForwardRecorder, WorkThatThrowsWhileRecordingEndsTheRecordingAndRunsDirectly) {
  PretendRecording backend;
  ForwardRecorder recorder(backend);
  int direct = 0;
  const auto work = [&] {
    if (backend.recording) throw std::runtime_error("cannot be recorded");
    ++direct;
  };
  recorder.run(std::vector<int64_t>{3}, work);
  EXPECT_FALSE(recorder.run(std::vector<int64_t>{3}, work));
  EXPECT_FALSE(backend.recording);
  EXPECT_EQ(direct, 2);
  EXPECT_EQ(recorder.counts().refused, 1);
  // Work that fails however it is queued reports its error.
  const auto broken = [] { throw std::runtime_error("broken"); };
  EXPECT_THROW(recorder.run(std::vector<int64_t>{4}, broken), std::runtime_error);
  EXPECT_THROW(recorder.run(std::vector<int64_t>{4}, broken), std::runtime_error);
  EXPECT_FALSE(backend.recording);
}

TEST(ForwardRecorder, KeepsTheFourMostRecentlyUsedRecordings) {
  PretendRecording backend;
  ForwardRecorder recorder(backend);
  Queued queued;
  for (int64_t s = 1; s <= 5; ++s) {
    run(recorder, backend, {s}, queued);
    run(recorder, backend, {s}, queued);  // recorded: works 1..5
  }
  EXPECT_EQ(backend.made, 5);
  backend.replayed.clear();
  EXPECT_TRUE(run(recorder, backend, {5}, queued));
  EXPECT_TRUE(run(recorder, backend, {2}, queued));
  EXPECT_FALSE(run(recorder, backend, {1}, queued));  // the oldest, dropped: direct again
  EXPECT_EQ(backend.replayed, (std::vector<int>{5, 2}));
}

TEST(ForwardRecorder, ABackendThatCannotRecordRunsEverythingDirectly) {
  CpuBackend backend(1);
  ForwardRecorder recorder(backend);
  int direct = 0;
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(recorder.run(std::vector<int64_t>{1}, [&] { ++direct; }));
  EXPECT_EQ(direct, 3);
  EXPECT_EQ(recorder.counts().direct, 3);
}

}  // namespace
}  // namespace dlm
