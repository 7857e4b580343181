// stic/train/dpo_loss.h — STIC's stage-1 loss (reference/stic-method.md section 3): DPO on
// per-sequence log-probs plus a regulariser on the preferred answer,
//
//   z    = (log πθ(y_w) − log πref(y_w)) − (log πθ(y_l) − log πref(y_l))
//   L    = mean over pairs of  dpo(β z) + α · nll(y_w)
//   dpo  = sigmoid: −(1−ε) log σ(βz) − ε log σ(−βz)   (ε = label smoothing, cDPO)
//          hinge:   max(0, 1 − βz)
//          ipo:     (z − 1/(2β))²
//          sft:     0 — supervised training on the preferred answers alone (the paper's "no
//                   negatives" ablation; with alpha_norm "mean" and α = 1, LLaVA's SFT loss)
//   nll  = −log πθ(y_w)             alpha_norm "sum"  (the released form: α = 1/1024 on the sum)
//          −log πθ(y_w) / |y_w|      alpha_norm "mean" (per answer token)
//
// Log-probs are sums over the answer tokens (train/collator.h sequence_logprobs). Metrics carry
// TRL's names: rewards/chosen = β(log πθ − log πref)(y_w), rewards/rejected, rewards/accuracies
// (chosen reward > rejected), rewards/margins, logps/chosen, logps/rejected (policy sums), and
// nll (the regulariser's NLL before α, mean over pairs). The DPO trainer (stic train-dpo) is
// built on this; at its first step policy = reference, so the sigmoid term is exactly ln 2.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace stic {

struct DpoLossOptions {
  double beta = 0.1;
  double alpha = 1.0 / 1024;           // the regulariser's weight (0: plain DPO)
  std::string alpha_norm = "sum";      // sum | mean
  std::string loss_type = "sigmoid";   // sigmoid | hinge | ipo | sft
  double label_smoothing = 0.0;        // sigmoid only, in [0, 0.5)
};
// Throws stic::Error naming the bad option.
void check_dpo_options(const DpoLossOptions& o);

struct DpoLossResult {
  torch::Tensor loss;                      // scalar (differentiable through the policy log-probs)
  std::map<std::string, double> metrics;   // TRL's names + nll
};

// policy_* / reference_* (P) summed log-probs of the chosen (w) and rejected (l) answers;
// chosen_tokens (P) the number of y_w's answer tokens (for alpha_norm "mean").
DpoLossResult dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                       const torch::Tensor& reference_chosen, const torch::Tensor& reference_rejected,
                       const torch::Tensor& chosen_tokens, const DpoLossOptions& o);

}  // namespace stic
