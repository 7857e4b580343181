// STIC stage 1 (train-dpo): batches, log-probs, losses and LoRA gradients against an independent
// plain-PyTorch + transformers + PEFT implementation (tools/make_dpo_fixtures.py: transformers
// 5.17, PEFT 0.21, fp32 CPU, a non-zero starting adapter so policy != reference), one clipped
// AdamW step against torch.optim, the step-0 identity, precomputed reference == adapter-disabled
// reference, exact resume, and the refusals.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "stic/io/safetensors.h"
#include "stic/model/loaded_model.h"
#include "stic/model/lora.h"
#include "stic/train/dpo.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"

namespace {
namespace fs = std::filesystem;
#define kParity (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/parity")
#define kDpo (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/dpo")
#define kImages (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/images")

std::string tmpdir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("stic_dpo_" + tag + "_" + std::to_string(::getpid()));
  stic::remove_tree(d);
  fs::create_directories(d);
  return d.string();
}

nlohmann::json manifest() { return nlohmann::json::parse(stic::read_text_file(kDpo + "/manifest.json")); }

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm().clamp_min(1e-30)).item<double>();
}

// HF's pixel values for the fixture's pairs
std::map<int64_t, stic::ImageInput> hf_images(stic::SafetensorsFile& f, int n) {
  std::map<int64_t, stic::ImageInput> imgs;
  for (int i = 0; i < n; ++i) {
    stic::ImageInput im;
    im.pixels = f.get("pixel_values_" + std::to_string(i));
    const std::string sk = "image_sizes_" + std::to_string(i);
    if (f.has(sk)) {
      im.orig_h = static_cast<int>(f.get(sk)[0][0].item<int64_t>());
      im.orig_w = static_cast<int>(f.get(sk)[0][1].item<int64_t>());
    }
    imgs[i] = im;
  }
  return imgs;
}

// PEFT's key for a stic parameter name ("language_model.model.layers.0.mlp.down_proj.lora_A.weight")
std::string peft_key(const std::string& stic_param) {
  const size_t at = stic_param.find(".lora_");
  return "base_model.model." + stic::peft_module_name(stic_param.substr(0, at), stic::AdapterKeyStyle::HfV5) +
         stic_param.substr(at);
}

stic::DpoOptions options_for(const nlohmann::json& c, const nlohmann::json& s) {
  stic::DpoOptions o;
  o.template_name = c["template"];
  o.image_dir = kImages;
  o.loss.beta = 0.1;
  o.loss.loss_type = s["loss_type"];
  o.loss.alpha = s["alpha"];
  o.loss.alpha_norm = s["alpha_norm"];
  o.loss.label_smoothing = s["label_smoothing"];
  o.released_rejected_logps = s["released_rejected"];
  return o;
}

// ---------------------------------------------------------------- against HF + PEFT
class DpoVsPeft : public ::testing::TestWithParam<std::string> {};
TEST_P(DpoVsPeft, BatchLogProbsLossesAndGradients) {
  const std::string name = GetParam();
  const auto man = manifest();
  const auto& c = man["cases"][name];
  stic::LoadedModel lm(kParity + "/" + name, stic::LoadOptions{});
  stic::TrainSetupOptions so;
  so.adapter = kDpo + "/start_" + name;
  const stic::TrainSetup setup = stic::setup_training(lm, so);
  lm.model()->eval();  // the fixture ran PEFT in eval mode (no dropout anywhere)
  stic::SafetensorsFile f(kDpo + "/dpo_" + name + ".safetensors");
  auto imgs = hf_images(f, 3);

  const auto& settings = man["settings"];
  // ids and labels of each side before the image is spliced: HF's
  {
    stic::DpoTask task(lm, kDpo + "/dpo_data.json", options_for(c, settings["sigmoid_sum"]));
    ASSERT_EQ(task.pairs().size(), 3u);
    for (size_t i = 0; i < 3; ++i)
      for (const char* side : {"chosen", "rejected"}) {
        auto ours = std::string(side) == "chosen" ? task.pairs()[i].chosen : task.pairs()[i].rejected;
        for (auto& x : ours.ids)
          if (x == lm.placeholder_id()) x = 1000;
        EXPECT_EQ(ours.ids, c["pairs"][i][side]["ids"].get<std::vector<int64_t>>()) << "pair " << i << " " << side;
        EXPECT_EQ(ours.labels, c["pairs"][i][side]["labels"].get<std::vector<int64_t>>()) << "pair " << i << " " << side;
      }
    // the batch: chosen rows then rejected rows, HF's expanded labels exactly
    auto bt = task.build_batch({0, 1, 2}, &imgs);
    ASSERT_EQ(bt.pairs.size(), 3u);
    EXPECT_TRUE(torch::equal(bt.b.labels, f.get("labels")));
    // log-probs: measured <= 8.2e-8 relative (fp32 CPU, 2026-12-04); bound 1e-6
    torch::NoGradGuard ng;
    auto pol = task.logprobs(bt, false);
    auto ref = task.logprobs(bt, true);
    EXPECT_TRUE(torch::equal(pol.chosen_tokens, f.get("chosen_tokens")));
    const double e[4] = {rel(pol.chosen, f.get("policy_chosen")), rel(pol.rejected, f.get("policy_rejected")),
                         rel(ref.chosen, f.get("reference_chosen")), rel(ref.rejected, f.get("reference_rejected"))};
    std::printf("[ dpo ] %s log-probs rel err: policy %.2g %.2g reference %.2g %.2g\n", name.c_str(), e[0], e[1], e[2], e[3]);
    for (double x : e) EXPECT_LT(x, 1e-6);
    // policy != reference: the starting adapter moves the log-probs by far more than the tolerance
    EXPECT_GT(rel(pol.chosen, ref.chosen), 1e-2);
  }
  for (auto it = settings.begin(); it != settings.end(); ++it) {
    const std::string s = it.key();
    stic::DpoTask task(lm, kDpo + "/dpo_data.json", options_for(c, it.value()));
    for (auto& [n, p] : setup.params)
      if (p.grad().defined()) p.mutable_grad().zero_();
    auto bt = task.build_batch({0, 1, 2}, &imgs);
    auto d = task.loss(bt);
    d.loss.backward();
    const auto& want = c["settings"][s];
    for (auto m = want.begin(); m != want.end(); ++m) {
      const double w = m.value(), got = d.metrics.at(m.key());
      // measured <= 3.3e-6 relative (IPO's loss of 127); bound 1e-5
      EXPECT_NEAR(got, w, 1e-5 * std::max(1.0, std::abs(w))) << s << " " << m.key();
    }
    double worst = 0;
    std::string worst_name;
    for (auto& [n, p] : setup.params) {
      const auto g = f.get("grad." + s + "." + peft_key(n));
      const double r = rel(p.grad(), g);
      if (r > worst) worst = r, worst_name = n;
    }
    std::printf("[ dpo ] %s %-12s loss %.7f (PEFT %.7f)  worst LoRA grad rel err %.2g (%s)\n", name.c_str(), s.c_str(),
                d.metrics.at("loss"), want["loss"].get<double>(), worst, worst_name.c_str());
    // gradients: measured <= 5.2e-6 relative per tensor (IPO's large loss the worst); bound 2e-5
    EXPECT_LT(worst, 2e-5) << s;
  }
}
INSTANTIATE_TEST_SUITE_P(Peft, DpoVsPeft, ::testing::Values("llava_llama", "next_mistral"));

// One optimizer step (clip to 1, AdamW lr 1e-2, constant schedule) through the trainer: the
// LoRA weights equal torch.optim's.
TEST(DpoVsPeft, OneClippedAdamWStepEqualsTorchOptim) {
  const std::string name = "next_mistral";
  const auto man = manifest();
  const auto& c = man["cases"][name];
  stic::LoadedModel lm(kParity + "/" + name, stic::LoadOptions{});
  stic::TrainSetupOptions so;
  so.adapter = kDpo + "/start_" + name;
  const stic::TrainSetup setup = stic::setup_training(lm, so);
  lm.model()->eval();
  stic::SafetensorsFile f(kDpo + "/dpo_" + name + ".safetensors");
  auto imgs = hf_images(f, 3);
  stic::DpoTask task(lm, kDpo + "/dpo_data.json", options_for(c, man["settings"]["sigmoid_sum"]));
  stic::TrainConfig tc;
  tc.lr = c["step"]["lr"];
  tc.schedule = "constant";
  tc.warmup_steps = 0;
  tc.batch_size = 3;
  tc.max_steps = 1;
  tc.max_grad_norm = 1.0;
  tc.progress = false;
  double gnorm = -1;
  stic::Trainer tr(tc, setup.params, task.lengths(),
                   [&](const std::vector<int64_t>&) {
                     stic::MicroBatchResult r;
                     auto bt = task.build_batch({0, 1, 2}, &imgs);  // the fixture's order and pixels
                     r.loss = task.loss(bt).loss;
                     r.examples = 3;
                     return r;
                   },
                   [](const std::string&) {});
  tr.set_step_hook([&](int64_t, std::map<std::string, double>&) {
    double s = 0;
    for (auto& [n, p] : setup.params) s += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
    gnorm = std::sqrt(s);  // after clipping: 1
  });
  tr.run();
  EXPECT_NEAR(gnorm, 1.0, 1e-5);
  double worst = 0;
  for (auto& [n, p] : setup.params) worst = std::max(worst, rel(p.detach(), f.get("step." + peft_key(n))));
  std::printf("[ dpo ] one AdamW step: worst LoRA weight rel err %.2g\n", worst);
  // measured 1.6e-6 (the step is ~lr * sign(g) per element, so gradient rounding near eps shows);
  // AdamW without bias correction moves the weights ~3x as far on step 1: error ~0.2
  EXPECT_LT(worst, 5e-6);
}

// ---------------------------------------------------------------- identities and runs
std::string write_pairs(const std::string& dir, int n) {
  const char* imgs[] = {"china.jpg", "flower.jpg", "rocket.jpg", "coffee.png"};
  const char* good[] = {"A building with a red roof.", "A pink flower.", "A rocket.", "A cup of coffee on a table."};
  const char* bad[] = {"Two cats on a sofa.", "A dog in the snow near a red car.", "A boat at sea.", "A cat."};
  std::string s;
  for (int i = 0; i < n; ++i) {
    nlohmann::json j = {{"id", "q" + std::to_string(i)}, {"image", imgs[i % 4]},
                        {"chosen", {{{"role", "user"}, {"content", "<image>\nDescribe the image."}},
                                    {{"role", "assistant"}, {"content", good[i % 4]}}}},
                        {"rejected", {{{"role", "user"}, {"content", "<image>\nDescribe the image."}},
                                      {{"role", "assistant"}, {"content", bad[i % 4]}}}}};
    s += j.dump() + "\n";
  }
  stic::write_file_atomic(dir + "/pairs.jsonl", s);
  return dir + "/pairs.jsonl";
}

std::vector<nlohmann::json> metrics_of(const std::string& dir) {
  std::vector<nlohmann::json> out;
  stic::read_jsonl(dir + "/metrics.jsonl", [&](size_t, const nlohmann::json& j) { out.push_back(j); },
                   [](size_t, const std::string& m) { FAIL() << m; });
  return out;
}

stic::DpoRunOptions run_options(const std::string& data, const std::string& out) {
  stic::DpoRunOptions o;
  o.model = kParity + "/llava_llama";
  o.data = data;
  o.image_dir = kImages;
  o.output_dir = out;
  o.setup.lora.r = 4;
  o.setup.lora.alpha = 8;
  o.train.lr = 5e-3;
  o.train.batch_size = 2;
  o.train.max_steps = 4;
  o.train.warmup_steps = 0;
  o.train.progress = false;
  o.dpo.loss.alpha = 0.0;
  return o;
}

// At step 0 the policy is the reference (a fresh adapter has B = 0): the DPO term is ln 2
// exactly, rewards 0; the first logged step describes that batch.
TEST(Dpo, FirstStepIsLn2AndTheCurvesArePlotted) {
  const auto d = tmpdir("ln2");
  auto o = run_options(write_pairs(d, 4), d + "/out");
  stic::run_dpo(o);
  const auto m = metrics_of(d + "/out");
  ASSERT_EQ(m.size(), 4u);
  EXPECT_NEAR(m[0]["loss"].get<double>(), std::log(2.0), 1e-6);
  EXPECT_EQ(m[0]["rewards/margins"].get<double>(), 0.0);
  EXPECT_EQ(m[0]["rewards/accuracies"].get<double>(), 0.0);
  EXPECT_EQ(m[0]["pairs"].get<int64_t>(), 2);
  EXPECT_TRUE(m[0].contains("pairs_per_s"));
  // training moves the policy: the margin grows and the loss falls below ln 2
  EXPECT_GT(m[3]["rewards/margins"].get<double>(), 0.0);
  EXPECT_LT(m[3]["loss"].get<double>(), std::log(2.0));
  const std::string svg = stic::read_text_file(d + "/out/dpo.svg");
  for (const char* k : {"rewards/margins", "rewards/accuracies", "loss", "<polyline"}) EXPECT_NE(svg.find(k), std::string::npos) << k;
  EXPECT_TRUE(fs::exists(d + "/out/adapter_model.safetensors"));
  stic::remove_tree(d);
}

// The precomputed reference (one pass, cached) trains exactly as the adapter-disabled one.
TEST(Dpo, PrecomputedReferenceGivesTheSameRun) {
  const auto d = tmpdir("precompute");
  const auto data = write_pairs(d, 4);
  auto a = run_options(data, d + "/a");
  a.dpo.loss.alpha = 1.0 / 1024;
  stic::run_dpo(a);
  auto b = a;
  b.output_dir = d + "/b";
  b.precompute_ref = true;
  stic::run_dpo(b);
  const auto ma = metrics_of(d + "/a"), mb = metrics_of(d + "/b");
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i)
    for (const char* k : {"loss", "rewards/chosen", "rewards/rejected", "rewards/margins", "grad_norm"})
      EXPECT_NEAR(ma[i][k].get<double>(), mb[i][k].get<double>(), 1e-5 * std::max(1.0, std::abs(ma[i][k].get<double>())))
          << "step " << i + 1 << " " << k;
  // the cache holds one line per pair and is reused by a second run (nothing recomputed)
  int lines = 0;
  stic::read_jsonl(d + "/b/reference_logps.jsonl", [&](size_t, const nlohmann::json&) { ++lines; }, [](size_t, const std::string&) {});
  EXPECT_EQ(lines, 4);
  stic::remove_tree(d);
}

// A run stopped after step 2 and resumed ends with the weights and metrics of an uninterrupted
// run, bit for bit (CPU).
TEST(Dpo, ResumeIsExact) {
  const auto d = tmpdir("resume");
  const auto data = write_pairs(d, 4);
  auto a = run_options(data, d + "/a");
  a.train.max_steps = 4;
  stic::run_dpo(a);
  auto b = run_options(data, d + "/b");
  b.train.stop_after = 2;
  stic::run_dpo(b);
  b.train.stop_after = -1;
  b.train.resume = true;
  stic::run_dpo(b);
  EXPECT_EQ(stic::read_text_file(d + "/a/adapter_model.safetensors"), stic::read_text_file(d + "/b/adapter_model.safetensors"));
  const auto ma = metrics_of(d + "/a"), mb = metrics_of(d + "/b");
  ASSERT_EQ(ma.size(), mb.size());
  for (size_t i = 0; i < ma.size(); ++i)
    for (const char* k : {"loss", "rewards/margins", "grad_norm", "logps/chosen"})
      EXPECT_EQ(ma[i][k].get<double>(), mb[i][k].get<double>()) << "step " << i + 1 << " " << k;
  stic::remove_tree(d);
}

// The released trainer's rejected log-prob by hand: per position, the log-prob of the most
// likely token other than the label.
TEST(Dpo, ReleasedRejectedRuleByHand) {
  // one sequence, 3 positions, vocabulary 4; labels at positions 1 and 2
  auto logits = torch::tensor({{{2.0, 1.0, 0.5, 0.0}, {0.0, 3.0, 1.0, 2.5}, {9.0, 9.0, 9.0, 9.0}}}, torch::kFloat32);
  auto labels = torch::tensor({{-100L, 0L, 1L}}, torch::kInt64);
  // position 0 predicts label 0 = its top-1 -> the top-2 (token 1); position 1 predicts label 1 =
  // its top-1 -> the top-2 (token 3)
  auto ls0 = torch::log_softmax(logits[0][0], 0), ls1 = torch::log_softmax(logits[0][1], 0);
  const double want_other = ls0[1].item<double>() + ls1[3].item<double>();
  const double want_label = ls0[0].item<double>() + ls1[1].item<double>();
  auto o = stic::sequence_logprobs(logits, labels, stic::LogProbRule::BestOtherToken);
  auto l = stic::sequence_logprobs(logits, labels);
  EXPECT_NEAR(o.sum[0].item<double>(), want_other, 1e-6);
  EXPECT_NEAR(l.sum[0].item<double>(), want_label, 1e-6);
  EXPECT_EQ(o.count[0].item<int64_t>(), 2);
  // a label that is not the top-1 takes the top-1
  auto labels2 = torch::tensor({{-100L, 2L, 2L}}, torch::kInt64);
  EXPECT_NEAR(stic::sequence_logprobs(logits, labels2, stic::LogProbRule::BestOtherToken).sum[0].item<double>(),
              ls0[0].item<double>() + ls1[1].item<double>(), 1e-6);
}

// Bad pairs are counted per reason and named; the run goes on. Refusals name the cause.
TEST(Dpo, BadPairsAndRefusals) {
  const auto d = tmpdir("bad");
  std::string s = stic::read_text_file(write_pairs(d, 2));
  auto pair = [](const std::string& id, const std::string& image, const std::string& c, const std::string& r,
                 const std::string& prompt = "<image>\nDescribe.") {
    return nlohmann::json({{"id", id}, {"image", image},
                           {"chosen", {{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", c}}}},
                           {"rejected", {{{"role", "user"}, {"content", prompt}}, {{"role", "assistant"}, {"content", r}}}}})
               .dump() +
           "\n";
  };
  s += pair("empty", "china.jpg", "", "x");
  s += pair("same", "china.jpg", "The same.", "The same.");
  s += pair("missing", "nope.jpg", "a", "b");
  s += pair("corrupt", "truncated.jpg", "a", "b");
  s += pair("nomarker", "china.jpg", "a b", "c d", "Describe.");
  s += "{\"id\": \"broken\", \"chosen\": 3}\n";
  std::string long_answer;
  for (int i = 0; i < 400; ++i) long_answer += "word ";
  s += pair("long", "china.jpg", "short", long_answer);
  stic::write_file_atomic(d + "/pairs.jsonl", s);
  auto o = run_options(d + "/pairs.jsonl", d + "/out");
  o.dpo.max_length = 200;  // the image and prompt fit; the long answer is cut
  o.train.batch_size = 9;
  o.train.max_steps = 1;
  const auto r = stic::run_dpo(o);
  EXPECT_NE(r.data_summary.find("empty_side 1"), std::string::npos) << r.data_summary;
  EXPECT_NE(r.data_summary.find("image_missing 1"), std::string::npos) << r.data_summary;
  EXPECT_NE(r.data_summary.find("image_corrupt 1"), std::string::npos) << r.data_summary;
  EXPECT_NE(r.data_summary.find("bad_record 1"), std::string::npos) << r.data_summary;
  EXPECT_NE(r.data_summary.find("1 identical pairs kept"), std::string::npos) << r.data_summary;
  EXPECT_NE(r.data_summary.find("1 pairs without <image> trained text-only"), std::string::npos) << r.data_summary;
  EXPECT_NE(r.data_summary.find("truncated 1 sides"), std::string::npos) << r.data_summary;
  const std::string errors = stic::read_text_file(d + "/out/errors.jsonl");
  for (const char* id : {"\"empty\"", "\"missing\"", "\"corrupt\""}) EXPECT_NE(errors.find(id), std::string::npos) << id;
  EXPECT_NE(errors.find("pairs.jsonl: record 2"), std::string::npos);  // named by file and record
  const auto m = metrics_of(d + "/out");
  ASSERT_EQ(m.size(), 1u);
  EXPECT_TRUE(std::isfinite(m[0]["loss"].get<double>()));
  EXPECT_EQ(m[0]["pairs"].get<int64_t>(), 5);  // 2 + same + nomarker + long (none of the bad)

  // --full without --precompute-ref: refused; an adapter with modules_to_save: refused
  auto full = run_options(d + "/pairs.jsonl", d + "/full");
  full.setup.full = true;
  EXPECT_THROW(
      try { stic::run_dpo(full); } catch (const stic::Error& e) {
        EXPECT_NE(std::string(e.what()).find("--precompute-ref"), std::string::npos) << e.what();
        throw;
      },
      stic::Error);
  auto mts = run_options(d + "/pairs.jsonl", d + "/mts");
  mts.setup.train_projector = true;
  EXPECT_THROW(
      try { stic::run_dpo(mts); } catch (const stic::Error& e) {
        EXPECT_NE(std::string(e.what()).find("modules_to_save"), std::string::npos) << e.what();
        throw;
      },
      stic::Error);
  stic::remove_tree(d);
}

}  // namespace
