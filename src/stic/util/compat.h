// stic/util/compat.h — the few places where libtorch 1.13 (Debian, CPU) and 2.x (CUDA wheels) differ.
//
// Everything version-dependent goes through here so the rest of the code is written once:
//   - scaled dot-product attention: public in 2.x (flash / memory-efficient kernels on CUDA);
//     1.13 has no public op, so we fall back to matmul + softmax in fp32.
//   - CUDA availability checks that compile without CUDA headers.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>

#include <optional>

namespace stic::compat {

constexpr bool kHasSdpa = TORCH_VERSION_MAJOR >= 2;

// Attention over q (B,H,Tq,D), k/v (B,H,Tk,D). `mask`, when defined, is additive and
// broadcastable to (B,H,Tq,Tk) (0 where allowed, -inf where not). `causal` requests a causal
// mask aligned to the *bottom-right* (query i sees keys up to Tk - Tq + i), which is what a KV
// cache needs; 2.x's `is_causal` is top-left aligned, so we only pass it when Tq == Tk.
inline torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, bool causal) {
  const int64_t tq = q.size(2), tk = k.size(2);
#if TORCH_VERSION_MAJOR >= 2
  if (!mask.defined() && (!causal || tq == tk || tq == 1)) {
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal && tq == tk && tq > 1);
  }
  if (!causal) return at::scaled_dot_product_attention(q, k, v, mask.to(q.dtype()), 0.0, false);
#endif
  // Reference path (and 1.13): softmax in fp32 for stability, output in q's dtype.
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  auto scores = torch::matmul(q.to(torch::kFloat32), k.to(torch::kFloat32).transpose(-2, -1)) * scale;
  if (causal && tq > 1) {
    auto causal_mask = torch::ones({tq, tk}, torch::TensorOptions().dtype(torch::kBool).device(q.device()))
                           .tril(tk - tq);
    scores = scores.masked_fill(causal_mask.logical_not(), -std::numeric_limits<float>::infinity());
  }
  if (mask.defined()) scores = scores + mask.to(torch::kFloat32);
  auto probs = torch::softmax(scores, -1);
  return torch::matmul(probs, v.to(torch::kFloat32)).to(q.dtype());
}

inline bool cuda_available() { return torch::cuda::is_available(); }

}  // namespace stic::compat
