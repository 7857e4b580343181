// stic/train/optim.h — AdamW with fp32 master weights, learning-rate schedules, grad clipping.
//
// AdamW is torch.optim.AdamW's arithmetic (decoupled weight decay, bias-corrected moments,
// eps added after the bias-corrected square root). A parameter that is not fp32 (a bf16 model
// trained in full) gets an fp32 master copy: the update happens on the master, which is then
// rounded into the parameter; gradients are read in fp32. fp32 parameters (LoRA weights, which
// stic keeps in fp32) are updated in place.
// Schedules follow HF transformers' get_*_schedule_with_warmup (lambda of the 0-based step).
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace stic {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(std::vector<std::pair<std::string, torch::Tensor>> params, AdamWOptions opts);
  void step(double lr);  // one update with the current .grad of every parameter (undefined grad = skip)
  // Parameter i is updated with lr * scale (its weight decay too): LLaVA's separate learning
  // rates for the projector / vision tower (mm_projector_lr, mm_vision_tower_lr). Default 1.
  void set_lr_scale(size_t i, double scale) { lr_scale_.at(i) = scale; }
  void zero_grad();
  int64_t steps() const { return t_; }
  // Moments, master copies and step count under stable names ("exp_avg/<param>", ...).
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& s, const std::string& where_for_errors);
  const std::vector<std::pair<std::string, torch::Tensor>>& params() const { return params_; }

 private:
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<torch::Tensor> master_, m_, v_;  // master_[i] undefined when the param is fp32
  std::vector<double> lr_scale_;
  AdamWOptions o_;
  int64_t t_ = 0;
};

// L2 norm of all gradients together (fp32/fp64 accumulation); scales them so the norm is at
// most max_norm when max_norm > 0 (torch.nn.utils.clip_grad_norm_: coef = max/(norm + 1e-6)).
// Returns the norm before clipping (may be inf/nan: the caller checks).
double clip_grad_norm(const std::vector<std::pair<std::string, torch::Tensor>>& params, double max_norm);

enum class Schedule { Constant, Linear, Cosine };
Schedule schedule_from_name(const std::string& name);  // constant|linear|cosine; throws stic::Error
// Multiplier of the base lr for the 0-based optimizer step (HF's lr_lambda).
double lr_multiplier(Schedule s, int64_t step, int64_t warmup_steps, int64_t total_steps);
// HF TrainingArguments.get_warmup_steps: ceil(total * ratio).
int64_t warmup_steps_from_ratio(double ratio, int64_t total_steps);

}  // namespace stic
