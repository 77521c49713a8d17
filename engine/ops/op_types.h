#pragma once
// Parameter types shared by op front-ends and backends. Closed choices are enums.
#include <cstdint>

namespace dlm {

// RMSNorm scale: x * w (Llama, Qwen) or x * (1 + w) (Gemma).
enum class NormWeight : uint8_t { Plain, OnePlus };

// Pairs rotated by RoPE: (i, i + rotary_dim/2) as in HF Llama (HalfSplit), or (2i, 2i+1) as in GPT-J
// (Interleaved).
enum class RopeLayout : uint8_t { HalfSplit, Interleaved };

struct RopeParams {
  RopeLayout layout = RopeLayout::HalfSplit;
  int64_t rotary_dim = 0;         // the first rotary_dim features of each head rotate; the rest pass through
  float attention_factor = 1.0f;  // multiplies cos and sin (YaRN-style scaling); 1 for plain RoPE
};

enum class GeluApproximation : uint8_t { None /* exact, erf */, Tanh };

// Which keys a query may see, from the query's and the key's positions in their sequence.
enum class VisibilityKind : uint8_t {
  Bidirectional,  // every key
  Causal,         // key_pos <= query_pos
  BlockCausal,    // key_pos / block_size <= query_pos / block_size
  SlidingWindow,  // causal and query_pos - key_pos < window
};

struct Visibility {
  VisibilityKind kind = VisibilityKind::Bidirectional;
  int64_t block_size = 0;  // BlockCausal only
  int64_t window = 0;      // SlidingWindow only

  static Visibility bidirectional() { return {VisibilityKind::Bidirectional, 0, 0}; }
  static Visibility causal() { return {VisibilityKind::Causal, 0, 0}; }
  static Visibility block_causal(int64_t block_size) { return {VisibilityKind::BlockCausal, block_size, 0}; }
  static Visibility sliding_window(int64_t window) { return {VisibilityKind::SlidingWindow, 0, window}; }

  bool sees(int64_t query_pos, int64_t key_pos) const {
    switch (kind) {
      case VisibilityKind::Bidirectional:
        return true;
      case VisibilityKind::Causal:
        return key_pos <= query_pos;
      case VisibilityKind::BlockCausal:
        return key_pos / block_size <= query_pos / block_size;
      case VisibilityKind::SlidingWindow:
        return key_pos <= query_pos && query_pos - key_pos < window;
    }
    return false;
  }
};

struct AttentionParams {
  Visibility visibility;
  float scale = 0.0f;    // 0: 1/sqrt(head_dim)
  float softcap = 0.0f;  // > 0: scores = softcap * tanh(scores / softcap) (Gemma 2)
};

}  // namespace dlm
