#pragma once
// The table `dlm bench` prints: one row per sweep point, as markdown for people, or CSV or JSON for scripts.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/backend/profiling_backend.h"
#include "engine/io/generation_config.h"

namespace dlm::cli {

// The settings of one point of the sweep.
struct SweepPoint {
  SamplingConfig sampling;
  int64_t batch_size = 0;     // requests per run, all decoding at once
  int64_t prompt_length = 0;  // tokens per prompt, BOS included
};

struct RunCounts {
  int64_t warmup = 0, repeat = 0;
};

// What the timed runs of a point measured.
struct Measurement {
  double median_seconds = 0, min_seconds = 0, max_seconds = 0;  // wall time of a run
  double tokens_per_second = 0;                                 // generated tokens of a run / median_seconds
  double nfe_per_request = 0;                                   // mean over the timed requests
  double tokens_per_nfe = 0;                                    // mean over the timed requests
  double ms_per_forward = 0;                // median over the runs of the run's forward time / its forwards
  double latency_p50 = 0, latency_p95 = 0;  // seconds from the run's start to a request's end
};

// Where one more run of a point spent its time (--profile), with every backend op timed alone.
struct PointProfile {
  double run_seconds = 0;  // the run's wall time, the waits around each op included
  int64_t forwards = 0;    // the forwards of the run's longest request: every step of the run
  std::vector<OpTime> ops;
};

struct BenchRow {
  SweepPoint point;  // its settings resolved for the model when it ran, as swept otherwise
  std::optional<Measurement> measured;
  std::string error;  // why the point did not run
  std::optional<PointProfile> profile;
};

// "method llada, batch 1, prompt 32, gen 64, block 32, steps 16, commit schedule, cache none"
std::string describe(const SweepPoint& point);

struct BenchReport {
  std::string command;  // the shell command that reproduces the run
  std::string model, date;
  std::string device = "cpu";  // --device
  int threads = 0;             // CPU threads (the CPU backend's, or the host's beside a GPU)
  RunCounts runs;
  std::vector<BenchRow> rows;
};

// The command, model, machine, date and run counts as a list, then the table; an "error" column only when a
// point did not run; then, for each profiled point, its time by op and its costliest op shapes.
std::string report_markdown(const BenchReport& report);
// A header row of keys, then one row per point; a point that did not run has empty metrics and its error.
std::string report_csv(const BenchReport& report);
// One object: the run's facts and "rows"; a point that did not run has "error" in place of the metrics.
std::string report_json(const BenchReport& report);

}  // namespace dlm::cli
