// STIC's stage-1 loss against values derived by hand: ln 2 when policy = reference, each loss
// type and label smoothing at a known margin, both regulariser normalisations, TRL's metrics,
// the "sft" type (no negatives), and the gradient with respect to the policy's log-probs.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <vector>

#include "stic/train/dpo_loss.h"
#include "stic/util/error.h"

namespace {

torch::Tensor t(std::initializer_list<float> v) { return torch::tensor(std::vector<float>(v)); }

double log_sigmoid(double x) { return -std::log1p(std::exp(-x)); }

TEST(DpoLoss, PolicyEqualsReferenceGivesLn2AndTheRegulariser) {
  const auto pc = t({-40.f, -12.f}), pr = t({-55.f, -9.f}), n = t({20.f, 6.f});
  stic::DpoLossOptions o;
  o.alpha = 0;
  auto r = stic::dpo_loss(pc, pr, pc, pr, n, o);
  EXPECT_DOUBLE_EQ(r.loss.item<double>(), static_cast<double>(static_cast<float>(std::log(2.0))));
  EXPECT_EQ(r.metrics["rewards/margins"], 0.0);
  EXPECT_EQ(r.metrics["rewards/accuracies"], 0.0);  // ties are not wins
  // + alpha x the summed NLL (the released 1/1024), or the per-token NLL
  o.alpha = 1.0 / 1024;
  r = stic::dpo_loss(pc, pr, pc, pr, n, o);
  EXPECT_NEAR(r.loss.item<double>(), std::log(2.0) + (40.0 + 12.0) / 2 / 1024, 1e-6);
  EXPECT_NEAR(r.metrics["nll"], 26.0, 1e-5);
  o.alpha_norm = "mean";
  o.alpha = 0.5;
  r = stic::dpo_loss(pc, pr, pc, pr, n, o);
  EXPECT_NEAR(r.loss.item<double>(), std::log(2.0) + 0.5 * (40.0 / 20 + 12.0 / 6) / 2, 1e-6);
}

TEST(DpoLoss, EachLossTypeAtAKnownMargin) {
  // pair 0: z = (−10 − −12) − (−20 − −18) = 2 + 2 = 4; pair 1: z = (−5 − −4) − (−6 − −6) = −1
  const auto pc = t({-10.f, -5.f}), pr = t({-20.f, -6.f}), rc = t({-12.f, -4.f}), rr = t({-18.f, -6.f});
  const auto n = t({10.f, 5.f});
  stic::DpoLossOptions o;
  o.alpha = 0;
  o.beta = 0.5;
  const double z0 = 4, z1 = -1, b = 0.5;
  auto r = stic::dpo_loss(pc, pr, rc, rr, n, o);
  EXPECT_NEAR(r.loss.item<double>(), -(log_sigmoid(b * z0) + log_sigmoid(b * z1)) / 2, 1e-6);
  EXPECT_NEAR(r.metrics["rewards/chosen"], b * ((-10 + 12) + (-5 + 4)) / 2, 1e-6);
  EXPECT_NEAR(r.metrics["rewards/rejected"], b * ((-20 + 18) + (-6 + 6)) / 2, 1e-6);
  EXPECT_NEAR(r.metrics["rewards/margins"], b * (z0 + z1) / 2, 1e-6);
  EXPECT_NEAR(r.metrics["rewards/accuracies"], 0.5, 1e-9);
  EXPECT_NEAR(r.metrics["logps/chosen"], -7.5, 1e-6);
  EXPECT_NEAR(r.metrics["logps/rejected"], -13.0, 1e-6);
  o.label_smoothing = 0.2;
  r = stic::dpo_loss(pc, pr, rc, rr, n, o);
  auto cdpo = [&](double z) { return -0.8 * log_sigmoid(b * z) - 0.2 * log_sigmoid(-b * z); };
  EXPECT_NEAR(r.loss.item<double>(), (cdpo(z0) + cdpo(z1)) / 2, 1e-6);
  o.label_smoothing = 0;
  o.loss_type = "hinge";
  r = stic::dpo_loss(pc, pr, rc, rr, n, o);
  EXPECT_NEAR(r.loss.item<double>(), (std::max(0.0, 1 - b * z0) + std::max(0.0, 1 - b * z1)) / 2, 1e-6);
  o.loss_type = "ipo";
  r = stic::dpo_loss(pc, pr, rc, rr, n, o);
  EXPECT_NEAR(r.loss.item<double>(), (std::pow(z0 - 1 / (2 * b), 2) + std::pow(z1 - 1 / (2 * b), 2)) / 2, 1e-5);
}

TEST(DpoLoss, GradientWithRespectToThePolicyLogProbs) {
  // sigmoid: dL/d pc_i = (−β σ(−β z_i) − α) / P ; dL/d pr_i = β σ(−β z_i) / P ; the reference gets none
  auto pc = t({-10.f, -5.f}).requires_grad_(), pr = t({-20.f, -6.f}).requires_grad_();
  auto rc = t({-12.f, -4.f}).requires_grad_(), rr = t({-18.f, -6.f}).requires_grad_();
  stic::DpoLossOptions o;
  o.beta = 0.5;
  o.alpha = 0.25;
  auto r = stic::dpo_loss(pc, pr, rc, rr, t({10.f, 5.f}), o);
  r.loss.backward();
  const double zs[2] = {4, -1};
  for (int i = 0; i < 2; ++i) {
    const double s = 1 / (1 + std::exp(0.5 * zs[i]));  // σ(−βz)
    EXPECT_NEAR(pc.grad()[i].item<double>(), (-0.5 * s - 0.25) / 2, 1e-6) << i;
    EXPECT_NEAR(pr.grad()[i].item<double>(), 0.5 * s / 2, 1e-6) << i;
  }
  EXPECT_FALSE(rc.grad().defined());
  EXPECT_FALSE(rr.grad().defined());
}

// "no negatives": alpha x the per-token NLL of the chosen answers; the rejected ones get no gradient
TEST(DpoLoss, SftLossTypeIsTheChosenNllAlone) {
  auto pc = t({-10.f, -6.f}).requires_grad_(true), pr = t({-20.f, -3.f}).requires_grad_(true);
  const auto rc = t({-12.f, -4.f}), rr = t({-18.f, -6.f}), n = t({5.f, 3.f});
  stic::DpoLossOptions o;
  o.loss_type = "sft";
  o.alpha_norm = "mean";
  o.alpha = 1;
  auto r = stic::dpo_loss(pc, pr, rc, rr, n, o);
  EXPECT_NEAR(r.loss.item<double>(), (10.0 / 5 + 6.0 / 3) / 2, 1e-6);
  r.loss.backward();
  EXPECT_TRUE(torch::allclose(pc.grad(), t({-0.1f, -1.f / 6})));
  EXPECT_FALSE(pr.grad().defined() && pr.grad().abs().sum().item<double>() != 0.0);
  o.alpha = 0;
  EXPECT_THROW(stic::check_dpo_options(o), stic::Error);
}

TEST(DpoLoss, BadOptionsAreNamed) {
  const auto x = t({-1.f});
  for (auto set : std::vector<std::function<void(stic::DpoLossOptions&)>>{
           [](stic::DpoLossOptions& o) { o.beta = 0; }, [](stic::DpoLossOptions& o) { o.alpha_norm = "avg"; },
           [](stic::DpoLossOptions& o) { o.loss_type = "kto"; }, [](stic::DpoLossOptions& o) { o.label_smoothing = 0.5; },
           [](stic::DpoLossOptions& o) { o.loss_type = "ipo"; o.label_smoothing = 0.1; }}) {
    stic::DpoLossOptions o;
    set(o);
    EXPECT_THROW(stic::dpo_loss(x, x, x, x, x, o), stic::Error);
  }
}

}  // namespace
