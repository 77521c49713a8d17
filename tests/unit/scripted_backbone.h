#pragma once
// A Backbone for the sampler tests whose logits are a function of (the sequence's tokens, the row's
// position), and which records every forward: which sequences, rows, cache policies and logit rows each call
// had. With the helpers that make the tests' settings and run a Sampler over it on the CPU backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backbones/backbone.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/core/buffer.h"
#include "samplers/sampler.h"

namespace dlm::scripted {

constexpr int32_t kMask = 0;
constexpr int32_t kEos = 9;
constexpr int64_t kVocab = 10;

// What the backbone knows of a sequence in one call: the token at each position (its cached positions, then
// the call's rows over them), -1 where it knows nothing.
using View = std::vector<int32_t>;
using LogitFn = std::function<std::vector<float>(const View& view, int32_t position)>;

// A cache that holds the token each cached position was written with, so the backbone can answer a row from
// the whole sequence it belongs to.
class ScriptedCache final : public SequenceCache {
 public:
  ScriptedCache(int64_t id, int64_t capacity) : id(id), capacity_(capacity) {}
  int64_t length() const override { return static_cast<int64_t>(tokens.size()); }
  int64_t capacity() const override { return capacity_; }
  void truncate(int64_t length) override {
    EXPECT_LE(length, this->length()) << "truncate grows the cache";
    tokens.resize(static_cast<size_t>(std::min(length, this->length())));
  }

  const int64_t id;
  View tokens;

 private:
  int64_t capacity_;
};

// One sequence of one forward, as the backbone saw it.
struct SequenceCall {
  CachePolicy policy = CachePolicy::None;
  int64_t cache_id = -1;
  int64_t cache_length = 0;         // before the call
  std::vector<int32_t> positions;   // of its rows
  std::vector<int32_t> tokens;      // of its rows
  std::vector<int32_t> logit_rows;  // the positions of the logit rows asked of it, in order
};

struct Call {
  Visibility visibility;
  std::vector<SequenceCall> sequences;
};

class ScriptedBackbone final : public Backbone {
 public:
  explicit ScriptedBackbone(LogitFn logits, int64_t max_positions = 64)
      : logits_(std::move(logits)), max_positions_(max_positions) {}

  int64_t vocab_size() const override { return kVocab; }
  int64_t max_positions() const override { return max_positions_; }
  std::unique_ptr<SequenceCache> new_cache(int64_t capacity) override {
    return std::make_unique<ScriptedCache>(caches_made++, capacity);
  }
  BackboneSummary summary() const override { return {}; }

  ForwardResult forward(const ForwardBatch& batch) override {
    validate_forward_batch(batch, kVocab, max_positions_);
    Call call{batch.visibility, {}};
    std::vector<View> views;
    for (int64_t b = 0; b < batch.sequences(); ++b) {
      SequenceCall s;
      const auto begin = static_cast<size_t>(batch.offsets[static_cast<size_t>(b)]);
      const auto end = static_cast<size_t>(batch.offsets[static_cast<size_t>(b) + 1]);
      s.positions.assign(batch.positions.begin() + begin, batch.positions.begin() + end);
      s.tokens.assign(batch.token_ids.begin() + begin, batch.token_ids.begin() + end);
      ScriptedCache* cache = nullptr;
      if (!batch.caches.empty() && batch.caches[static_cast<size_t>(b)].policy != CachePolicy::None) {
        cache = dynamic_cast<ScriptedCache*>(batch.caches[static_cast<size_t>(b)].cache);
        EXPECT_NE(cache, nullptr) << "a cache this backbone did not make";
      }
      View view;
      if (cache != nullptr) {
        s.policy = batch.caches[static_cast<size_t>(b)].policy;
        s.cache_id = cache->id;
        s.cache_length = cache->length();
        view = cache->tokens;
      }
      for (size_t i = 0; i < s.positions.size(); ++i) {
        const auto p = static_cast<size_t>(s.positions[i]);
        if (p >= view.size()) view.resize(p + 1, -1);
        view[p] = s.tokens[i];
      }
      if (cache != nullptr && s.policy != CachePolicy::Read) cache->tokens = view;  // Commit, Replace
      views.push_back(std::move(view));
      call.sequences.push_back(std::move(s));
    }
    output_ = HostTensor(DType::F32, Shape{static_cast<int64_t>(batch.logit_rows.size()), kVocab});
    float* out = output_.data<float>();
    for (int32_t row : batch.logit_rows) {
      size_t b = 0;
      while (batch.offsets[b + 1] <= row) ++b;
      const int32_t position = batch.positions[static_cast<size_t>(row)];
      const std::vector<float> logits = logits_(views[b], position);
      EXPECT_EQ(static_cast<int64_t>(logits.size()), kVocab);
      out = std::copy(logits.begin(), logits.end(), out);
      call.sequences[b].logit_rows.push_back(position);
    }
    calls.push_back(std::move(call));
    return ForwardResult{output_.tensor(), {}};
  }

  std::vector<Call> calls;
  int64_t caches_made = 0;

 private:
  LogitFn logits_;
  int64_t max_positions_;
  HostTensor output_;
};

// Logits with `value` at `token` and 0 elsewhere.
inline std::vector<float> peak(int32_t token, float value) {
  std::vector<float> logits(kVocab, 0.0f);
  logits[static_cast<size_t>(token)] = value;
  return logits;
}

inline DecodeContext scripted_context(int64_t shift = 0, std::vector<int32_t> stop_ids = {kEos}) {
  DecodeContext context;
  context.mask_id = kMask;
  context.stop_ids = std::move(stop_ids);
  context.logit_shift = shift;
  return context;
}

inline SamplingConfig llada(int64_t gen_length, int64_t steps, int64_t block_length) {
  SamplingConfig config;
  config.method = Method::Llada;
  config.gen_length = gen_length;
  config.steps = steps;
  config.block_length = block_length;
  return config;
}

inline SamplingConfig block_diffusion(int64_t gen_length, int64_t steps, int64_t block_length) {
  SamplingConfig config = llada(gen_length, steps, block_length);
  config.method = Method::BlockDiffusion;
  return config;
}

inline std::vector<GenerationResult> generate(Backbone& backbone, const SamplingConfig& config,
                                              const DecodeContext& context,
                                              const std::vector<GenerationRequest>& requests,
                                              int64_t max_rows = 8) {
  CpuBackend backend(1);
  const SamplingConfig resolved =
      resolve_sampling(config, ModelDefaults{config.method, 4}, context, backbone.vocab_size());
  Sampler sampler(backbone, backend, context, resolved);
  return sampler.generate(requests, max_rows);
}

inline std::vector<int32_t> range(int32_t begin, int32_t end) {
  std::vector<int32_t> out;
  for (int32_t p = begin; p < end; ++p) out.push_back(p);
  return out;
}

// What one call asked of its (single) sequence.
struct Expected {
  CachePolicy policy;
  int64_t cache_length;
  std::vector<int32_t> positions, logit_rows;
};

inline void expect_calls(const ScriptedBackbone& backbone, const std::vector<Expected>& expected) {
  ASSERT_EQ(backbone.calls.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const SequenceCall& s = backbone.calls[i].sequences.at(0);
    EXPECT_EQ(s.policy, expected[i].policy) << "call " << i;
    EXPECT_EQ(s.cache_length, expected[i].cache_length) << "call " << i;
    EXPECT_EQ(s.positions, expected[i].positions) << "call " << i;
    EXPECT_EQ(s.logit_rows, expected[i].logit_rows) << "call " << i;
  }
}

// The row at q predicts the token at q plus 1 (so a chain 1, 2, ..., 9 = EOS).
inline std::vector<float> counting(const View& view, int32_t row) {
  return peak((view.at(static_cast<size_t>(row)) + 1) % kVocab, 3.0f);
}

}  // namespace dlm::scripted
