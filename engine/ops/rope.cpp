#include "engine/ops/rope.h"

#include <cmath>
#include <utility>

#include "engine/ops/check.h"

namespace dlm::ops {

// As HF's default rope init computes it in f32: 1 / (theta ** (arange(0, dim, 2).float() / dim)).
HostTensor default_rope_inv_freq(double theta, int64_t rotary_dim) {
  DLM_CHECK(rotary_dim > 0 && rotary_dim % 2 == 0, "rope: rotary_dim must be positive and even, got {}",
            rotary_dim);
  DLM_CHECK(theta > 0.0, "rope: theta must be positive, got {}", theta);
  HostTensor inv_freq(DType::F32, Shape{rotary_dim / 2});
  float* values = inv_freq.data<float>();
  const auto base = static_cast<float>(theta);
  for (int64_t i = 0; i < rotary_dim / 2; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
    const auto power = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
    values[i] = 1.0f / power;
  }
  return inv_freq;
}

namespace {

// `heads` [T,H,D]: rotary_dim even and in (0, D].
void check_rotary_dim(std::string_view op, std::string_view arg, const Tensor& heads,
                      const RopeParams& params) {
  const int64_t head_dim = heads.dim(2);
  DLM_CHECK(params.rotary_dim > 0 && params.rotary_dim % 2 == 0 && params.rotary_dim <= head_dim,
            "{}: rotary_dim must be even and in (0, {}] for {} {}, got {}", op, head_dim, arg,
            heads.describe(), params.rotary_dim);
}

}  // namespace

// x [T,H,D] an activation (f32, or bf16 where the backend computes in it), each token's [H,D] contiguous but
// tokens possibly further apart (a column block of a fused projection's output); positions i32 [T]; inv_freq
// f32 [rotary_dim/2] with rotary_dim even and in (0, D]; out [T,H,D] contiguous in x's dtype, and it may be x
// itself where x is contiguous.
void rope(Backend& backend, const Tensor& x, const Tensor& positions, const Tensor& inv_freq,
          const RopeParams& params, const Tensor& out) {
  constexpr std::string_view kOp = "rope";
  check_activation_rows(kOp, "x", x, backend);
  check_operand(kOp, "positions", positions, backend, {DType::I32});
  check_operand(kOp, "inv_freq", inv_freq, backend, {DType::F32});
  check_activation(kOp, "out", out, backend);
  check_same_dtype(kOp, "out", out, "x", x);
  check_rank(kOp, "x", x, 3);
  check_rotary_dim(kOp, "x", x, params);
  check_shape(kOp, "positions", positions, Shape{x.dim(0)});
  check_shape(kOp, "inv_freq", inv_freq, Shape{params.rotary_dim / 2});
  check_shape(kOp, "out", out, x.shape());
  if (!x.is_contiguous()) check_disjoint(kOp, "out", out, "x", x);
  backend.rope(x, positions, inv_freq, params, out);
}

// qkv [T, (Hq + 2 Hkv) D] an activation whose rows are contiguous (tokens possibly further apart); q
// [T,Hq,D], k and v [T,Hkv,D] contiguous activations of qkv's dtype, none sharing memory with qkv; the rest
// as for rope.
void rope_qkv(Backend& backend, const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
              const RopeParams& params, const Tensor& q, const Tensor& k, const Tensor& v) {
  constexpr std::string_view kOp = "rope_qkv";
  check_activation_rows(kOp, "qkv", qkv, backend);
  check_rank(kOp, "qkv", qkv, 2);
  check_operand(kOp, "positions", positions, backend, {DType::I32});
  check_operand(kOp, "inv_freq", inv_freq, backend, {DType::F32});
  for (const auto& [name, t] : {std::pair{"q", &q}, std::pair{"k", &k}, std::pair{"v", &v}}) {
    check_activation(kOp, name, *t, backend);
    check_same_dtype(kOp, name, *t, "qkv", qkv);
    check_rank(kOp, name, *t, 3);
    check_disjoint(kOp, name, *t, "qkv", qkv);
  }
  const int64_t tokens = qkv.dim(0), q_heads = q.dim(1), kv_heads = k.dim(1), head_dim = q.dim(2);
  check_shape(kOp, "q", q, Shape{tokens, q_heads, head_dim});
  check_shape(kOp, "k", k, Shape{tokens, kv_heads, head_dim});
  check_shape(kOp, "v", v, k.shape());
  check_shape(kOp, "qkv", qkv, Shape{tokens, (q_heads + 2 * kv_heads) * head_dim});
  check_rotary_dim(kOp, "q", q, params);
  check_shape(kOp, "positions", positions, Shape{tokens});
  check_shape(kOp, "inv_freq", inv_freq, Shape{params.rotary_dim / 2});
  backend.rope_qkv(qkv, positions, inv_freq, params, q, k, v);
}

}  // namespace dlm::ops
