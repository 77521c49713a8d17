#include "samplers/llada.h"

#include <algorithm>
#include <chrono>

#include "samplers/selection.h"
#include "samplers/transfer_schedule.h"

namespace dlm {

struct LladaSampler::Sequence {
  std::vector<int32_t> canvas;  // prompt, then gen_length positions, masked until committed
  int64_t prompt_length = 0;
  RngStream rng;
  std::vector<int64_t> schedule;  // commits per step of the current block
  int64_t nfe = 0;
  int64_t first_row = 0;  // this step's logit rows in the batch: [first_row, first_row + row_count)
  int64_t row_count = 0;
};

LladaSampler::LladaSampler(Backbone& backbone, Backend& backend, int32_t mask_id,
                           const SamplingConfig& settings)
    : backbone_(backbone), backend_(backend), mask_id_(mask_id), settings_(settings) {
  validate(settings, "sampler settings");
  if (mask_id < 0 || mask_id >= backbone.vocab_size()) {
    fail_input("mask token id {} is outside the model's vocabulary of {}", mask_id, backbone.vocab_size());
  }
}

void LladaSampler::check_fits(const Backbone& backbone, const SamplingConfig& settings,
                              const GenerationRequest& request) {
  const int64_t prompt = static_cast<int64_t>(request.prompt.size());
  if (prompt + settings.gen_length > backbone.max_positions()) {
    fail_input("prompt of {} tokens plus gen_length {} exceeds the model's context of {} positions", prompt,
               settings.gen_length, backbone.max_positions());
  }
}

std::vector<GenerationResult> LladaSampler::generate(std::span<const GenerationRequest> requests) {
  for (const GenerationRequest& request : requests) check_fits(backbone_, settings_, request);
  const auto start = std::chrono::steady_clock::now();

  std::vector<Sequence> sequences(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    Sequence& seq = sequences[r];
    seq.canvas = requests[r].prompt;
    seq.canvas.resize(requests[r].prompt.size() + static_cast<size_t>(settings_.gen_length), mask_id_);
    seq.prompt_length = static_cast<int64_t>(requests[r].prompt.size());
    seq.rng = RngStream{requests[r].seed};
  }

  const int64_t blocks = settings_.gen_length / settings_.block_length;
  const int64_t steps_per_block = settings_.steps / blocks;
  for (int64_t block = 0; block < blocks; ++block) {
    const int64_t block_begin = block * settings_.block_length;  // relative to the end of the prompt
    for (Sequence& seq : sequences) {
      const auto first = seq.canvas.begin() + seq.prompt_length + block_begin;
      const int64_t masked = std::count(first, first + settings_.block_length, mask_id_);
      seq.schedule = num_transfer_tokens(masked, steps_per_block);
    }
    for (int64_t i = 0; i < steps_per_block; ++i) {
      run_step(sequences, block * steps_per_block + i, i, block_begin + settings_.block_length);
    }
  }

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<GenerationResult> results(sequences.size());
  for (size_t r = 0; r < sequences.size(); ++r) {
    const Sequence& seq = sequences[r];
    results[r].tokens.assign(seq.canvas.begin() + seq.prompt_length, seq.canvas.end());
    results[r].nfe = seq.nfe;
    results[r].seconds = seconds;
  }
  return results;
}

// One denoising step: a forward over the canvases that commit something this step, logits only for their
// masked positions up to the end of the current block (LLaDA gives later positions confidence -inf, so they
// are never chosen), then each commits its scheduled count of highest-confidence predictions.
void LladaSampler::run_step(std::vector<Sequence>& sequences, int64_t step, int64_t step_in_block,
                            int64_t block_end_offset) {
  batch_.clear();
  batch_.visibility = Visibility::bidirectional();
  row_streams_.clear();
  for (Sequence& seq : sequences) {
    seq.row_count = 0;
    // A canvas that commits nothing would not change: its forward is skipped, which leaves its output as is
    // because every draw is addressed by (step, position), not by how many draws came before.
    if (seq.schedule[static_cast<size_t>(step_in_block)] == 0) continue;
    const int32_t offset = static_cast<int32_t>(batch_.tokens());
    batch_.add_sequence(seq.canvas);
    seq.first_row = static_cast<int64_t>(batch_.logit_rows.size());
    const int64_t end = seq.prompt_length + block_end_offset;
    for (int64_t position = 0; position < end; ++position) {
      if (seq.canvas[static_cast<size_t>(position)] != mask_id_) continue;
      batch_.logit_rows.push_back(offset + static_cast<int32_t>(position));
      row_streams_.push_back(RowStream{seq.rng, position});
    }
    seq.row_count = static_cast<int64_t>(batch_.logit_rows.size()) - seq.first_row;
    ++seq.nfe;
  }
  if (batch_.logit_rows.empty()) return;

  const Tensor logits = backbone_.forward(batch_).logits;
  const bool low_confidence = settings_.remasking == Remasking::LowConfidence;
  sample_tokens(backend_, logits, settings_.temperature, row_streams_, static_cast<uint64_t>(step),
                low_confidence ? WantProbabilities::Yes : WantProbabilities::No, sampled_);
  if (low_confidence) {
    confidence_ = sampled_.probabilities;
  } else {
    confidence_.clear();
    const uint64_t counter = draw_step(DrawPurpose::RandomConfidence, static_cast<uint64_t>(step));
    for (const RowStream& row : row_streams_) {
      confidence_.push_back(row.rng.uniform_float(counter, static_cast<uint64_t>(row.position)));
    }
  }

  for (Sequence& seq : sequences) {
    if (seq.row_count == 0) continue;
    const std::span<const float> candidates(confidence_.data() + seq.first_row,
                                            static_cast<size_t>(seq.row_count));
    const int64_t count = seq.schedule[static_cast<size_t>(step_in_block)];
    for (int64_t chosen : top_k_indices(candidates, count)) {
      const size_t row = static_cast<size_t>(seq.first_row + chosen);
      seq.canvas[static_cast<size_t>(row_streams_[row].position)] = sampled_.tokens[row];
    }
  }
}

}  // namespace dlm
