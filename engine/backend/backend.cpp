// The Backend interface's default compositions of fused ops.
#include "engine/backend/backend.h"

namespace dlm {

void Backend::rope_qkv(const Tensor& qkv, const Tensor& positions, const Tensor& inv_freq,
                       const RopeParams& params, const Tensor& q, const Tensor& k, const Tensor& v) {
  const int64_t tokens = qkv.dim(0);
  const int64_t head_dim = q.dim(2);
  const auto heads_at = [&](int64_t first_head, int64_t heads) {
    const Tensor columns = qkv.slice(1, first_head * head_dim, (first_head + heads) * head_dim);
    return Tensor(columns.data(), columns.dtype(), Shape{tokens, heads, head_dim},
                  Shape{qkv.stride(0), head_dim, 1}, columns.device());
  };
  const int64_t q_heads = q.dim(1), kv_heads = k.dim(1);
  rope(heads_at(0, q_heads), positions, inv_freq, params, q);
  rope(heads_at(q_heads, kv_heads), positions, inv_freq, params, k);
  copy(heads_at(q_heads + kv_heads, kv_heads), v);
}

}  // namespace dlm
