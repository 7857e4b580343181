// The shared parts every verb stands on: the loaded model's adapter policies, the batch job
// (resume, torn lines, error records, shards) and the collator's per-sequence log-probs.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "stic/infer/batch_job.h"
#include "stic/image/image.h"
#include "stic/infer/runner.h"
#include "stic/model/loaded_model.h"
#include "stic/train/collator.h"
#include "stic/train/sft.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/jsonl.h"

namespace {
namespace fs = std::filesystem;
#define kFix (std::string(STIC_SOURCE_DIR) + "/tests/fixtures")

std::string tmpdir(const std::string& tag) {
  auto d = fs::temp_directory_path() / ("stic_shared_" + tag + "_" + std::to_string(::getpid()));
  stic::remove_tree(d);
  fs::create_directories(d);
  return d.string();
}

double rel(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

stic::ChatRequest china(int max_new = 1) {
  stic::ChatRequest q;
  q.image = kFix + "/images/china.jpg";
  q.prompt = "What is in the picture?";
  q.max_new_tokens = max_new;
  return q;
}

// ---------------------------------------------------------------- loaded model
TEST(LoadedModel, MergedAdapterGivesTheActiveAdapterLogits) {
  const std::string model = kFix + "/parity/llava_llama", adapter = kFix + "/peft/hf_llava_llama";
  stic::LoadedModel base(model, stic::LoadOptions{});
  EXPECT_EQ(base.adapter_policy(), stic::AdapterPolicy::None);
  const auto l0 = stic::reference_chat(base, china()).last_logits;

  stic::LoadedModel active(model, stic::LoadOptions{});
  const auto rep = active.attach_adapter(adapter, stic::AdapterPolicy::Active);
  EXPECT_EQ(rep.lora_modules, 14);
  EXPECT_EQ(active.adapter_policy(), stic::AdapterPolicy::Active);
  const auto la = stic::reference_chat(active, china()).last_logits;

  stic::LoadedModel merged(model, stic::LoadOptions{});
  merged.attach_adapter(adapter, stic::AdapterPolicy::Merged);
  for (auto& [n, l] : stic::named_linears(merged.model())) ASSERT_FALSE(l->has_lora()) << n;  // plain weights
  const auto lm = stic::reference_chat(merged, china()).last_logits;

  EXPECT_GT(rel(la, l0), 1e-2);  // the adapter matters
  EXPECT_LT(rel(lm, la), 1e-5);  // merging changes the arithmetic, not the function
  // and the greedy tokens: merged (what the generation verbs run) = unmerged
  EXPECT_EQ(stic::reference_chat(merged, china(8)).token_ids, stic::reference_chat(active, china(8)).token_ids);
  // no second adapter trained on top of a merged one
  EXPECT_THROW(merged.attach_adapter(adapter, stic::AdapterPolicy::Active), stic::Error);
  EXPECT_THROW(base.attach_adapter(adapter, stic::AdapterPolicy::None), stic::Error);
}

TEST(LoadedModel, PreprocessOfADecodedImageIsLoadImage) {
  stic::LoadedModel m(kFix + "/parity/next_mistral", stic::LoadOptions{});
  const std::string path = kFix + "/images/china_wide.jpg";
  const auto a = m.load_image(path), b = m.preprocess(stic::image_load(path));
  EXPECT_TRUE(torch::equal(a.pixels, b.pixels));
  EXPECT_EQ(a.orig_h, b.orig_h);
  EXPECT_EQ(a.orig_w, b.orig_w);
  EXPECT_GT(a.pixels.size(0), 1);  // anyres: base image + grid crops
}

// ---------------------------------------------------------------- image transforms in the engine
// A corruption travels with the request and is applied in memory: the same tokens as the
// corrupted image written to a (lossless) PNG and read back, while the clean request of the same
// image in the same batch is untouched (the caches key on path + transform).
TEST(EngineTransforms, CorruptedInMemoryEqualsCorruptedFile) {
  stic::LoadedModel m(kFix + "/parity/next_mistral", stic::LoadOptions{});
  const std::string d = tmpdir("tf"), path = kFix + "/images/china.jpg";
  stic::ImageTransform jit;
  jit.kind = stic::ImageTransform::Kind::Jitter;
  jit.brightness = 1.3f;
  jit.hue = -0.21f;
  stic::ImageTransform low;
  low.kind = stic::ImageTransform::Kind::LowRes;
  // pixels: the engine's loader = the reference corruption (tests/unit/base_image.cpp checks those
  // against torchvision's values) followed by the model's preprocessing
  const auto a = m.load_image(path, jit), b = m.preprocess(stic::image_color_jitter(stic::image_load(path), 1.3f, -0.21f));
  EXPECT_TRUE(torch::equal(a.pixels, b.pixels));
  EXPECT_FALSE(torch::equal(a.pixels, m.load_image(path).pixels));
  std::vector<stic::GenRequest> reqs, files;
  int k = 0;
  for (const auto& t : {stic::ImageTransform{}, jit, low}) {
    stic::GenRequest q;
    q.id = "r" + std::to_string(k);
    q.image = path;
    q.transform = t;
    q.prompt = "Describe the image.";
    q.max_new_tokens = 6;
    q.want_logits = true;
    reqs.push_back(q);
    const std::string png = d + "/t" + std::to_string(k++) + ".png";
    ASSERT_TRUE(stic::image_save_png(t.apply(stic::image_load(path)), png));
    q.image = png;
    q.transform = {};
    files.push_back(q);
  }
  std::map<std::string, stic::GenResult> got, want;
  stic::EngineOptions o;
  o.max_batch = 3;
  stic::Engine(m, o).run(reqs, [&](stic::GenResult& g) { got[g.id] = g; });
  for (auto& q : files) {
    stic::Engine(m, o).run({q}, [&](stic::GenResult& g) { want[g.id] = g; });
  }
  ASSERT_EQ(got.size(), 3u);
  for (auto& [id, w] : want) {
    EXPECT_EQ(got[id].token_ids, w.token_ids) << id;
    EXPECT_LT(rel(got[id].last_logits, w.last_logits), 1e-6) << id;  // the prompt's last logits
  }
  // each corruption is seen as its own image, not the cached clean one
  EXPECT_GT(rel(got["r1"].last_logits, got["r0"].last_logits), 1e-4);
  EXPECT_GT(rel(got["r2"].last_logits, got["r0"].last_logits), 1e-4);
  EXPECT_EQ(low.key(), "lowres:20");
  EXPECT_NE(jit.key(), stic::ImageTransform{}.key());
  stic::remove_tree(d);
}

// ---------------------------------------------------------------- batch job
TEST(BatchJob, ShardsPartitionTheIdsAndParseStrictly) {
  std::map<int, int> per;
  for (int i = 0; i < 400; ++i) {
    const std::string id = "img_" + std::to_string(i);
    const int s = stic::shard_of(id, 4);
    ASSERT_GE(s, 0);
    ASSERT_LT(s, 4);
    EXPECT_EQ(s, stic::shard_of(id, 4));  // stable
    ++per[s];
  }
  for (int s = 0; s < 4; ++s) EXPECT_GT(per[s], 60) << s;  // roughly even (100 expected)
  EXPECT_EQ(stic::parse_shard("3/4").index, 3);
  EXPECT_EQ(stic::parse_shard("3/4").count, 4);
  for (const char* bad : {"4/4", "-1/4", "1/0", "1", "a/b", "1/4x", ""})
    EXPECT_THROW(stic::parse_shard(bad), stic::Error) << bad;
}

TEST(BatchJob, WritesEngineResultsResumesAfterATornLineAndRecordsErrors) {
  const std::string d = tmpdir("job"), out = d + "/out.jsonl";
  stic::LoadedModel m(kFix + "/parity/llava_llama", stic::LoadOptions{});
  std::vector<stic::GenRequest> reqs;
  for (const char* img : {"china.jpg", "flower.jpg", "truncated.jpg"}) {
    stic::GenRequest q;
    q.id = img;
    q.image = kFix + "/images/" + img;
    q.prompt = "What is in the picture?";
    q.max_new_tokens = 3;
    reqs.push_back(q);
  }
  stic::BatchJobOptions o;
  o.out = out;
  o.progress = false;
  {
    stic::BatchJob job(o);
    for (auto& q : reqs) EXPECT_TRUE(job.wanted(q.id));
    const auto r = job.run(m, reqs);
    EXPECT_EQ(r.done, 2);
    EXPECT_EQ(r.failed, 1);  // the truncated JPEG
  }
  std::map<std::string, nlohmann::json> recs;
  stic::read_jsonl(out, [&](size_t, const nlohmann::json& j) { recs[j["id"]] = j; },
                   [](size_t, const std::string& msg) { FAIL() << msg; });
  ASSERT_EQ(recs.size(), 3u);
  EXPECT_TRUE(recs["truncated.jpg"].contains("error"));
  // the engine's greedy tokens are the reference decoder's
  auto ref = stic::reference_chat(m, china(3));
  EXPECT_EQ(recs["china.jpg"]["token_ids"].get<std::vector<int32_t>>(), ref.token_ids);
  EXPECT_EQ(recs["china.jpg"]["num_input_tokens"].get<int64_t>(), ref.num_input_tokens);

  // a run killed mid-write leaves a torn line: cut on open, every finished id skipped
  { std::ofstream(out, std::ios::app) << "{\"id\": \"half"; }
  o.write_errors = false;
  stic::BatchJob again(o);
  for (auto& q : reqs) EXPECT_FALSE(again.wanted(q.id));
  EXPECT_EQ(again.resumed(), 3);
  EXPECT_TRUE(again.wanted("new"));
  std::string body = stic::read_text_file(out);
  EXPECT_EQ(body.find("half"), std::string::npos);
  EXPECT_EQ(body.back(), '\n');

  // without error records (the world eval), a failed request is retried by the next run
  {
    stic::BatchJobOptions eo;
    eo.out = d + "/eval.jsonl";
    eo.write_errors = false;
    eo.progress = false;
    {
      stic::BatchJob job(eo);
      const auto r = job.run(m, reqs);
      EXPECT_EQ(r.failed, 1);
    }
    stic::BatchJob next(eo);
    EXPECT_FALSE(next.wanted("china.jpg"));
    EXPECT_TRUE(next.wanted("truncated.jpg"));
  }
  // shards: each id is wanted by exactly one of two jobs
  std::set<std::string> taken;
  for (int s = 0; s < 2; ++s) {
    stic::BatchJobOptions so;
    so.out = d + "/shard" + std::to_string(s) + ".jsonl";
    so.shard = {s, 2};
    stic::BatchJob job(so);
    for (int i = 0; i < 50; ++i)
      if (job.wanted("id" + std::to_string(i))) {
        EXPECT_TRUE(taken.insert("id" + std::to_string(i)).second);
      }
  }
  EXPECT_EQ(taken.size(), 50u);
  stic::remove_tree(d);
}

// ---------------------------------------------------------------- collator
TEST(SequenceLogProbs, ByHand) {
  // B = 2, T = 3, V = 2; labels predict positions 1..2
  auto logits = torch::tensor({0.0f, 1.0f, 2.0f, 0.0f, 5.0f, 5.0f,    // sequence 0
                               1.0f, 1.0f, 0.0f, 3.0f, 9.0f, 9.0f})  // sequence 1
                    .view({2, 3, 2});
  auto labels = torch::tensor({-100, 1, 0, -100, -100, 1}, torch::kInt64).view({2, 3});
  const auto r = stic::sequence_logprobs(logits, labels);
  auto ls = [](double a, double b, double pick) { return pick - std::log(std::exp(a) + std::exp(b)); };
  const double s0 = ls(0, 1, 1) + ls(2, 0, 2);  // position 0 predicts label 1, position 1 predicts 0
  const double s1 = ls(0, 3, 3);                // only position 1 -> label 1
  EXPECT_NEAR(r.sum[0].item<double>(), s0, 1e-6);
  EXPECT_NEAR(r.sum[1].item<double>(), s1, 1e-6);
  EXPECT_EQ(r.count[0].item<int64_t>(), 2);
  EXPECT_EQ(r.count[1].item<int64_t>(), 1);
  // HF's mean cross-entropy is minus the label-weighted mean of the same numbers
  EXPECT_NEAR(stic::causal_lm_loss(logits, labels).item<double>(), -(s0 + s1) / 3, 1e-6);
}

TEST(SequenceLogProbs, AgreeWithTheSftLossOnARealBatchAndCarryGradients) {
  stic::LoadedModel m(kFix + "/parity/llava_llama", stic::LoadOptions{});
  stic::SftOptions so;
  so.image_dir = kFix + "/images";
  stic::SftTask task(m, kFix + "/peft/sft_data.json", so);
  ASSERT_GE(task.examples().size(), 2u);
  auto b = task.build_batch({0, 1});
  ASSERT_EQ(b.used.size(), 2u);
  const int64_t bsz = b.embeds.size(0), t = b.embeds.size(1);
  auto pos = torch::arange(t, torch::kInt64).unsqueeze(0).expand({bsz, t});
  auto logits = m.model()->forward_embeds(b.embeds, pos, nullptr, false);
  const auto r = stic::sequence_logprobs(logits, b.labels);
  const double n = r.count.sum().item<double>();
  EXPECT_EQ(n, (b.labels.narrow(1, 1, t - 1) != stic::kIgnoreIndex).sum().item<double>());
  EXPECT_NEAR(-r.sum.sum().item<double>() / n, stic::causal_lm_loss(logits, b.labels).item<double>(), 1e-5);
  // each sequence on its own gives its own sum (padding does not leak across rows)
  for (int64_t i = 0; i < 2; ++i) {
    auto one = task.build_batch({i});
    const int64_t ti = one.embeds.size(1);
    auto li = m.model()->forward_embeds(one.embeds, torch::arange(ti, torch::kInt64).unsqueeze(0), nullptr, false);
    EXPECT_NEAR(stic::sequence_logprobs(li, one.labels).sum[0].item<double>(), r.sum[i].item<double>(), 1e-3) << i;
  }
  ASSERT_TRUE(r.sum.requires_grad());  // differentiable: DPO backpropagates through it
  r.sum.sum().backward();
  EXPECT_GT(m.model()->language_model->lm_head->weight.grad().abs().sum().item<double>(), 0.0);
}

}  // namespace
