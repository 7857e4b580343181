// Every switchable fast path of the engine beside its plain reference, in one harness (as
// ggml's test-backend-ops): the KV write (index_copy_ vs index_put_), the KV layout
// (token-major vs head-major), decode attention (batched GEMMs, SDPA, and on a GPU cuDNN and
// FlashAttention-2 varlen / dense), prefix reuse, and on a GPU fused projections and CUDA graphs.
// On CPU the paths that need CUDA are skipped; STIC_PARITY_DEVICE=cuda runs this file on a GPU
// (bench/fastpaths_gpu.sh).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

#include "engine_helpers.h"
#include "stic/infer/runner.h"
#include "stic/model/lora.h"
#include "stic/util/error.h"

namespace {
using namespace stic_test;

torch::Device test_device() {
  const char* d = std::getenv("STIC_PARITY_DEVICE");
  return stic::parse_device(d && *d ? d : "cpu");
}

// The plain reference configuration: index_put_, head-major cache, SDPA, no prefix reuse, no
// fused projections, no CUDA graphs.
stic::EngineOptions reference_options() {
  stic::EngineOptions o;
  o.max_batch = 3;
  o.kv_write = stic::KvWrite::IndexPut;
  o.decode_attention = stic::DecodeAttention::Sdpa;
  o.share_prefix = false;
  o.fuse_projections = false;
  o.cuda_graphs = false;
  o.kv_token_major = false;
  return o;
}

struct FastPath {
  const char* name;
  std::function<void(stic::EngineOptions&)> set;
  bool needs_cuda;
};

// Fused projections last: fusing turns the model's weights into views for good.
const std::vector<FastPath>& fast_paths() {
  static const std::vector<FastPath> p = {
      {"kv_write_index_copy", [](stic::EngineOptions& o) { o.kv_write = stic::KvWrite::IndexCopy; }, false},
      {"kv_token_major", [](stic::EngineOptions& o) { o.kv_token_major = true; }, false},
      {"attention_gemm", [](stic::EngineOptions& o) { o.decode_attention = stic::DecodeAttention::Gemm; }, false},
      // on a CPU, auto is the SDPA reference itself
      {"attention_auto", [](stic::EngineOptions& o) { o.decode_attention = stic::DecodeAttention::Auto; }, true},
      {"prefix_reuse", [](stic::EngineOptions& o) { o.share_prefix = true; }, false},
      {"attention_flash", [](stic::EngineOptions& o) { o.decode_attention = stic::DecodeAttention::Flash; }, true},
      {"attention_flash_dense", [](stic::EngineOptions& o) { o.decode_attention = stic::DecodeAttention::FlashDense; }, true},
      {"cuda_graphs", [](stic::EngineOptions& o) { o.cuda_graphs = true; }, true},
      {"all_defaults", [](stic::EngineOptions& o) { o = stic::EngineOptions{}; o.max_batch = 3; }, false},
      {"fused_projections", [](stic::EngineOptions& o) { o.fuse_projections = true; }, true},
  };
  return p;
}

// Every fast path gives the reference configuration's greedy tokens on one mixed batch (images
// of different grids, shared-image questions, text only), and the reference configuration gives
// the single-sequence reference decoder's (infer/runner.h).
TEST(FastPaths, EachGivesTheReferenceTokens) {
  stic::LoadOptions lo;
  lo.device = test_device();
  stic::LoadedModel m(fixture("parity/next_mistral"), lo);  // own copy: fusing changes it
  auto reqs = mixed_requests();
  for (const char* qtext : {"What colours do you see?", "Count the objects."}) {  // prefixes to reuse
    stic::GenRequest q = reqs[0];
    q.id = std::string("shared_") + qtext;
    q.prompt = qtext;
    q.max_new_tokens = 6;
    reqs.push_back(q);
  }
  const auto want = run(m, reqs, reference_options());
  for (const auto& q : reqs) {
    stic::ChatRequest c;
    c.image = q.image;
    c.prompt = q.prompt;
    c.template_name = q.template_name;
    c.max_new_tokens = q.max_new_tokens;
    EXPECT_EQ(want.at(q.id).token_ids, stic::reference_chat(m, c).token_ids) << "reference config vs reference_chat: " << q.id;
  }
  int exercised = 0;
  for (const auto& fp : fast_paths()) {
    if (fp.needs_cuda && !lo.device.is_cuda()) {
      std::printf("[ fastpath ] %-22s skipped (needs CUDA)\n", fp.name);
      continue;
    }
    stic::EngineOptions o = reference_options();
    fp.set(o);
    stic::EngineStats st;
    const auto got = run(m, reqs, o, &st);
    int same = 0;
    for (const auto& q : reqs) {
      EXPECT_EQ(got.at(q.id).token_ids, want.at(q.id).token_ids) << fp.name << ": " << q.id;
      same += got.at(q.id).token_ids == want.at(q.id).token_ids;
    }
    std::printf("[ fastpath ] %-22s %d/%zu requests identical (prefix hits %lld, graphs %lld)\n", fp.name, same,
                reqs.size(), static_cast<long long>(st.prefix_hits), static_cast<long long>(st.cuda_graphs));
    if (std::string(fp.name) == "prefix_reuse") {
      EXPECT_GT(st.prefix_hits, 0);
    }
    if (std::string(fp.name) == "cuda_graphs") {
      EXPECT_GT(st.cuda_graphs, 0);
    }
    ++exercised;
  }
  EXPECT_GE(exercised, 4);
}

TEST(FastPaths, EnvironmentSwitchesAreReadInOnePlace) {
  ::setenv("STIC_DECODE_ATTN", "manual", 1);
  ::setenv("STIC_KV_WRITE", "index_put", 1);
  ::setenv("STIC_FUSE", "0", 1);
  ::setenv("STIC_CUDA_GRAPHS", "0", 1);
  ::setenv("STIC_KV_TOKEN_MAJOR", "1", 1);
  const auto o = stic::engine_options_from_env();
  EXPECT_EQ(o.decode_attention, stic::DecodeAttention::Gemm);
  EXPECT_EQ(o.kv_write, stic::KvWrite::IndexPut);
  EXPECT_FALSE(o.fuse_projections);
  EXPECT_FALSE(o.cuda_graphs);
  EXPECT_TRUE(o.kv_token_major);
  ::setenv("STIC_DECODE_ATTN", "bogus", 1);
  EXPECT_THROW(stic::engine_options_from_env(), stic::Error);
  for (const char* v : {"STIC_DECODE_ATTN", "STIC_KV_WRITE", "STIC_FUSE", "STIC_CUDA_GRAPHS", "STIC_KV_TOKEN_MAJOR"})
    ::unsetenv(v);
  const auto d = stic::engine_options_from_env();
  EXPECT_EQ(d.decode_attention, stic::DecodeAttention::Auto);
  EXPECT_TRUE(d.fuse_projections);
  EXPECT_TRUE(d.cuda_graphs);
  EXPECT_FALSE(d.kv_token_major);
}

// The token-major KV storage (what CUDA uses for the flash decode kernel) gives the same tokens.
// A Mistral sliding window (32 keys) shorter than every prompt: each path, the prefill of a shared
// prefix's suffix and every decode step included, gives HF's greedy tokens (the FlashAttention-2
// paths, which read every key below a slot's length, step aside for the masked kernels).
TEST(FastPaths, SlidingWindowOnEveryPathGivesHFTokens) {
  const auto m = manifest();
  std::map<std::string, std::vector<int32_t>> want;
  for (auto& c : m["cases"])
    if (c["model"] == "swa_mistral") want[c["case"]] = c["greedy"].get<std::vector<int32_t>>();
  if (want.empty()) GTEST_SKIP() << "no swa_mistral fixture (tools/make_bite_fixtures.py)";
  stic::LoadOptions lo;
  lo.device = test_device();
  stic::LoadedModel sw(fixture("parity/swa_mistral"), lo);  // own copy: fusing changes it
  ASSERT_EQ(sw.config().text.sliding_window, 32);
  auto reqs = manifest_requests("swa_mistral");
  stic::GenRequest again = reqs[0];  // the same image and template again: a prefix to reuse
  again.id = "again";
  reqs.push_back(again);
  want["again"] = want.at(reqs[0].id);
  std::vector<std::pair<const char*, std::function<void(stic::EngineOptions&)>>> paths = {
      {"reference", [](stic::EngineOptions&) {}}};
  for (const auto& fp : fast_paths()) {
    if (!fp.needs_cuda || lo.device.is_cuda()) paths.push_back({fp.name, fp.set});
  }
  for (auto& [name, set] : paths) {
    stic::EngineOptions o = reference_options();
    set(o);
    stic::EngineStats st;
    const auto got = run(sw, reqs, o, &st);
    for (const auto& q : reqs) {
      EXPECT_EQ(got.at(q.id).token_ids, want.at(q.id)) << name << ": " << q.id;
    }
    if (std::string(name) == "prefix_reuse") {
      EXPECT_GT(st.prefix_hits, 0);
    }
  }
}

TEST(Engine, TokenMajorCacheLayoutSameTokens) {
  auto reqs = mixed_requests();
  stic::EngineOptions o;
  o.max_batch = 3;
  auto a = run(runner("next_mistral"), reqs, o);
  o.kv_token_major = true;
  auto b = run(runner("next_mistral"), reqs, o);
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

}  // namespace

// The CUDA decode attention kernels against a fp32 reference on ragged slots (lengths 1..L-1),
// GQA 8 query / 2 KV heads. The dense kernel attends over every slot's [0, attend_len) and
// corrects for the zero keys past each slot's length; with a non-zero tail it must be wrong,
// which shows the test sees the tail at all.
// tests/e2e/gpu_tests.sh sets STIC_REQUIRE_CUDA on a machine with a GPU: a stic built without
// CUDA (or a driver libtorch cannot use) must fail there rather than run the GPU suite on the CPU.
TEST(GpuBuild, CudaIsUsableWhereRequired) {
  const char* req = std::getenv("STIC_REQUIRE_CUDA");
  if (!req || !*req) GTEST_SKIP() << "STIC_REQUIRE_CUDA not set (tests/e2e/gpu_tests.sh sets it)";
  ASSERT_TRUE(torch::cuda::is_available()) << "a GPU is present but this libtorch build cannot use it";
  EXPECT_TRUE(test_device().is_cuda()) << "STIC_PARITY_DEVICE is not a CUDA device";
}

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
