// The batched engine: greedy == HF's greedy on the parity checkpoints (mixed prompts and images
// in one batch), batch size 1 == batch size N, seeded sampling reproducible and independent of
// the batch, prefix sharing invisible in the output, bad requests isolated.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "stic/infer/engine.h"

namespace {

std::string fixture(const std::string& rel) { return std::string(STIC_SOURCE_DIR) + "/tests/fixtures/" + rel; }

nlohmann::json manifest() {
  std::ifstream in(fixture("parity/manifest.json"));
  return nlohmann::json::parse(in);
}

stic::LoadedModel& runner(const std::string& name) {
  static std::map<std::string, std::unique_ptr<stic::LoadedModel>> cache;
  auto& r = cache[name];
  if (!r) {
    // STIC_PARITY_DEVICE=cuda runs these on a GPU (fp32, TF32 off: HF's greedy tokens still hold)
    stic::LoadOptions o;
    const char* d = std::getenv("STIC_PARITY_DEVICE");
    o.device = stic::parse_device(d && *d ? d : "cpu");
    r = std::make_unique<stic::LoadedModel>(fixture("parity/" + name), o);
  }
  return *r;
}

std::map<std::string, stic::GenResult> run(stic::LoadedModel& r, const std::vector<stic::GenRequest>& reqs,
                                           stic::EngineOptions o, stic::EngineStats* stats = nullptr) {
  std::map<std::string, stic::GenResult> out;
  stic::Engine e(r, o);
  auto st = e.run(reqs, [&](stic::GenResult& g) { out[g.id] = g; });
  if (stats) *stats = st;
  return out;
}

std::vector<stic::GenRequest> manifest_requests(const std::string& model, int max_new = 16) {
  std::vector<stic::GenRequest> reqs;
  const auto m = manifest();
  for (auto& c : m["cases"]) {
    if (c["model"] != model) continue;
    stic::GenRequest q;
    q.id = c["case"];
    q.image = fixture("images/" + c["image"].get<std::string>());
    q.prompt = c["user"];
    q.template_name = c["template"];
    q.max_new_tokens = max_new;
    reqs.push_back(q);
  }
  return reqs;
}

TEST(Engine, GreedyBatchedEqualsHF) {
  const auto m = manifest();
  for (std::string model : {"llava_llama", "next_mistral", "next_llama_bf16"}) {
    auto reqs = manifest_requests(model);
    stic::EngineOptions o;
    o.max_batch = 4;
    stic::EngineStats st;
    auto out = run(runner(model), reqs, o, &st);
    // on a GPU the decode steps replay CUDA graphs unless switched off (STIC_CUDA_GRAPHS=0,
    // STIC_PROFILE=1); a build without STIC_WITH_CUDA silently ran them eagerly for two
    // sessions: this catches it
    const auto dev = runner(model).model()->language_model->lm_head->weight.device();
    const char* g = std::getenv("STIC_CUDA_GRAPHS");
    const char* pr = std::getenv("STIC_PROFILE");
    if (dev.is_cuda() && !(g && std::string(g) == "0") && !(pr && std::string(pr) == "1")) {
      EXPECT_GT(st.cuda_graphs, 0) << model;
    } else {
      EXPECT_EQ(st.cuda_graphs, 0) << model;
    }
    for (auto& c : m["cases"]) {
      if (c["model"] != model) continue;
      auto& g = out.at(c["case"]);
      EXPECT_EQ(g.error, "");
      EXPECT_EQ(g.token_ids, c["greedy"].get<std::vector<int32_t>>()) << c["case"];
      EXPECT_EQ(g.num_input_tokens, c["num_input_tokens"].get<int64_t>()) << c["case"];
      EXPECT_EQ(g.finish_reason, "length");
    }
  }
}

// Mixed lengths: images of different grids, text-only prompts, different max_new_tokens.
std::vector<stic::GenRequest> mixed_requests() {
  auto reqs = manifest_requests("next_mistral", 12);
  const char* texts[] = {"Tell me a story.", "Hi", "What is a license?"};
  int i = 0;
  for (auto t : texts) {
    stic::GenRequest q;
    q.id = "text" + std::to_string(i);
    q.prompt = t;
    q.max_new_tokens = 5 + 4 * i++;
    reqs.push_back(q);
  }
  reqs[1].max_new_tokens = 3;
  return reqs;
}

TEST(Engine, BatchOneEqualsBatchN) {
  auto reqs = mixed_requests();
  stic::EngineOptions one, many;
  one.max_batch = 1;
  many.max_batch = 3;
  stic::EngineStats st;
  auto a = run(runner("next_mistral"), reqs, one);
  auto b = run(runner("next_mistral"), reqs, many, &st);
  ASSERT_EQ(a.size(), reqs.size());
  for (auto& q : reqs) {
    EXPECT_EQ(a[q.id].token_ids, b[q.id].token_ids) << q.id;
    EXPECT_EQ(static_cast<int>(b[q.id].token_ids.size()), q.max_new_tokens) << q.id;
  }
  int64_t total = 0;
  for (auto& q : reqs) total += q.max_new_tokens;
  EXPECT_EQ(st.generated_tokens, total);
  // continuous batching: far fewer steps than tokens (each step serves up to 3 sequences)
  EXPECT_LT(st.decode_steps, total / 2);
}

// The token-major KV storage (what CUDA uses for the flash decode kernel) gives the same tokens.
TEST(Engine, TokenMajorCacheLayoutSameTokens) {
  auto reqs = mixed_requests();
  stic::EngineOptions o;
  o.max_batch = 3;
  auto a = run(runner("next_mistral"), reqs, o);
  ::setenv("STIC_KV_TOKEN_MAJOR", "1", 1);
  auto b = run(runner("next_mistral"), reqs, o);
  ::unsetenv("STIC_KV_TOKEN_MAJOR");
  for (auto& q : reqs) EXPECT_EQ(a[q.id].token_ids, b[q.id].token_ids) << q.id;
}

// q/k/v (or gate/up) as one GEMM: the same outputs as the parts, and it stands in for them only
// while that is still true (no gradients, no active LoRA, weights still views of the fused one).
TEST(FusedLinear, MatchesPartsAndStepsAsideWhenItWouldNot) {
  torch::manual_seed(3);
  std::vector<stic::Linear> parts = {stic::Linear(16, 12, false), stic::Linear(16, 4, false), stic::Linear(16, 4, false)};
  for (auto& p : parts) torch::nn::init::normal_(p->weight);
  auto x = torch::randn({2, 3, 16});
  std::vector<torch::Tensor> want;
  for (auto& p : parts) want.push_back(p(x).detach());
  stic::FusedLinear f;
  f.fuse(parts);
  torch::NoGradGuard ng;
  ASSERT_TRUE(f.usable());
  auto got = f.forward(x);
  for (size_t i = 0; i < parts.size(); ++i) EXPECT_TRUE(torch::allclose(got[i], want[i], 1e-5, 1e-6)) << i;
  // an in-place update of a part (an optimizer step, a LoRA merge) is seen by the fused GEMM
  parts[1]->weight.mul_(2);
  EXPECT_TRUE(torch::allclose(f.forward(x)[1], 2 * want[1], 1e-5, 1e-6));
  // an active LoRA: the parts must run (they add the adapter); disabled adapters: fused again
  parts[2]->attach_lora(2, 4.0, 0.0);
  torch::nn::init::normal_(parts[2]->lora_B->weight);
  EXPECT_FALSE(f.usable());
  {
    stic::AdapterDisabledGuard off;
    EXPECT_TRUE(f.usable());
  }
  parts[2]->detach_lora();
  {
    torch::AutoGradMode on(true);  // training: never the fused path
    EXPECT_FALSE(f.usable());
  }
  // a part whose weight was replaced (not updated in place) no longer matches: not intact
  parts[0]->weight.set_data(parts[0]->weight.clone());
  EXPECT_FALSE(f.intact());
  EXPECT_FALSE(f.usable());
}

// A model with fused projections decodes the same greedy tokens as HF (fresh runner: fusing
// changes the model's parameters into views).
TEST(Engine, FusedProjectionsGiveHFGreedyTokens) {
  const auto m = manifest();
  stic::LoadOptions lo;
  const char* d = std::getenv("STIC_PARITY_DEVICE");
  lo.device = stic::parse_device(d && *d ? d : "cpu");
  stic::LoadedModel r(fixture("parity/next_mistral"), lo);
  r.model()->language_model->model->fuse_projections();
  auto& layer0 = *r.model()->language_model->model->layers->ptr<stic::LlamaLayerImpl>(0);
  ASSERT_TRUE(layer0.self_attn->qkv.intact());
  ASSERT_TRUE(layer0.mlp->gate_up.intact());
  {
    torch::NoGradGuard ng;  // as in the engine: the fused GEMMs are what runs
    ASSERT_TRUE(layer0.self_attn->qkv.usable());
    ASSERT_TRUE(layer0.mlp->gate_up.usable());
  }
  stic::EngineOptions o;
  o.max_batch = 4;
  auto out = run(r, manifest_requests("next_mistral"), o);
  int n = 0;
  for (auto& c : m["cases"]) {
    if (c["model"] != "next_mistral") continue;
    EXPECT_EQ(out.at(c["case"]).token_ids, c["greedy"].get<std::vector<int32_t>>()) << c["case"];
    ++n;
  }
  EXPECT_GT(n, 0);
}

TEST(Engine, SeededSamplingIsReproducibleAndBatchIndependent) {
  auto reqs = mixed_requests();
  for (auto& q : reqs) {
    q.temperature = 1.0f;
    q.top_p = 0.95f;
    q.seed = stic::request_seed(1234, q.id);
  }
  stic::EngineOptions one, many;
  one.max_batch = 1;
  many.max_batch = 4;
  auto a = run(runner("next_mistral"), reqs, many);
  auto b = run(runner("next_mistral"), reqs, many);
  auto c = run(runner("next_mistral"), reqs, one);
  int differs_from_greedy = 0;
  auto greedy = run(runner("next_mistral"), mixed_requests(), many);
  for (auto& q : reqs) {
    EXPECT_EQ(a[q.id].token_ids, b[q.id].token_ids) << q.id;
    EXPECT_EQ(a[q.id].token_ids, c[q.id].token_ids) << q.id;
    differs_from_greedy += a[q.id].token_ids != greedy[q.id].token_ids;
  }
  EXPECT_GT(differs_from_greedy, 0);  // it really sampled
  for (auto& q : reqs) q.seed += 1;
  auto d = run(runner("next_mistral"), reqs, many);
  int differs = 0;
  for (auto& q : reqs) differs += d[q.id].token_ids != a[q.id].token_ids;
  EXPECT_GT(differs, 0);  // another seed, other samples
}

TEST(Engine, TopKOneIsGreedy) {
  auto reqs = mixed_requests();
  for (auto& q : reqs) {
    q.temperature = 0.7f;
    q.top_k = 1;
    q.seed = 99;
  }
  stic::EngineOptions o;
  o.max_batch = 4;
  auto a = run(runner("next_mistral"), reqs, o);
  auto g = run(runner("next_mistral"), mixed_requests(), o);
  for (auto& q : reqs) EXPECT_EQ(a[q.id].token_ids, g[q.id].token_ids) << q.id;
}

TEST(Engine, SharedImagePrefixIsReusedAndInvisible) {
  // Several questions about one image (what STIC does): same template, same image.
  std::vector<stic::GenRequest> reqs;
  const char* qs[] = {"Describe the image.", "What colours do you see?", "Is there a person?", "Count the objects."};
  for (int k = 0; k < 2; ++k)
    for (int i = 0; i < 4; ++i) {
      stic::GenRequest q;
      q.id = "q" + std::to_string(k) + std::to_string(i);
      q.image = fixture(k ? "images/flower_portrait.jpg" : "images/china.jpg");
      q.prompt = qs[i];
      q.max_new_tokens = 8;
      reqs.push_back(q);
    }
  stic::EngineOptions on, off;
  on.max_batch = off.max_batch = 3;
  off.share_prefix = false;
  stic::EngineStats s_on, s_off;
  auto a = run(runner("next_mistral"), reqs, on, &s_on);
  auto b = run(runner("next_mistral"), reqs, off, &s_off);
  for (auto& q : reqs) EXPECT_EQ(a[q.id].token_ids, b[q.id].token_ids) << q.id;
  EXPECT_EQ(s_on.prefix_hits, 6);   // 3 of 4 questions per image reuse the first one's KV
  EXPECT_EQ(s_off.prefix_hits, 0);
  EXPECT_EQ(s_on.image_hits, 6);    // each image is encoded once
  EXPECT_LT(s_on.prompt_tokens, s_off.prompt_tokens + 1);  // same positions accounted
}

TEST(Engine, BadRequestsFailAloneAndOthersFinish) {
  auto reqs = manifest_requests("next_mistral", 4);
  stic::GenRequest bad_image;
  bad_image.id = "bad-image";
  bad_image.image = fixture("images/truncated.jpg");
  bad_image.prompt = "x";
  stic::GenRequest missing = bad_image;
  missing.id = "missing";
  missing.image = "/nonexistent/x.jpg";
  stic::GenRequest markers = bad_image;
  markers.id = "markers";
  markers.image = fixture("images/china.jpg");
  markers.prompt = "<image> <image>";
  reqs.insert(reqs.begin() + 1, bad_image);
  reqs.push_back(missing);
  reqs.push_back(markers);
  stic::EngineOptions o;
  o.max_batch = 2;
  stic::EngineStats st;
  auto out = run(runner("next_mistral"), reqs, o, &st);
  EXPECT_NE(out["bad-image"].error.find("truncated.jpg"), std::string::npos) << out["bad-image"].error;
  EXPECT_NE(out["missing"].error.find("/nonexistent/x.jpg"), std::string::npos);
  EXPECT_NE(out["markers"].error.find("2 <image> markers"), std::string::npos) << out["markers"].error;
  EXPECT_EQ(st.failed, 3);
  const auto m = manifest();
  for (auto& c : m["cases"]) {
    if (c["model"] != "next_mistral") continue;
    auto want = c["greedy"].get<std::vector<int32_t>>();
    want.resize(4);
    EXPECT_EQ(out[c["case"]].token_ids, want);
  }
}

TEST(Engine, StopStringsCutTheText) {
  auto reqs = manifest_requests("next_mistral", 16);
  stic::EngineOptions o;
  auto full = run(runner("next_mistral"), reqs, o);
  auto& first = full.at(reqs[0].id);
  ASSERT_GE(first.text.size(), 4u);
  reqs[0].stop = {first.text.substr(2, 2)};
  auto cut = run(runner("next_mistral"), reqs, o);
  EXPECT_EQ(cut[reqs[0].id].finish_reason, "stop");
  EXPECT_EQ(cut[reqs[0].id].text, first.text.substr(0, first.text.find(first.text.substr(2, 2))));
  EXPECT_LT(cut[reqs[0].id].token_ids.size(), first.token_ids.size());
}

}  // namespace

// The CUDA decode attention kernels against a fp32 reference on ragged slots (lengths 1..L-1),
// GQA 8 query / 2 KV heads. The dense kernel attends over every slot's [0, attend_len) and
// corrects for the zero keys past each slot's length; with a non-zero tail it must be wrong,
// which shows the test sees the tail at all.
TEST(DecodeAttention, FlashKernelsMatchReferenceOnRaggedSlots) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(7);
  const int64_t S = 5, H = 8, HKV = 2, D = 64, L = 320, rep = H / HKV;
  const std::vector<int64_t> len = {1, 17, 128, 200, 299};  // keys per slot (write_pos = len - 1)
  const int64_t attend = 300;
  auto opt = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  auto kstore = torch::zeros({S, L, HKV, D}, opt), vstore = torch::zeros({S, L, HKV, D}, opt);
  for (int64_t s = 0; s < S; ++s) {
    kstore[s].narrow(0, 0, len[s]).copy_(torch::randn({len[s], HKV, D}, opt));
    vstore[s].narrow(0, 0, len[s]).copy_(torch::randn({len[s], HKV, D}, opt));
  }
  auto kc = kstore.permute({0, 2, 1, 3}), vc = vstore.permute({0, 2, 1, 3});  // (S, Hkv, L, D) views
  auto q = torch::randn({S, H, 1, D}, opt) * 2;
  auto wpos = torch::tensor(len, torch::kInt64).to(torch::kCUDA) - 1;
  // reference: fp32 softmax over each slot's own keys
  std::vector<torch::Tensor> ref;
  for (int64_t s = 0; s < S; ++s) {
    auto k = kc[s].narrow(1, 0, len[s]).to(torch::kFloat32), v = vc[s].narrow(1, 0, len[s]).to(torch::kFloat32);
    auto qs = q[s].to(torch::kFloat32).view({HKV, rep, D});
    auto p = torch::softmax(torch::matmul(qs, k.transpose(1, 2)) / std::sqrt(double(D)), -1);
    ref.push_back(torch::matmul(p, v).view({H, 1, D}));
  }
  auto reference = torch::stack(ref, 0);
  auto err = [&](const torch::Tensor& o) { return (o.to(torch::kFloat32) - reference).abs().max().item<double>(); };
  EXPECT_LT(err(stic::flash_decode(q, kc, vc, wpos, attend)), 2e-2);
  EXPECT_LT(err(stic::flash_decode_dense(q, kc, vc, wpos, attend)), 2e-2);
  // cuDNN with the padding mask the engine builds; attend = 300 is not a multiple of 8 (aligned inside)
  auto allowed = torch::arange(attend, wpos.options()).unsqueeze(0) <= wpos.unsqueeze(1);
  auto mask = torch::zeros({S, 1, 1, attend}, opt).masked_fill(allowed.logical_not().view({S, 1, 1, attend}),
                                                               -std::numeric_limits<float>::infinity());
  EXPECT_LT(err(stic::cudnn_decode(q, kc, vc, mask)), 2e-2);
  // garbage past slot 0's single key: the dense kernel's correction no longer holds
  kstore[0].narrow(0, 1, 50).fill_(1.0);
  vstore[0].narrow(0, 1, 50).fill_(3.0);
  EXPECT_GT(err(stic::flash_decode_dense(q, kc, vc, wpos, attend)), 0.5);
  EXPECT_LT(err(stic::flash_decode(q, kc, vc, wpos, attend)), 2e-2);  // varlen reads only [0, len)
  EXPECT_LT(err(stic::cudnn_decode(q, kc, vc, mask)), 2e-2);           // the mask hides the garbage
  // and the mask is what hides it: without it cuDNN attends to the garbage keys
  EXPECT_GT(err(stic::cudnn_decode(q, kc, vc, torch::zeros_like(mask))), 0.5);
}
