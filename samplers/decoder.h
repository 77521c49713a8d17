#pragma once
// The decoding loop shared by every method: continuous batching over DecodeTasks. Up to `max_rows` requests
// are active at once; each step runs one ragged forward holding every active request's sequences, hands
// each its logit rows, retires the requests that finished (their rows leave the batch) and refills the free
// rows from the queue, in request order.
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "backbones/backbone.h"
#include "engine/backend/backend.h"
#include "engine/core/buffer.h"
#include "samplers/decode_task.h"

namespace dlm {

// Makes request i's task when a row frees up for it (requests are checked before the run starts).
using TaskFactory = std::function<std::unique_ptr<DecodeTask>(size_t request)>;

// Called once per finished request, in finishing order, with its index and result.
using ResultSink = std::function<void(size_t request, GenerationResult result)>;

// Called after every step for each request that took part, with its generated positions as they stand
// (DecodeTask::generated); for showing decoding as it happens.
using StepObserver = std::function<void(size_t request, std::span<const int32_t> generated)>;

class Decoder {
 public:
  Decoder(Backbone& backbone, Backend& backend, Visibility visibility, int64_t max_rows);

  // Decodes requests [0, count) and reports each to `sink` as soon as it finishes; `observer` (when set)
  // sees every step.
  void run(size_t count, const TaskFactory& make_task, const ResultSink& sink,
           const StepObserver& observer = {});

 private:
  struct Active;

  LogitRows host_rows(const Tensor& logits, int64_t first, int64_t count);
  // Gathers every active task's token rules into step_rules_; false when one of them needs host logits.
  bool gather_rules(const std::vector<Active>& active);

  Backbone& backbone_;
  Backend& backend_;
  Visibility visibility_;
  int64_t max_rows_;
  ForwardBatch batch_;                        // reused across steps
  HostTensor staging_;                        // logits copied off a device backend, flat [capacity]
  StepRules step_rules_;                      // a step's rules, one per logit row
  std::vector<TokenPrediction> predictions_;  // their results
};

}  // namespace dlm
