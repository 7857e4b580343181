// Training: label masks (hand-derived, LLaVA's rules), SFT loss vs HF, AdamW/schedules,
// exact resume, bad input, non-finite loss.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "stic/model/loaded_model.h"
#include "stic/io/safetensors.h"
#include "stic/model/lora.h"
#include "stic/train/cell_loss.h"
#include "stic/train/setup.h"
#include "stic/train/sft.h"
#include "stic/train/trainer.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace {
namespace fs = std::filesystem;
#define kParity (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/parity")
#define kPeft (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/peft")
#define kImages (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/images")

std::string tmpdir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("stic_train_" + tag + "_" + std::to_string(::getpid()));
  stic::remove_tree(d);
  fs::create_directories(d);
  return d.string();
}

stic::LoadedModel& runner(const std::string& name) {
  static std::map<std::string, std::unique_ptr<stic::LoadedModel>> cache;
  auto& r = cache[name];
  if (!r) r = std::make_unique<stic::LoadedModel>(kParity + "/" + name, stic::LoadOptions{});
  return *r;
}

// ---------------------------------------------------------------- label masks
// LLaVA's preprocess_v1 / preprocess_llama_2 rule, written out independently of stic's span
// masking: split the rendered text on "</s>" into rounds; each round's instruction is
// round.split(sep)[0] + sep (sep = " ASSISTANT: " or "[/INST] "); cur = 1 (BOS masked);
// per round: mask [cur, cur + len(tok(instr)) - 2), cur += len(tok(round)); mask [cur:].
// (len - 2: BOS, and the lone "▁" the instruction's trailing space tokenizes to; the round's
// BOS stands in for its "</s>".) Valid for legacy tokenizers, where text after "</s>" is
// tokenized as if it stood alone.
std::vector<int64_t> llava_rule(const stic::Tokenizer& tok, const std::string& text, const std::string& sep,
                                const std::vector<int64_t>& ids) {
  std::vector<int64_t> lab = ids;
  size_t cur = 1;
  lab[0] = -100;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find("</s>", start);
    std::string rou = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? text.size() : end + 4;
    if (rou.empty()) break;
    size_t p = rou.find(sep);
    if (p == std::string::npos) break;
    const std::string instr = rou.substr(0, p) + sep;
    const size_t il = tok.encode(instr, true).size() - 2, rl = tok.encode(rou, true).size();
    for (size_t k = cur; k < cur + il && k < lab.size(); ++k) lab[k] = -100;
    cur += rl;
  }
  for (size_t k = cur; k < lab.size(); ++k) lab[k] = -100;
  return lab;
}

std::vector<stic::Turn> sample_turns() {
  return {{"user", "<image>\nWhat is shown in this image?"}, {"assistant", "A large building with a red roof."},
          {"user", "What color is the sky?"}, {"assistant", "The sky is blue and clear."},
          {"user", "Anything else?"}, {"assistant", "No."}};
}

void check_mask(stic::TemplateKind kind, const std::string& sep, const std::string& before_answer, bool legacy) {
  stic::Tokenizer tok = runner("llava_llama").tokenizer();
  tok.set_legacy(legacy);
  auto turns = sample_turns();
  auto enc = stic::encode_chat(tok, kind, turns);
  auto rc = stic::render_chat(kind, turns);
  // Hand-checkable structure: exactly 3 runs of labels; each run decodes to the answer and its
  // end of turn; the token before each run is the end of the assistant tag; BOS/system masked.
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t i = 0; i < enc.labels.size(); ++i) {
    if (enc.labels[i] == -100) continue;
    EXPECT_EQ(enc.labels[i], enc.ids[i]);
    if (runs.empty() || runs.back().second != i) runs.emplace_back(i, i + 1);
    else runs.back().second = i + 1;
  }
  ASSERT_EQ(runs.size(), 3u);
  const std::vector<std::string> answers{"A large building with a red roof.", "The sky is blue and clear.", "No."};
  for (size_t r = 0; r < 3; ++r) {
    std::vector<int32_t> span(enc.ids.begin() + runs[r].first, enc.ids.begin() + runs[r].second);
    std::string s = tok.decode(span, /*skip_special=*/false);
    // the separator space before the answer belongs to its first token ("▁A")
    const std::string want = " " + answers[r] + (kind == stic::TemplateKind::MistralInstruct ? " </s>" : "</s>");
    EXPECT_EQ(s, want) << "run " << r;
    std::string prev = tok.decode({static_cast<int32_t>(enc.ids[runs[r].first - 1])}, false);
    EXPECT_EQ(prev.back(), before_answer.back()) << "token before answer " << r << ": '" << prev << "'";
  }
  if (legacy) {
    // LLaVA's own arithmetic gives the same mask
    EXPECT_EQ(enc.labels, llava_rule(tok, rc.text, sep, enc.ids));
  }
}

TEST(LabelMask, VicunaV1MultiTurnLegacy) { check_mask(stic::TemplateKind::VicunaV1, " ASSISTANT: ", ":", true); }
TEST(LabelMask, VicunaV1MultiTurnNonLegacy) { check_mask(stic::TemplateKind::VicunaV1, " ASSISTANT: ", ":", false); }
TEST(LabelMask, MistralInstructMultiTurnLegacy) {
  check_mask(stic::TemplateKind::MistralInstruct, "[/INST] ", "]", true);
}
TEST(LabelMask, MistralInstructMultiTurnNonLegacy) {
  check_mask(stic::TemplateKind::MistralInstruct, "[/INST] ", "]", false);
}

// A literal, hand-written case: "USER: hi ASSISTANT: ok</s>" with the llava_llama tokenizer.
TEST(LabelMask, HandWrittenTinyCase) {
  const auto& tok = runner("llava_llama").tokenizer();
  auto enc = stic::encode_chat(tok, stic::TemplateKind::Raw, {{"user", "Q: hi A:"}, {"assistant", " ok"}});
  // raw: "Q: hi A: ok</s>" -> labels exactly on the tokens of " ok" and "</s>"
  auto ok = tok.encode_piece(" ok", false);
  std::vector<int64_t> expect(enc.ids.size(), -100);
  const size_t n = ok.size() + 1;
  for (size_t i = enc.ids.size() - n; i < enc.ids.size(); ++i) expect[i] = enc.ids[i];
  EXPECT_EQ(enc.labels, expect);
  EXPECT_EQ(enc.ids.back(), tok.eos_id());
}

// ---------------------------------------------------------------- SFT loss == HF
class SftVsHf : public ::testing::TestWithParam<std::string> {};
TEST_P(SftVsHf, IdsLabelsAndLoss) {
  const std::string name = GetParam();
  auto& r = runner(name);
  auto man = nlohmann::json::parse(stic::read_text_file(kPeft + "/manifest.json"));
  const auto& info = man["sft"][name];
  stic::SftOptions so;
  so.template_name = info["template"];
  so.image_dir = kImages;
  stic::SftTask task(r, kPeft + "/sft_data.json", so);
  ASSERT_EQ(task.examples().size(), 2u);
  stic::SafetensorsFile f(kPeft + "/sft_" + name + ".safetensors");
  // ids and labels per sample (HF's, image collapsed to one placeholder)
  for (size_t i = 0; i < 2; ++i) {
    auto ids = info["samples"][i]["ids"].get<std::vector<int64_t>>();
    auto labels = info["samples"][i]["labels"].get<std::vector<int64_t>>();
    auto ours = task.examples()[i].chat;
    for (auto& x : ours.ids)
      if (x == r.placeholder_id()) x = 1000;
    EXPECT_EQ(ours.ids, ids) << "sample " << i;
    EXPECT_EQ(ours.labels, labels) << "sample " << i;
  }
  const double hf = f.get("loss").item<double>();
  torch::NoGradGuard ng;
  // with HF's pixel values: the loss must agree to fp32 rounding
  std::map<int64_t, stic::ImageInput> imgs;
  for (int64_t i = 0; i < 2; ++i) {
    stic::ImageInput im;
    im.pixels = f.get("pixel_values_" + std::to_string(i));
    const std::string sk = "image_sizes_" + std::to_string(i);
    if (f.has(sk)) {
      im.orig_h = static_cast<int>(f.get(sk)[0][0].item<int64_t>());
      im.orig_w = static_cast<int>(f.get(sk)[0][1].item<int64_t>());
    }
    imgs[i] = im;
  }
  auto b = task.build_batch({0, 1}, &imgs);
  ASSERT_EQ(b.used.size(), 2u);
  auto hf_labels = f.get("labels");
  ASSERT_EQ(b.labels.sizes(), hf_labels.sizes());
  EXPECT_TRUE(torch::equal(b.labels, hf_labels));
  const double ours = task.loss(b).item<double>();
  std::printf("[ sft ] %s: loss stic %.7f HF %.7f (rel %.2g)\n", name.c_str(), ours, hf, std::abs(ours - hf) / hf);
  EXPECT_LT(std::abs(ours - hf) / hf, 1e-5);
  // our own image pipeline: pixels within one level of HF's
  auto b2 = task.build_batch({0, 1});
  EXPECT_LT(std::abs(task.loss(b2).item<double>() - hf) / hf, 1e-3);
}
INSTANTIATE_TEST_SUITE_P(HF, SftVsHf, ::testing::Values("llava_llama", "next_mistral"));

// ---------------------------------------------------------------- optimizer and schedules
TEST(Optim, SchedulesMatchHfFormulas) {
  using stic::Schedule;
  EXPECT_EQ(stic::warmup_steps_from_ratio(0.03, 760), 23);  // ceil(22.8)
  EXPECT_DOUBLE_EQ(stic::lr_multiplier(Schedule::Cosine, 0, 2, 10), 0.0);
  EXPECT_DOUBLE_EQ(stic::lr_multiplier(Schedule::Cosine, 1, 2, 10), 0.5);
  EXPECT_DOUBLE_EQ(stic::lr_multiplier(Schedule::Cosine, 2, 2, 10), 1.0);
  EXPECT_NEAR(stic::lr_multiplier(Schedule::Cosine, 6, 2, 10), 0.5, 1e-12);
  EXPECT_NEAR(stic::lr_multiplier(Schedule::Cosine, 4, 2, 10), 0.5 * (1 + std::cos(M_PI * 0.25)), 1e-12);
  EXPECT_NEAR(stic::lr_multiplier(Schedule::Linear, 6, 2, 10), 0.5, 1e-12);
  EXPECT_DOUBLE_EQ(stic::lr_multiplier(Schedule::Constant, 9, 2, 10), 1.0);
}

TEST(Optim, AdamWMatchesClosedFormAndKeepsFp32Master) {
  // two steps by hand (torch.optim.AdamW arithmetic), fp32 and bf16 (master) parameters
  for (auto dt : {torch::kFloat32, torch::kBFloat16}) {
    auto p = torch::tensor({1.0f, -2.0f}).to(dt).set_requires_grad(true);
    stic::AdamWOptions o;
    o.weight_decay = 0.1;
    stic::AdamW opt({{"p", p}}, o);
    double w[2] = {1.0, -2.0}, m[2] = {0, 0}, v[2] = {0, 0};
    const double g[2][2] = {{0.5, -1.0}, {0.25, 2.0}}, lr = 0.01;
    for (int t = 1; t <= 2; ++t) {
      p.mutable_grad() = torch::tensor({static_cast<float>(g[t - 1][0]), static_cast<float>(g[t - 1][1])}).to(dt);
      opt.step(lr);
      for (int i = 0; i < 2; ++i) {
        w[i] *= 1 - lr * o.weight_decay;
        m[i] = 0.9 * m[i] + 0.1 * g[t - 1][i];
        v[i] = 0.999 * v[i] + 0.001 * g[t - 1][i] * g[t - 1][i];
        w[i] -= lr / (1 - std::pow(0.9, t)) * m[i] / (std::sqrt(v[i]) / std::sqrt(1 - std::pow(0.999, t)) + 1e-8);
      }
    }
    auto st = opt.state();
    auto master = dt == torch::kFloat32 ? p.detach() : st.at("master/p");
    EXPECT_EQ(master.scalar_type(), torch::kFloat32);
    EXPECT_NEAR(master[0].item<double>(), w[0], 1e-6);
    EXPECT_NEAR(master[1].item<double>(), w[1], 1e-6);
    if (dt == torch::kBFloat16) {
      EXPECT_TRUE(torch::equal(p.detach(), master.to(torch::kBFloat16)));
    }
  }
}

TEST(Optim, ClipGradNorm) {
  auto a = torch::zeros({2}).set_requires_grad(true), b = torch::zeros({1}).set_requires_grad(true);
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  EXPECT_NEAR(stic::clip_grad_norm({{"a", a}, {"b", b}}, 1.0), 5.0, 1e-9);
  EXPECT_NEAR(a.grad()[0].item<double>(), 3.0 / (5.0 + 1e-6), 1e-6);
}

// ---------------------------------------------------------------- trainer on the tiny model
std::string write_data(const std::string& dir, int copies) {
  auto recs = nlohmann::json::parse(stic::read_text_file(kPeft + "/sft_data.json"));
  nlohmann::json out = nlohmann::json::array();
  for (int c = 0; c < copies; ++c)
    for (auto r : recs) {
      r["id"] = r["id"].get<std::string>() + std::to_string(c);
      out.push_back(r);
    }
  const std::string p = dir + "/data.json";
  std::ofstream(p) << out.dump();
  return p;
}

struct Run {
  std::vector<std::pair<std::string, torch::Tensor>> params;
  stic::TrainResult result;
};

// Trains LoRA (dropout on: the RNG state matters) on llava_llama with a fresh model each time.
Run train(const std::string& out, const std::string& data, int64_t stop_after, bool resume) {
  stic::LoadedModel r(kParity + "/llava_llama", stic::LoadOptions{});
  stic::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dropout = 0.1;
  torch::manual_seed(5);  // LoRA A init
  stic::apply_lora(r.model(), lc);
  auto params = stic::set_trainable(r.model(), lc, false);
  r.model()->train();
  stic::SftOptions so;
  so.template_name = "vicuna_v1";
  so.image_dir = kImages;
  stic::SftTask task(r, data, so);
  stic::TrainConfig tc;
  tc.output_dir = out;
  tc.lr = 1e-2;
  tc.batch_size = 2;
  tc.grad_accum = 2;
  tc.max_steps = 4;
  tc.warmup_ratio = 0.25;
  tc.save_every = 1;
  tc.stop_after = stop_after;
  tc.resume = resume;
  tc.progress = false;
  tc.group_by_length = true;
  stic::Trainer t(tc, params, task.lengths(), [&](const std::vector<int64_t>& i) { return task.micro(i); },
                  [&](const std::string& d) { stic::save_adapter(r.model(), lc, d); });
  Run res;
  res.result = t.run();
  for (auto& [n, p] : params) res.params.emplace_back(n, p.detach().clone());
  return res;
}

TEST(Trainer, ResumeIsExact) {
  const std::string d = tmpdir("resume");
  const std::string data = write_data(d, 3);  // 6 records: 1.5 epochs over 4 steps of 4
  auto straight = train(d + "/a", data, -1, false);
  EXPECT_EQ(straight.result.steps, 4);
  auto first = train(d + "/b", data, 2, false);
  EXPECT_TRUE(first.result.stopped_early);
  EXPECT_EQ(stic::read_text_file(d + "/b/latest"), "checkpoint-2\n");
  auto resumed = train(d + "/b", data, -1, true);
  EXPECT_EQ(resumed.result.steps, 4);
  ASSERT_EQ(straight.params.size(), resumed.params.size());
  double moved = 0;
  for (size_t i = 0; i < straight.params.size(); ++i) {
    EXPECT_TRUE(torch::equal(straight.params[i].second, resumed.params[i].second)) << straight.params[i].first;
    moved += (straight.params[i].second - first.params[i].second).abs().sum().item<double>();
  }
  EXPECT_GT(moved, 0.0);  // steps 3-4 changed the weights
  // metrics: one line per step, steps 1..4, no duplicate from the interrupted run
  std::ifstream in(d + "/b/metrics.jsonl");
  std::string line;
  std::vector<int64_t> steps;
  while (std::getline(in, line)) steps.push_back(nlohmann::json::parse(line)["step"]);
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4}));
  // the final checkpoint's adapter loads and equals the trained weights
  auto fresh = stic::load_llava(kParity + "/llava_llama", stic::LoadOptions{});
  stic::load_adapter(fresh, d + "/b/checkpoint-4");
  std::map<std::string, torch::Tensor> got;
  for (auto& p : fresh->named_parameters()) got[p.key()] = p.value();
  for (auto& [n, p] : resumed.params) EXPECT_TRUE(torch::equal(got.at(n), p)) << n;
  stic::remove_tree(d);
}

// One step of two accumulated micro-batches: the gradient is the mean of the micro-batches'
// gradients (each loss divided by grad_accum), as HF's trainer does. Example e's loss is
// (e + 1) * sum(w), so the step's gradient is (1 + 2) / 2 per weight whatever the order, and the
// logged (unclipped) grad norm is 1.5 * sqrt(3); without the division it would be twice that.
TEST(Trainer, GradientAccumulationAveragesTheMicroBatches) {
  const std::string d = tmpdir("accum");
  auto w = torch::tensor({1.0f, 2.0f, 3.0f}).set_requires_grad(true);
  stic::TrainConfig tc;
  tc.output_dir = d;
  tc.max_steps = 1;
  tc.batch_size = 1;
  tc.grad_accum = 2;
  tc.max_grad_norm = 0;  // report the norm, clip nothing
  tc.progress = false;
  tc.lr = 0.0;
  stic::Trainer t(tc, {{"w", w}}, {1, 1}, [&](const std::vector<int64_t>& idx) {
        stic::MicroBatchResult r;
        r.loss = static_cast<double>(idx.at(0) + 1) * w.sum();
        r.tokens = 1;
        r.examples = 1;
        return r;
      }, [](const std::string&) {});
  t.run();
  nlohmann::json last;
  std::ifstream in(d + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) last = nlohmann::json::parse(line);
  EXPECT_NEAR(last["grad_norm"].get<double>(), 1.5 * std::sqrt(3.0), 1e-6);
  EXPECT_NEAR(last["loss"].get<double>(), (6.0 * 1 + 6.0 * 2) / 2, 1e-6);  // the micro-batches' mean loss
  stic::remove_tree(d);
}

TEST(Trainer, NonFiniteLossStopsAndKeepsLastGoodCheckpoint) {
  const std::string d = tmpdir("nan");
  auto w = torch::ones({3}).set_requires_grad(true);
  stic::TrainConfig tc;
  tc.output_dir = d;
  tc.max_steps = 5;
  tc.save_every = 1;
  tc.progress = false;
  tc.lr = 0.1;
  int calls = 0;
  torch::Tensor at_step2;
  stic::Trainer t(tc, {{"w", w}}, {1, 1, 1, 1}, [&](const std::vector<int64_t>&) {
        stic::MicroBatchResult r;
        ++calls;
        if (calls == 2) at_step2 = w.detach().clone();  // before step 2's update... recorded below
        r.loss = calls == 3 ? (w * std::nan("")).sum() : (w * w).sum();
        r.tokens = 1;
        return r;
      }, [](const std::string&) {});
  try {
    t.run();
    ADD_FAILURE() << "expected a stop";
  } catch (const stic::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("non-finite loss"), std::string::npos) << m;
    EXPECT_NE(m.find("step 3"), std::string::npos) << m;
    EXPECT_NE(m.find("checkpoint-2"), std::string::npos) << m;
  }
  EXPECT_EQ(stic::read_text_file(d + "/latest"), "checkpoint-2\n");
  stic::SafetensorsFile st(d + "/checkpoint-2/trainer_state.safetensors");
  EXPECT_TRUE(torch::equal(st.get("param/w"), w.detach()));  // the NaN step was not applied
  EXPECT_TRUE(std::isfinite(w.sum().item<double>()));
  EXPECT_FALSE(fs::exists(d + "/checkpoint-3"));
  stic::remove_tree(d);
}

TEST(Trainer, BadInputIsSkippedCountedAndSummarised) {
  const std::string d = tmpdir("bad");
  fs::copy_file(kImages + "/china.jpg", d + "/ok.jpg");
  std::ofstream(d + "/corrupt.jpg") << "\xff\xd8\xff\xe0 this is not a jpeg at all";
  const std::string long_answer = [] {
    std::string s;
    for (int i = 0; i < 60; ++i) s += "word" + std::to_string(i) + " ";
    return s;
  }();
  nlohmann::json recs = nlohmann::json::array({
      {{"id", "good"}, {"image", "ok.jpg"}, {"conversations", {{{"from", "human"}, {"value", "<image>\nWhat?"}}, {{"from", "gpt"}, {"value", "A city."}}}}},
      {{"id", "noanswer"}, {"image", "ok.jpg"}, {"conversations", {{{"from", "human"}, {"value", "<image>\nWhat?"}}}}},
      {{"id", "nofile"}, {"conversations", {{{"from", "human"}, {"value", "<image>\nWhat?"}}, {{"from", "gpt"}, {"value", "X."}}}}},
      {{"id", "missing"}, {"image", "nope.jpg"}, {"conversations", {{{"from", "human"}, {"value", "What?"}}, {{"from", "gpt"}, {"value", "X."}}}}},
      {{"id", "corrupt"}, {"image", "corrupt.jpg"}, {"conversations", {{{"from", "human"}, {"value", "What?"}}, {{"from", "gpt"}, {"value", "X."}}}}},
      {{"id", "long"}, {"image", "ok.jpg"}, {"conversations", {{{"from", "human"}, {"value", "What?"}}, {{"from", "gpt"}, {"value", long_answer}}}}},
      {{"id", "text"}, {"conversations", {{{"from", "human"}, {"value", "Hi?"}}, {{"from", "gpt"}, {"value", "Hello."}}}}},
  });
  std::ofstream(d + "/data.json") << recs.dump();
  stic::LoadedModel own(kParity + "/llava_llama", stic::LoadOptions{});  // its own: a LoRA is attached below
  auto& r = own;
  stic::SftOptions so;
  so.template_name = "vicuna_v1";
  so.image_dir = d;
  so.max_length = 200;  // 64 image tokens + ~90 prompt tokens: the long answer is cut
  so.errors_path = d + "/errors.jsonl";
  stic::SftTask task(r, d + "/data.json", so);
  EXPECT_EQ(task.examples().size(), 4u);  // good, corrupt (found later), long, text
  stic::TrainConfig tc;
  tc.output_dir = d + "/out";
  tc.max_steps = 2;
  tc.batch_size = 4;
  tc.progress = false;
  auto lora = stic::LoraConfig{};
  stic::apply_lora(r.model(), lora);
  auto params = stic::set_trainable(r.model(), lora, false);
  stic::Trainer t(tc, params, task.lengths(), [&](const std::vector<int64_t>& i) { return task.micro(i); },
                  [](const std::string&) {});
  auto res = t.run();
  stic::detach_all_lora(r.model());
  EXPECT_EQ(res.steps, 2);
  EXPECT_TRUE(std::isfinite(res.last_loss));
  const auto& c = task.counts();
  EXPECT_EQ(c.at("no_assistant_turn"), 1);
  EXPECT_EQ(c.at("image_without_file"), 1);
  EXPECT_EQ(c.at("image_missing"), 1);
  EXPECT_EQ(c.at("image_corrupt"), 1);  // counted once although visited twice
  EXPECT_EQ(c.at("truncated_records"), 1);
  EXPECT_GT(c.at("truncated_tokens"), 0);
  auto b = task.build_batch({0, 1, 2, 3});
  EXPECT_EQ(b.used.size(), 3u);
  for (int64_t i = 0; i < b.labels.size(0); ++i) {
    EXPECT_GT((b.labels[i] != -100).sum().item<int64_t>(), 0);
  }
  EXPECT_LE(b.embeds.size(1), 200);
  // one line per skipped record in errors.jsonl, located
  std::ifstream in(d + "/errors.jsonl");
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    EXPECT_NE(line.find("record"), std::string::npos);
  }
  EXPECT_EQ(n, 4);
  EXPECT_NE(task.summary().find("skipped 4"), std::string::npos) << task.summary();
  std::printf("[ sft ] %s\n", task.summary().c_str());
  stic::remove_tree(d);
}

}  // namespace

// LLaVA's separate projector / vision-tower learning rates: a parameter's lr is scaled.
TEST(Optim, PerParameterLrScale) {
  auto a = torch::zeros({1}).set_requires_grad(true), b = torch::zeros({1}).set_requires_grad(true),
       c = torch::zeros({1}).set_requires_grad(true);
  stic::AdamW opt({{"a", a}, {"b", b}, {"c", c}}, stic::AdamWOptions{});
  opt.set_lr_scale(1, 3.0);
  opt.set_lr_scale(2, 0.0);
  for (auto* p : {&a, &b, &c}) p->mutable_grad() = torch::tensor({0.5f});
  opt.step(0.01);  // first AdamW step moves by lr * g / (|g| + eps') = -lr
  EXPECT_NEAR(a.item<double>(), -0.01, 1e-6);
  EXPECT_NEAR(b.item<double>(), -0.03, 1e-6);
  EXPECT_EQ(c.item<double>(), 0.0);
}

// train-vision's objective against values derived by hand: three cells (two occupied), shape
// and colour classes {empty, 1, 2}; and a batch without an occupied cell stays finite.
TEST(CellLoss, HandDerived) {
  const double l2 = std::log(2.0), l3 = std::log(3.0);
  const auto shape_logits = torch::tensor({{0.0, l2, 0.0}, {2.0, 0.0, 0.0}, {-1.0, 0.0, 0.0}});
  const auto color_logits = torch::tensor({{0.0, 0.0, l3}, {5.0, -3.0, 1.0}, {0.0, 0.0, 0.0}});
  const auto shape = torch::tensor({1, 0, 2}, torch::kInt64), color = torch::tensor({2, 0, 1}, torch::kInt64);
  // cell 0: softmax shape (1, 2, 1)/4 -> -ln(2/4); colour (1, 1, 3)/5 -> -ln(3/5)
  // cell 2: shape (e^-1, 1, 1) -> ln(2 + e^-1); colour uniform -> ln 3 (cell 1 is empty: no CE)
  // "empty" logit (column 0) vs target (0, 1, 0): softplus(0), softplus(-2), softplus(-1)
  const double ce_shape = (l2 + std::log(2.0 + std::exp(-1.0))) / 2;
  const double ce_color = (std::log(5.0 / 3.0) + l3) / 2;
  const double bce = (l2 + std::log1p(std::exp(-2.0)) + std::log1p(std::exp(-1.0))) / 3;
  EXPECT_NEAR(stic::cell_loss(shape_logits.to(torch::kFloat32), color_logits.to(torch::kFloat32), shape, color).item<double>(),
              ce_shape + ce_color + bce, 1e-6);
  const auto empty = stic::cell_loss(shape_logits.narrow(0, 1, 1).to(torch::kFloat32),
                                     color_logits.narrow(0, 1, 1).to(torch::kFloat32), shape.narrow(0, 1, 1),
                                     color.narrow(0, 1, 1));
  EXPECT_NEAR(empty.item<double>(), std::log1p(std::exp(-2.0)), 1e-6);
}

// sort_within_step: each optimizer step (grad_accum micro-batches, counted across epochs) holds
// the same examples as without it, in order of decreasing length — also the steps that span two
// epochs (10 micro-batches per epoch, 3 per step), sorted in their two parts; every epoch is still
// a permutation.
TEST(Trainer, SortWithinStepKeepsEachStepsExamples) {
  std::vector<int64_t> lengths;
  for (int i = 0; i < 37; ++i) lengths.push_back((i * 7919) % 101 + 1);  // 37 records: a short last micro-batch
  auto order = [&](bool sort) {
    stic::TrainConfig tc;
    tc.batch_size = 4;
    tc.grad_accum = 3;
    tc.max_steps = 10;
    tc.seed = 5;
    tc.sort_within_step = sort;
    auto w = torch::zeros({1}).set_requires_grad(true);
    stic::Trainer t(tc, {{"w", w}}, lengths, [](const std::vector<int64_t>&) { return stic::MicroBatchResult{}; },
                    [](const std::string&) {});
    std::vector<std::vector<int64_t>> micro;
    for (int64_t m = 0; m < 3 * t.micro_batches_per_epoch(); ++m) micro.push_back(t.micro_batch(m));
    return micro;
  };
  const auto plain = order(false), sorted = order(true);
  ASSERT_EQ(plain.size(), 30u);  // 3 epochs of ceil(37 / 4) micro-batches
  ASSERT_EQ(sorted.size(), plain.size());
  bool reordered = false;
  int spanning = 0;
  for (size_t s = 0; s < plain.size(); s += 3) {  // one optimizer step = micro-batches s, s+1, s+2
    std::map<size_t, std::pair<std::vector<int64_t>, std::vector<int64_t>>> parts;  // epoch -> (plain, sorted)
    for (size_t m = s; m < s + 3; ++m) {
      auto& [a, b] = parts[m / 10];
      a.insert(a.end(), plain[m].begin(), plain[m].end());
      b.insert(b.end(), sorted[m].begin(), sorted[m].end());
    }
    spanning += parts.size() > 1;
    for (auto& [epoch, ab] : parts) {
      auto& [a, b] = ab;
      reordered |= a != b;
      for (size_t i = 1; i < b.size(); ++i) EXPECT_GE(lengths[b[i - 1]], lengths[b[i]]) << "step " << s / 3 << ", epoch " << epoch;
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      EXPECT_EQ(a, b) << "step " << s / 3 << " holds other examples";
    }
  }
  EXPECT_TRUE(reordered);
  EXPECT_EQ(spanning, 2);  // the steps of micro-batches 9-11 and 18-20
  for (size_t e = 0; e < 3; ++e) {
    std::vector<int64_t> all;
    for (size_t m = e * 10; m < (e + 1) * 10; ++m) all.insert(all.end(), sorted[m].begin(), sorted[m].end());
    std::sort(all.begin(), all.end());
    ASSERT_EQ(all.size(), 37u);
    for (int64_t i = 0; i < 37; ++i) EXPECT_EQ(all[static_cast<size_t>(i)], i);
  }
}

// The trainer's prefix rule (--mm-projector-lr) reaches the optimizer: with the projector's lr 0
// only the other parameters move.
TEST(Trainer, LrByPrefixFreezesAGroupAtZero) {
  const std::string d = tmpdir("lrprefix");
  const std::string data = write_data(d, 1);
  stic::LoadedModel r(kParity + "/llava_llama", stic::LoadOptions{});
  stic::LoraConfig lc;
  lc.modules_to_save = {"multi_modal_projector"};
  auto params = stic::set_trainable(r.model(), lc, true);
  std::map<std::string, torch::Tensor> before;
  for (auto& [n, p] : params) before[n] = p.detach().clone();
  stic::SftOptions so;
  so.template_name = "vicuna_v1";
  so.image_dir = kImages;
  stic::SftTask task(r, data, so);
  stic::TrainConfig tc;
  tc.lr = 1e-3;
  tc.batch_size = 2;
  tc.max_steps = 1;
  tc.progress = false;
  tc.lr_by_prefix = {{"multi_modal_projector.", 0.0}};
  tc.warmup_ratio = 0.0;  // (a warm-up step has lr 0: nothing would move)
  tc.schedule = "constant";
  stic::Trainer t(tc, params, task.lengths(), [&](const std::vector<int64_t>& i) { return task.micro(i); },
                  [](const std::string&) {});
  t.run();
  int moved = 0, frozen = 0;
  for (auto& [n, p] : params) {
    const bool same = torch::equal(before.at(n), p.detach());
    if (n.rfind("multi_modal_projector.", 0) == 0) {
      EXPECT_TRUE(same) << n;
      ++frozen;
    } else {
      moved += !same;
    }
  }
  EXPECT_GT(frozen, 0);
  EXPECT_GT(moved, 0);
  stic::remove_tree(d);
}

// Held-out evaluation: the loss is the label-token-weighted mean of the per-batch losses, the
// mismatched-image pass really changes the images (a model that reads them sees a different
// loss), and training mode and gradients are left as they were.
TEST(Sft, EvaluateLossAndImageGain) {
  const std::string d = tmpdir("evalgain");
  const std::string data = write_data(d, 2);  // 4 records, 2 different images
  stic::LoadedModel r(kParity + "/llava_llama", stic::LoadOptions{});
  r.model()->train();
  stic::SftOptions so;
  so.template_name = "vicuna_v1";
  so.image_dir = kImages;
  stic::SftTask task(r, data, so);
  auto e = task.evaluate(0, 3);
  EXPECT_EQ(e.examples, 4);
  // by hand: sum over the examples one at a time of loss * label tokens
  double sum = 0;
  int64_t n = 0;
  {
    torch::NoGradGuard ng;
    r.model()->eval();
    for (int64_t i = 0; i < 4; ++i) {
      auto b = task.build_batch({i});
      const int64_t k = (b.labels.narrow(1, 1, b.labels.size(1) - 1) != stic::kIgnoreIndex).sum().item<int64_t>();
      sum += task.loss(b).item<double>() * static_cast<double>(k);
      n += k;
    }
    r.model()->train();
  }
  EXPECT_EQ(e.label_tokens, n);
  EXPECT_NEAR(e.loss, sum / static_cast<double>(n), 1e-5 * e.loss);
  EXPECT_NE(e.loss_other_image, e.loss);
  EXPECT_DOUBLE_EQ(e.image_gain, e.loss_other_image - e.loss);
  EXPECT_TRUE(r.model()->is_training());
  stic::remove_tree(d);
}

// Where the image goes in its turn: "front" moves the marker to the start as LLaVA's
// preprocess_multimodal does; "keep" leaves it where the text has it (HF's processors), and the
// image features are spliced in at that place.
TEST(Sft, ImageMarkerFrontOrKeep) {
  const std::string d = tmpdir("marker");
  nlohmann::json recs = nlohmann::json::array(
      {{{"id", "q-first"}, {"image", "china.jpg"},
        {"conversations", {{{"from", "human"}, {"value", "What color is the roof?\n<image>"}}, {{"from", "gpt"}, {"value", "Red."}}}}}});
  std::ofstream(d + "/data.json") << recs.dump();
  stic::LoadedModel r(kParity + "/llava_llama", stic::LoadOptions{});
  r.model()->eval();
  const auto& tok = r.tokenizer();
  auto expect_ids = [&](const std::string& user) {
    auto enc = stic::encode_chat(tok, stic::TemplateKind::VicunaV1, {{"user", user}, {"assistant", "Red."}});
    for (auto& x : enc.ids)
      if (x == tok.token_to_id("<image>")) x = r.placeholder_id();
    return enc;
  };
  auto at = [&](const std::vector<int64_t>& ids) {
    return std::find(ids.begin(), ids.end(), r.placeholder_id()) - ids.begin();
  };
  stic::SftOptions so;
  so.template_name = "vicuna_v1";
  so.image_dir = kImages;
  stic::SftTask front(r, d + "/data.json", so);
  so.image_marker = "keep";
  stic::SftTask keep(r, d + "/data.json", so);
  ASSERT_EQ(front.examples().size(), 1u);
  ASSERT_EQ(keep.examples().size(), 1u);
  const auto want_front = expect_ids("<image>\nWhat color is the roof?");
  const auto want_keep = expect_ids("What color is the roof?\n<image>");
  EXPECT_EQ(front.examples()[0].chat.ids, want_front.ids);
  EXPECT_EQ(front.examples()[0].chat.labels, want_front.labels);
  EXPECT_EQ(keep.examples()[0].chat.ids, want_keep.ids);
  EXPECT_EQ(keep.examples()[0].chat.labels, want_keep.labels);
  const int64_t pf = at(want_front.ids), pk = at(want_keep.ids);
  EXPECT_GT(pk, pf + 5);  // the question's tokens come before the image
  // the same image features, spliced in at each layout's placeholder
  torch::NoGradGuard ng;
  auto bf = front.build_batch({0}), bk = keep.build_batch({0});
  // image positions: the placeholder becomes the image's tokens (the two texts tokenize to
  // slightly different lengths)
  const int64_t n = bf.embeds.size(1) - static_cast<int64_t>(want_front.ids.size()) + 1;
  ASSERT_EQ(n, bk.embeds.size(1) - static_cast<int64_t>(want_keep.ids.size()) + 1);
  ASSERT_GT(n, 1);
  EXPECT_TRUE(torch::equal(bf.embeds[0].narrow(0, pf, n), bk.embeds[0].narrow(0, pk, n)));
  EXPECT_FALSE(torch::equal(bf.embeds[0].narrow(0, pk, n), bk.embeds[0].narrow(0, pk, n)));
  EXPECT_TRUE(std::isfinite(keep.loss(bk).item<double>()));
  // a marker in a later turn stays in that turn (front: at its start); no marker: "<image>\n"
  // starts the first turn in both modes
  nlohmann::json more = nlohmann::json::array(
      {{{"id", "later"}, {"image", "china.jpg"},
        {"conversations", {{{"from", "human"}, {"value", "Hi?"}}, {{"from", "gpt"}, {"value", "Hello."}},
                           {{"from", "human"}, {"value", "And this?\n<image>"}}, {{"from", "gpt"}, {"value", "Red."}}}}},
       {{"id", "none"}, {"image", "china.jpg"},
        {"conversations", {{{"from", "human"}, {"value", "What color is the roof?"}}, {{"from", "gpt"}, {"value", "Red."}}}}}});
  std::ofstream(d + "/more.json") << more.dump();
  auto ids_of = [&](std::vector<stic::Turn> turns) {
    auto enc = stic::encode_chat(tok, stic::TemplateKind::VicunaV1, turns);
    for (auto& x : enc.ids)
      if (x == tok.token_to_id("<image>")) x = r.placeholder_id();
    return enc.ids;
  };
  for (const std::string mode : {"front", "keep"}) {
    so.image_marker = mode;
    stic::SftTask t(r, d + "/more.json", so);
    ASSERT_EQ(t.examples().size(), 2u);
    const std::string third = mode == "keep" ? "And this?\n<image>" : "<image>\nAnd this?";
    EXPECT_EQ(t.examples()[0].chat.ids,
              ids_of({{"user", "Hi?"}, {"assistant", "Hello."}, {"user", third}, {"assistant", "Red."}})) << mode;
    EXPECT_EQ(t.examples()[1].chat.ids, want_front.ids) << mode;
  }
  so.image_marker = "middle";
  EXPECT_THROW(stic::SftTask(r, d + "/data.json", so), stic::Error);
  stic::remove_tree(d);
}

// Gradient checkpointing recomputes each decoder layer in the backward: the same loss and the
// same gradients, bit for bit on CPU, with LoRA dropout on (the recompute replays the RNG) and
// with frozen embeddings (the first layer's input gets requires_grad).
TEST(Trainer, GradientCheckpointingGivesTheSameGradients) {
  const std::string d = tmpdir("ckpt");
  const std::string data = write_data(d, 1);
  stic::LoadedModel r(kParity + "/llava_llama", stic::LoadOptions{});
  stic::LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dropout = 0.2;
  torch::manual_seed(3);
  stic::apply_lora(r.model(), lc);
  auto params = stic::set_trainable(r.model(), lc, false);
  for (auto& [n, p] : params) p.detach().normal_(0, 0.05);  // B != 0: LoRA matters
  r.model()->train();
  stic::SftOptions so;
  so.template_name = "vicuna_v1";
  so.image_dir = kImages;
  stic::SftTask task(r, data, so);
  auto grads = [&](bool ckpt, double* loss) {
    r.model()->language_model->model->gradient_checkpointing = ckpt;
    for (auto& [n, p] : params) p.mutable_grad() = torch::Tensor();
    torch::manual_seed(11);
    auto mb = task.micro({0, 1});
    *loss = mb.loss.item<double>();
    mb.loss.backward();
    std::vector<torch::Tensor> g;
    for (auto& [n, p] : params) g.push_back(p.grad().defined() ? p.grad().clone() : torch::Tensor());
    return g;
  };
  double l0 = 0, l1 = 0;
  auto g0 = grads(false, &l0);
  auto g1 = grads(true, &l1);
  EXPECT_EQ(l0, l1);
  ASSERT_EQ(g0.size(), g1.size());
  int nonzero = 0;
  for (size_t i = 0; i < g0.size(); ++i) {
    ASSERT_TRUE(g0[i].defined() && g1[i].defined()) << params[i].first;
    EXPECT_TRUE(torch::equal(g0[i], g1[i])) << params[i].first << " max diff "
                                            << (g0[i] - g1[i]).abs().max().item<double>();
    nonzero += g0[i].abs().sum().item<double>() > 0;
  }
  EXPECT_GT(nonzero, static_cast<int>(g0.size()) / 2);
  r.model()->language_model->model->gradient_checkpointing = false;
  stic::remove_tree(d);
}

// A fresh adapter's kaiming-initialised A comes from the run's seed: the same seed gives the same
// adapter whatever ran before in the process, another seed another one (seeds and ablations of
// the STIC loop compare runs that must differ only where they say).
TEST(Setup, FreshLoraInitFollowsTheSeed) {
  auto lora_a = [](uint64_t seed, bool disturb) {
    if (disturb) (void)torch::rand({17});  // the global generator used by something else first
    stic::LoadedModel lm(std::string(STIC_SOURCE_DIR) + "/tests/fixtures/parity/llava_llama", stic::LoadOptions{});
    stic::TrainSetupOptions o;
    o.lora.r = 4;
    o.init_seed = seed;
    stic::setup_training(lm, o);
    std::vector<torch::Tensor> a;
    for (auto& [n, l] : stic::named_linears(lm.model()))
      if (l->has_lora()) a.push_back(l->lora_A->weight.detach().clone());
    return torch::cat(a.empty() ? std::vector<torch::Tensor>{torch::zeros({1})} : [&] {
      std::vector<torch::Tensor> f;
      for (auto& t : a) f.push_back(t.flatten());
      return f;
    }());
  };
  const auto a = lora_a(7, false), b = lora_a(7, true), c = lora_a(8, false);
  ASSERT_GT(a.numel(), 1);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

// ---------------------------------------------------------------- one SFT step against PEFT + torch.optim
// tools/make_bite_fixtures.py (transformers 5.17, PEFT 0.21, fp32 CPU): llava_llama with a
// non-zero LoRA (lora_dropout 0.1) on the text decoder, the SFT fixture's two samples as two
// micro-batches of one (gradient accumulation 2), PEFT's dropout keep-masks recorded in call
// order and replayed here (a mask drawn by another RNG could not be compared), the accumulated
// gradients, clipped to norm 1, one AdamW step (lr 1e-3, weight decay 0.01). This exercises the
// LoRA forward/backward with dropout, the loss division by the accumulation count, clipping and
// the optimizer together, through the trainer.
#define kStep (std::string(STIC_SOURCE_DIR) + "/tests/fixtures/train_step")
TEST(TrainStepVsPeft, AccumulatedDropoutGradientsClipAndAdamW) {
  if (!fs::exists(kStep + "/step_llava_llama.safetensors")) GTEST_SKIP() << "no fixture: tools/make_bite_fixtures.py";
  const auto info = nlohmann::json::parse(stic::read_text_file(kStep + "/manifest.json"));
  stic::LoadedModel lm(kParity + "/llava_llama", stic::LoadOptions{});
  stic::TrainSetupOptions so;
  so.adapter = kStep + "/start_llava_llama";
  so.lora.dropout = info["lora_dropout"].get<double>();
  const stic::TrainSetup setup = stic::setup_training(lm, so);
  lm.model()->train();
  stic::SafetensorsFile f(kStep + "/step_llava_llama.safetensors");
  stic::SafetensorsFile sf(kPeft + "/sft_llava_llama.safetensors");
  std::map<int64_t, stic::ImageInput> imgs;
  for (int64_t i = 0; i < 2; ++i) imgs[i].pixels = sf.get("pixel_values_" + std::to_string(i));
  stic::SftOptions sopt;
  sopt.template_name = info["template"];
  sopt.image_dir = kImages;
  stic::SftTask task(lm, kPeft + "/sft_data.json", sopt);
  auto key = [](const std::string& n) {  // PEFT's name of a stic LoRA parameter
    const size_t at = n.find(".lora_");
    return "base_model.model." + stic::peft_module_name(n.substr(0, at), stic::AdapterKeyStyle::HfV5) + n.substr(at);
  };
  auto rel = [](const torch::Tensor& a, const torch::Tensor& b) {
    return ((a.to(torch::kFloat64) - b.to(torch::kFloat64)).norm() / b.to(torch::kFloat64).norm()).item<double>();
  };
  const std::string d = tmpdir("step");
  stic::TrainConfig tc;
  tc.output_dir = d;
  tc.lr = info["adamw"]["lr"];
  tc.adam.weight_decay = info["adamw"]["weight_decay"];
  tc.schedule = "constant";
  tc.warmup_steps = 0;
  tc.batch_size = 1;
  tc.grad_accum = 2;
  tc.max_steps = 1;
  tc.max_grad_norm = info["max_grad_norm"];
  tc.progress = false;
  std::vector<double> losses(2, -1);
  int64_t replayed = 0;
  stic::Trainer tr(tc, setup.params, task.lengths(),
                   [&](const std::vector<int64_t>& idx) {
                     const int64_t e = idx.at(0);
                     int64_t j = 0;  // PEFT's masks of this sample, in call order
                     stic::LoraDropoutMaskScope masks([&](const torch::Tensor&, double) {
                       char k[32];
                       std::snprintf(k, sizeof k, "mask.%lld.%03lld", static_cast<long long>(e), static_cast<long long>(j++));
                       ++replayed;
                       return f.get(k);
                     });
                     stic::MicroBatchResult r;
                     auto b = task.build_batch({e}, &imgs);
                     r.loss = task.loss(b);
                     r.examples = 1;
                     losses[e] = r.loss.item<double>();
                     return r;
                   },
                   [](const std::string&) {});
  double worst_clipped = 0;
  tr.set_step_hook([&](int64_t, std::map<std::string, double>&) {  // after the optimizer step: the clipped gradients
    for (auto& [n, p] : setup.params) worst_clipped = std::max(worst_clipped, rel(p.grad(), f.get("clipped." + key(n))));
  });
  tr.run();
  nlohmann::json last;
  std::ifstream in(d + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);) last = nlohmann::json::parse(line);
  const double logged_norm = last.value("grad_norm", -1.0);  // before clipping
  stic::remove_tree(d);
  const auto hf_losses = f.get("losses");
  int64_t masks_expected = 0;
  for (auto& n : info["masks_per_micro_batch"]) masks_expected += n.get<int64_t>();
  EXPECT_EQ(replayed, masks_expected);
  double worst_step = 0;
  for (auto& [n, p] : setup.params) worst_step = std::max(worst_step, rel(p.detach(), f.get("step." + key(n))));
  const double loss_err = std::max(std::abs(losses[0] - hf_losses[0].item<double>()) / hf_losses[0].item<double>(),
                                   std::abs(losses[1] - hf_losses[1].item<double>()) / hf_losses[1].item<double>());
  const double norm_err = std::abs(logged_norm - info["grad_norm_before_clip"].get<double>()) /
                          info["grad_norm_before_clip"].get<double>();
  std::printf("[ step ] losses %.7f %.7f (PEFT %.7f %.7f, rel err %.2g); grad norm %.6f (PEFT %.6f, rel err %.2g); "
              "clipped grads rel err %.2g; weights after AdamW rel err %.2g\n", losses[0], losses[1],
              hf_losses[0].item<double>(), hf_losses[1].item<double>(), loss_err, logged_norm,
              info["grad_norm_before_clip"].get<double>(), norm_err, worst_clipped, worst_step);
  // Measured on 2026-12-05 (fp32 CPU vs PEFT 0.21 / torch 2.11 on the GPU machine's CPU): losses
  // 0 (the same float32), grad norm 1.3e-7 (metrics.jsonl keeps 7 digits), clipped gradients 1.5e-6, weights after
  // AdamW 7.7e-7. Bounds ~10x the measured error; a wrong mask order gave 6e-3 / 0.75 / 1e-2.
  EXPECT_LT(loss_err, 2e-6);
  EXPECT_LT(norm_err, 1e-5);
  EXPECT_LT(worst_clipped, 2e-5);
  EXPECT_LT(worst_step, 1e-5);
}
