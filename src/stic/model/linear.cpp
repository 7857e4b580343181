#include "stic/model/linear.h"

#include <cmath>

#include "stic/util/error.h"

namespace stic {

namespace {
thread_local bool g_adapters_enabled = true;
}

bool adapters_enabled() { return g_adapters_enabled; }

namespace {
thread_local LoraDropoutMasks g_dropout_masks;
torch::Tensor lora_dropout_apply(const torch::Tensor& x, double p) {
  if (!g_dropout_masks) return torch::dropout(x, p, /*train=*/true);
  auto keep = g_dropout_masks(x, p);
  if (!keep.sizes().equals(x.sizes()))
    fail("LoRA dropout: a replayed mask of shape ", keep.sizes(), " for an input of shape ", x.sizes());
  return x * keep.to(x.scalar_type()).div_(1.0 - p);  // ATen: input * (noise / (1 - p))
}
}  // namespace
LoraDropoutMaskScope::LoraDropoutMaskScope(LoraDropoutMasks masks) : prev_(std::move(g_dropout_masks)) {
  g_dropout_masks = std::move(masks);
}
LoraDropoutMaskScope::~LoraDropoutMaskScope() { g_dropout_masks = std::move(prev_); }
AdapterDisabledGuard::AdapterDisabledGuard() : prev_(g_adapters_enabled) { g_adapters_enabled = false; }
AdapterDisabledGuard::~AdapterDisabledGuard() { g_adapters_enabled = prev_; }

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  // Uninitialised on purpose: a 7B model is built and then loaded, and untouched pages cost
  // no memory. Training from scratch initialises explicitly (model/init).
  weight = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::empty({out}));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  auto y = torch::linear(x, weight, bias);
  if (lora_A && g_adapters_enabled) {
    const auto wt = lora_A->weight.scalar_type();
    if (lora_compute_in_input_dtype && x.scalar_type() != wt) {
      // mixed precision (as autocast): the fp32 adapter weights are cast to the activations'
      // dtype for the two small GEMMs; gradients still reach the fp32 weights
      auto h = lora_dropout > 0.0 && is_training() ? lora_dropout_apply(x, lora_dropout) : x;
      auto a = lora_A->weight.to(x.scalar_type()), b = lora_B->weight.to(x.scalar_type());
      y = y + torch::linear(torch::linear(h, a), b) * lora_scaling;
    } else {
      auto h = x.to(wt);
      if (lora_dropout > 0.0 && is_training()) h = lora_dropout_apply(h, lora_dropout);
      y = y + (lora_B(lora_A(h)) * lora_scaling).to(y.scalar_type());
    }
  }
  return y;
}

void LinearImpl::attach_lora(int64_t r, double alpha, double dropout, bool rslora, torch::ScalarType dtype) {
  if (r <= 0) fail("LoRA rank must be positive, got ", r);
  if (lora_A) detach_lora();
  auto opts = torch::TensorOptions().dtype(dtype).device(weight.device());
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_features, r).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(r, out_features).bias(false)));
  torch::NoGradGuard ng;
  torch::nn::init::kaiming_uniform_(lora_A->weight, std::sqrt(5.0));
  lora_B->weight.zero_();
  lora_A->to(opts.device(), opts.dtype().toScalarType());
  lora_B->to(opts.device(), opts.dtype().toScalarType());
  lora_scaling = rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
  lora_dropout = dropout;
}

void LinearImpl::detach_lora() {
  if (!lora_A) return;
  unregister_module("lora_A");
  unregister_module("lora_B");
  lora_A = nullptr;
  lora_B = nullptr;
  lora_scaling = 0.0;
}

void LinearImpl::merge_lora() {
  if (!lora_A) return;
  torch::NoGradGuard ng;
  auto delta = torch::matmul(lora_B->weight.to(torch::kFloat32), lora_A->weight.to(torch::kFloat32)) * lora_scaling;
  weight.copy_((weight.to(torch::kFloat32) + delta).to(weight.scalar_type()));
  detach_lora();
}

void FusedLinear::fuse(const std::vector<Linear>& ps) {
  torch::NoGradGuard ng;
  if (ps.empty()) fail("FusedLinear: nothing to fuse");
  const bool with_bias = ps[0]->bias.defined();
  std::vector<torch::Tensor> ws, bs;
  for (auto& p : ps) {
    if (p->in_features != ps[0]->in_features || p->bias.defined() != with_bias ||
        p->weight.scalar_type() != ps[0]->weight.scalar_type() || p->weight.device() != ps[0]->weight.device())
      fail("FusedLinear: parts differ in input size, bias, dtype or device");
    ws.push_back(p->weight);
    if (with_bias) bs.push_back(p->bias);
  }
  weight = torch::cat(ws, 0);
  bias = with_bias ? torch::cat(bs, 0) : torch::Tensor();
  int64_t off = 0;
  for (auto& p : ps) {
    const int64_t n = p->out_features;
    p->weight.set_data(weight.narrow(0, off, n));  // the parameter now lives inside the fused tensor
    if (with_bias) p->bias.set_data(bias.narrow(0, off, n));
    off += n;
  }
  parts = ps;
}

bool FusedLinear::intact() const {
  if (!weight.defined()) return false;
  const auto* base = static_cast<const char*>(weight.data_ptr());
  const int64_t row = weight.size(1) * static_cast<int64_t>(weight.element_size());
  int64_t off = 0;
  const auto* bbase = bias.defined() ? static_cast<const char*>(bias.data_ptr()) : nullptr;
  const int64_t belt = bias.defined() ? static_cast<int64_t>(bias.element_size()) : 0;
  for (auto& p : parts) {
    if (p->weight.data_ptr() != base + off * row) return false;
    if (bbase && (!p->bias.defined() || p->bias.data_ptr() != bbase + off * belt)) return false;
    off += p->out_features;
  }
  return true;
}

bool FusedLinear::usable() const {
  if (torch::GradMode::is_enabled() || !intact()) return false;
  for (auto& p : parts)
    if (p->lora_A && adapters_enabled()) return false;
  return true;
}

std::vector<torch::Tensor> FusedLinear::forward(const torch::Tensor& x) const {
  auto y = torch::linear(x, weight, bias);
  std::vector<torch::Tensor> out;
  int64_t off = 0;
  for (auto& p : parts) {
    out.push_back(y.narrow(-1, off, p->out_features));
    off += p->out_features;
  }
  return out;
}

}  // namespace stic
