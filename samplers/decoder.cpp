#include "samplers/decoder.h"

#include <chrono>

#include "engine/core/error.h"
#include "engine/ops/vocab.h"

namespace dlm {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

}  // namespace

struct Decoder::Active {
  size_t request;
  std::unique_ptr<DecodeTask> task;
  GenerationResult result;
  Clock::time_point started;
  int64_t first_row = 0, row_count = 0;
  StepPhase phase = StepPhase::Denoise;
};

Decoder::Decoder(Backbone& backbone, Backend& backend, Visibility visibility, int64_t max_rows)
    : backbone_(backbone), backend_(backend), visibility_(visibility), max_rows_(max_rows) {
  DLM_CHECK(max_rows >= 1, "Decoder: {} rows", max_rows);
}

LogitRows Decoder::host_rows(const Tensor& logits, int64_t first, int64_t count) {
  const int64_t vocab = logits.dim(1);
  if (logits.device().kind == DeviceKind::Cpu) {
    return LogitRows{logits.data_as<float>() + first * vocab, count, vocab};
  }
  return LogitRows{staging_.data<float>() + first * vocab, count, vocab};
}

bool Decoder::gather_rules(const std::vector<Active>& active) {
  std::vector<TokenRule>& rules = step_rules_.rules;
  rules.clear();
  step_rules_.penalized_ids.clear();
  for (const Active& a : active) {
    const size_t first = rules.size();
    if (!a.task->token_rules(step_rules_)) return false;
    DLM_CHECK(static_cast<int64_t>(rules.size() - first) == a.row_count,
              "Decoder: request {} gave {} token rules for {} rows", a.request, rules.size() - first,
              a.row_count);
    for (size_t i = first; i < rules.size(); ++i) {
      if (rules[i].guidance_row >= 0) rules[i].guidance_row += static_cast<int32_t>(a.first_row);
    }
  }
  return true;
}

void Decoder::run(size_t count, const TaskFactory& make_task, const ResultSink& sink,
                  const StepObserver& observer) {
  const Clock::time_point start = Clock::now();
  std::vector<Active> active;
  size_t next = 0;
  while (next < count || !active.empty()) {
    // Refill the free rows in request order.
    while (next < count && static_cast<int64_t>(active.size()) < max_rows_) {
      Active entry{next, make_task(next), {}, Clock::now()};
      entry.result.queued_seconds = seconds_between(start, entry.started);
      ++next;
      if (entry.task->finished()) {
        sink(entry.request, std::move(entry.result));
      } else {
        active.push_back(std::move(entry));
      }
    }
    if (active.empty()) continue;

    batch_.clear();
    batch_.visibility = visibility_;
    batch_.outputs = ForwardOutputs::Logits;
    for (Active& a : active) {
      a.first_row = static_cast<int64_t>(batch_.logit_rows.size());
      a.phase = a.task->plan(batch_);
      a.row_count = static_cast<int64_t>(batch_.logit_rows.size()) - a.first_row;
    }
    // A device backend applies the rules next to the logits when every task has them; otherwise the
    // logit rows come to the host.
    const bool on_device = backend_.predicts_tokens() && gather_rules(active);
    const Clock::time_point forward_start = Clock::now();
    const Tensor logits = backbone_.forward(batch_).logits;
    if (on_device) {
      predictions_.resize(step_rules_.rules.size());
      ops::predict_tokens(backend_, logits, step_rules_.rules, step_rules_.penalized_ids, predictions_);
    } else if (logits.device().kind != DeviceKind::Cpu && logits.numel() > 0) {
      // Grown, never shrunk, so that steps of a steady batch copy without allocating.
      if (staging_.tensor().numel() < logits.numel())
        staging_ = HostTensor(logits.dtype(), Shape{logits.numel()});
      backend_.copy(logits, staging_.tensor().slice(0, 0, logits.numel()).reshape(logits.shape()));
    }
    const double forward_seconds = seconds_between(forward_start, Clock::now());

    for (Active& a : active) {
      StepRows rows;
      if (on_device) {
        rows.predicted = true;
        rows.predictions = std::span(predictions_)
                               .subspan(static_cast<size_t>(a.first_row), static_cast<size_t>(a.row_count));
      } else {
        rows.logits = host_rows(logits, a.first_row, a.row_count);
      }
      a.task->consume(rows);
      if (observer) observer(a.request, a.task->generated());
      ++a.result.nfe;
      PhaseSeconds& phases = a.result.phases;
      (a.phase == StepPhase::Prefill  ? phases.prefill
       : a.phase == StepPhase::Commit ? phases.commit
                                      : phases.denoise) += forward_seconds;
    }
    // Retire the finished requests; the others keep their order.
    size_t kept = 0;
    for (Active& a : active) {
      if (!a.task->finished()) {
        if (&active[kept] != &a) active[kept] = std::move(a);
        ++kept;
        continue;
      }
      TaskOutput out = a.task->output();
      a.result.tokens = std::move(out.tokens);
      a.result.finish = out.finish;
      a.result.committed = out.committed;
      a.result.seconds = seconds_between(a.started, Clock::now());
      sink(a.request, std::move(a.result));
    }
    active.resize(kept);
  }
}

}  // namespace dlm
