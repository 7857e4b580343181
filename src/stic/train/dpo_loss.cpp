// stic/train/dpo_loss.cpp — see dpo_loss.h.
#include "stic/train/dpo_loss.h"

#include "stic/util/error.h"

namespace stic {

void check_dpo_options(const DpoLossOptions& o) {
  if (!(o.beta > 0)) fail("--beta must be > 0 (got ", o.beta, ")");
  if (!(o.alpha >= 0)) fail("--alpha must be >= 0 (got ", o.alpha, ")");
  if (o.alpha_norm != "sum" && o.alpha_norm != "mean") fail("--alpha-norm must be sum or mean (got '", o.alpha_norm, "')");
  if (o.loss_type != "sigmoid" && o.loss_type != "hinge" && o.loss_type != "ipo" && o.loss_type != "sft")
    fail("--loss-type must be sigmoid, hinge, ipo or sft (got '", o.loss_type, "')");
  if (o.loss_type == "sft" && !(o.alpha > 0)) fail("--loss-type sft trains on alpha * nll alone: --alpha must be > 0");
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 0.5)) fail("--label-smoothing must lie in [0, 0.5)");
  if (o.label_smoothing > 0 && o.loss_type != "sigmoid") fail("--label-smoothing applies to --loss-type sigmoid only");
}

DpoLossResult dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                       const torch::Tensor& reference_chosen, const torch::Tensor& reference_rejected,
                       const torch::Tensor& chosen_tokens, const DpoLossOptions& o) {
  check_dpo_options(o);
  const auto pc = policy_chosen.to(torch::kFloat32), pr = policy_rejected.to(torch::kFloat32);
  const auto rc = reference_chosen.to(torch::kFloat32).detach(), rr = reference_rejected.to(torch::kFloat32).detach();
  const auto z = (pc - rc) - (pr - rr);  // (P)
  torch::Tensor dpo;
  if (o.loss_type == "sigmoid") {
    namespace F = torch::nn::functional;
    dpo = -(1.0 - o.label_smoothing) * F::logsigmoid(o.beta * z) - o.label_smoothing * F::logsigmoid(-o.beta * z);
  } else if (o.loss_type == "hinge") {
    dpo = torch::relu(1.0 - o.beta * z);
  } else if (o.loss_type == "ipo") {
    dpo = (z - 1.0 / (2.0 * o.beta)).pow(2);
  } else {
    dpo = torch::zeros_like(z);  // sft: the preferred answers alone, no negatives
  }
  auto nll = -pc;
  if (o.alpha_norm == "mean") nll = nll / chosen_tokens.to(torch::kFloat32).clamp_min(1.0);
  DpoLossResult r;
  r.loss = (dpo + o.alpha * nll).mean();
  torch::NoGradGuard ng;
  const auto rew_c = o.beta * (pc - rc), rew_r = o.beta * (pr - rr);
  r.metrics["loss"] = r.loss.item<double>();
  r.metrics["rewards/chosen"] = rew_c.mean().item<double>();
  r.metrics["rewards/rejected"] = rew_r.mean().item<double>();
  r.metrics["rewards/accuracies"] = (rew_c > rew_r).to(torch::kFloat32).mean().item<double>();
  r.metrics["rewards/margins"] = (rew_c - rew_r).mean().item<double>();
  r.metrics["logps/chosen"] = pc.mean().item<double>();
  r.metrics["logps/rejected"] = pr.mean().item<double>();
  r.metrics["nll"] = nll.mean().item<double>();
  return r;
}

}  // namespace stic
