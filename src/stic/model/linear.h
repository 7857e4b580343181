// stic/model/linear.h — the one linear layer of every model, with optional LoRA.
//
//   y = x W^T + b                                   (base)
//     + scaling * B(A(dropout(x)))                  (LoRA, when attached and adapters are enabled)
// with scaling = alpha / r (or alpha / sqrt(r) for rsLoRA) — PEFT's LoraLayer semantics. The
// adapter's parameters are registered as submodules `lora_A` (r, in) and `lora_B` (out, r), so
// named_parameters() gives "...q_proj.lora_A.weight", the PEFT file names minus the prefix.
// AdapterDisabledGuard turns every adapter off in its scope (thread-local): that is the DPO
// reference model — the exact base network, no second copy.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace stic {

struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in_features, int64_t out_features, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

  // Attaches a fresh adapter: A ~ kaiming_uniform(a = sqrt(5)) (PEFT's init), B = 0, so the
  // layer's output is unchanged until B trains. The device follows the base weight; the dtype
  // is fp32 by default whatever the base dtype (PEFT's autocast_adapter_dtype): the adapter is
  // then its own fp32 master copy in bf16 training.
  void attach_lora(int64_t r, double alpha, double dropout, bool rslora = false,
                   torch::ScalarType dtype = torch::kFloat32);
  void detach_lora();
  // Folds scaling * B A into W and removes the adapter.
  void merge_lora();
  bool has_lora() const { return static_cast<bool>(lora_A); }

  int64_t in_features, out_features;
  torch::Tensor weight;  // (out, in)
  torch::Tensor bias;    // (out) or undefined
  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};
  double lora_scaling = 0.0, lora_dropout = 0.0;
  // false: the input is cast to the adapter's dtype (fp32) and the adapter runs in fp32 (PEFT's
  // default, exact); true: the adapter's weights are cast to the input's dtype (bf16 training:
  // what torch.autocast does for PEFT under HF Trainer's --bf16), which keeps the small GEMMs on
  // the tensor cores and saves no fp32 copy of the input for the backward
  bool lora_compute_in_input_dtype = false;
};
TORCH_MODULE(Linear);

// Linear layers that read the same input (q/k/v, gate/up) fused into one GEMM for inference.
// fuse() copies their weights into one (sum of outs, in) tensor and makes each part's weight a
// row block (a view) of it: memory is unchanged, and an in-place update of either side (a LoRA
// merge, an optimizer step) keeps both the same. usable() says when the fused GEMM may stand in
// for the parts: no gradients being recorded, no active LoRA on any part, and every part still
// a view of the fused tensor (a part whose weight was replaced falls back to the parts).
struct FusedLinear {
  void fuse(const std::vector<Linear>& parts);
  bool intact() const;  // fused, and every part's weight still a view of it
  bool usable() const;
  // The parts' outputs, as views of one GEMM's result (B, T, sum of outs).
  std::vector<torch::Tensor> forward(const torch::Tensor& x) const;
  std::vector<Linear> parts;
  torch::Tensor weight, bias;
};

// LoRA dropout's keep-mask source. By default each training forward draws x * bernoulli(1 - p)
// / (1 - p) (ATen's CPU dropout, as nn.Dropout). A test installs a function that returns the
// keep-mask (0/1, x's shape) for the next call, to replay the masks a reference implementation
// drew (tests/fixtures/train_step); the scaling by 1 / (1 - p) stays here. Thread-local.
using LoraDropoutMasks = std::function<torch::Tensor(const torch::Tensor& x, double p)>;
class LoraDropoutMaskScope {
 public:
  explicit LoraDropoutMaskScope(LoraDropoutMasks masks);
  ~LoraDropoutMaskScope();
  LoraDropoutMaskScope(const LoraDropoutMaskScope&) = delete;
  LoraDropoutMaskScope& operator=(const LoraDropoutMaskScope&) = delete;

 private:
  LoraDropoutMasks prev_;
};

bool adapters_enabled();
class AdapterDisabledGuard {
 public:
  AdapterDisabledGuard();
  ~AdapterDisabledGuard();
  AdapterDisabledGuard(const AdapterDisabledGuard&) = delete;
  AdapterDisabledGuard& operator=(const AdapterDisabledGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace stic
