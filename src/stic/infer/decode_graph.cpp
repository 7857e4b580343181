#include "stic/infer/decode_graph.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <limits>
#include <string>

#include "stic/util/error.h"

#ifdef STIC_WITH_CUDA
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/cuda.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace stic {

torch::Tensor decode_step_eager(Llava& model, KVCache& cache, const torch::Tensor& tokens,
                                const torch::Tensor& positions, int64_t attend_len) {
  const int64_t s = tokens.size(0);
  const auto dtype = model->language_model->lm_head->weight.scalar_type();
  auto keys = torch::arange(attend_len, positions.options()).unsqueeze(0);
  auto allowed = keys <= positions.unsqueeze(1);  // (S, Lr)
  // Mistral's sliding window: a key at least `window` behind the query is out of sight
  const int64_t window = model->cfg.text.sliding_window;
  if (window > 0 && attend_len > window) allowed = allowed.logical_and(keys > positions.unsqueeze(1) - window);
  auto mask = torch::zeros({s, 1, 1, attend_len}, torch::TensorOptions().dtype(dtype).device(positions.device()))
                  .masked_fill(allowed.logical_not().view({s, 1, 1, attend_len}),
                               -std::numeric_limits<float>::infinity());
  cache.write_pos = positions;
  cache.attend_len = attend_len;
  cache.slot = -1;
  auto logits = model->forward_embeds(model->embed_tokens(tokens), positions.unsqueeze(1), &cache, true, mask);
  return logits.select(1, 0);  // (S, V) fp32
}

bool DecodeGraphs::supported(const torch::Device& device) {
#ifdef STIC_WITH_CUDA
  const char* p = std::getenv("STIC_PROFILE");  // synchronising profiler: not inside a capture
  return device.is_cuda() && !(p && std::string(p) == "1");
#else
  (void)device;
  return false;
#endif
}

void cuda_release_cached_memory() {
#ifdef STIC_WITH_CUDA
  c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

StepTrace::StepTrace() {
  const char* p = std::getenv("STIC_TRACE");
  if (!p || !*p) return;
#ifdef STIC_WITH_CUDA
  path_ = p;
  if (const char* f = std::getenv("STIC_TRACE_FROM")) from_ = std::atoll(f);
  if (const char* n = std::getenv("STIC_TRACE_STEPS")) steps_ = std::max<int64_t>(1, std::atoll(n));
  if (const char* w = std::getenv("STIC_TRACE_WHAT")) prefill_ = std::string(w) == "prefill";
#else
  std::fprintf(stderr, "stic: STIC_TRACE needs a CUDA build of stic; not tracing\n");
#endif
}

StepTrace::~StepTrace() {
  try {
    stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stic: saving the trace failed: %s\n", e.what());
  }
}

#ifdef STIC_WITH_CUDA
namespace {
const std::set<torch::profiler::impl::ActivityType> kTraceActivities = {torch::profiler::impl::ActivityType::CPU,
                                                                        torch::profiler::impl::ActivityType::CUDA};
}

void StepTrace::before_step(int64_t step) {
  if (!prefill_) at(step);
}
void StepTrace::before_prefill(int64_t admitted) {
  if (prefill_) at(admitted);
}

void StepTrace::at(int64_t step) {
  if (path_.empty()) return;
  if (step >= from_ && step < from_ + steps_ && !on_) {  // >=: a prefill that failed early skips its call
    try {
      torch::cuda::synchronize();
      torch::profiler::impl::ProfilerConfig cfg(torch::profiler::impl::ProfilerState::KINETO);
      torch::autograd::profiler::prepareProfiler(cfg, kTraceActivities);
      torch::autograd::profiler::enableProfiler(cfg, kTraceActivities);
      on_ = true;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stic: STIC_TRACE: the profiler could not start (%s); not tracing\n", e.what());
      path_.clear();
    }
  } else if (step >= from_ + steps_) {
    stop();
  }
}

void StepTrace::stop() {
  if (!on_) return;
  on_ = false;
  torch::cuda::synchronize();
  auto result = torch::autograd::profiler::disableProfiler();
  result->save(path_);
  std::fprintf(stderr, "stic: trace of %s %lld..%lld written to %s\n", prefill_ ? "prefills" : "decode steps",
               static_cast<long long>(from_),
               static_cast<long long>(from_ + steps_ - 1), path_.c_str());
  path_.clear();
}
#else
void StepTrace::before_step(int64_t) {}
void StepTrace::before_prefill(int64_t) {}
void StepTrace::at(int64_t) {}
void StepTrace::stop() {}
#endif

#ifdef STIC_WITH_CUDA
struct DecodeGraphs::Impl {
  Llava model{nullptr};
  KVCache* cache;
  int64_t slots;
  torch::Tensor tokens_dev, pos_dev;      // static inputs (S,1), (S)
  torch::Tensor tokens_host, pos_host;    // pinned staging
  struct Captured {
    std::unique_ptr<at::cuda::CUDAGraph> graph;
    torch::Tensor logits;                 // static output (S, V)
  };
  std::map<int64_t, Captured> graphs;     // by bucketed attend length
  at::cuda::MempoolId_t pool{0, 0};
};

DecodeGraphs::DecodeGraphs(Llava model, KVCache* cache, int64_t slots) : impl_(std::make_unique<Impl>()) {
  impl_->model = model;
  impl_->cache = cache;
  impl_->slots = slots;
  const auto dev = model->language_model->lm_head->weight.device();
  impl_->tokens_dev = torch::zeros({slots, 1}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  impl_->pos_dev = torch::zeros({slots}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  impl_->tokens_host = torch::zeros({slots, 1}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(true));
  impl_->pos_host = torch::zeros({slots}, torch::TensorOptions().dtype(torch::kInt64).pinned_memory(true));
}

DecodeGraphs::~DecodeGraphs() = default;

int64_t DecodeGraphs::graphs_captured() const { return static_cast<int64_t>(impl_->graphs.size()); }

torch::Tensor DecodeGraphs::step(const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions,
                                 int64_t attend_len) {
  auto& I = *impl_;
  const int64_t L = I.cache->k.at(0).size(2);
  const int64_t bucket = decode_key_bucket(attend_len, L);
  std::copy(tokens.begin(), tokens.end(), I.tokens_host.data_ptr<int64_t>());
  std::copy(positions.begin(), positions.end(), I.pos_host.data_ptr<int64_t>());
  I.tokens_dev.copy_(I.tokens_host, /*non_blocking=*/true);
  I.pos_dev.copy_(I.pos_host, /*non_blocking=*/true);
  auto it = I.graphs.find(bucket);
  if (it == I.graphs.end()) {
    Impl::Captured c;
    c.graph = std::make_unique<at::cuda::CUDAGraph>();
    auto side = c10::cuda::getStreamFromPool();
    auto main = c10::cuda::getCurrentCUDAStream();
    at::cuda::CUDAEvent ready;
    ready.record(main);
    ready.block(side);
    {
      c10::cuda::CUDAStreamGuard guard(side);
      // warm-up outside the capture (cuBLAS handles, workspaces); it also computes this step
      decode_step_eager(I.model, *I.cache, I.tokens_dev, I.pos_dev, bucket);
      c.graph->capture_begin(I.pool);
      c.logits = decode_step_eager(I.model, *I.cache, I.tokens_dev, I.pos_dev, bucket);
      c.graph->capture_end();
    }
    if (I.pool.first == 0 && I.pool.second == 0) I.pool = c.graph->pool();  // later graphs share its memory
    at::cuda::CUDAEvent done;
    done.record(side);
    done.block(main);
    it = I.graphs.emplace(bucket, std::move(c)).first;
  }
  it->second.graph->replay();
  return it->second.logits;
}
#else
struct DecodeGraphs::Impl {};
DecodeGraphs::DecodeGraphs(Llava, KVCache*, int64_t) { fail("CUDA graphs need a CUDA build of stic"); }
DecodeGraphs::~DecodeGraphs() = default;
int64_t DecodeGraphs::graphs_captured() const { return 0; }
torch::Tensor DecodeGraphs::step(const std::vector<int64_t>&, const std::vector<int64_t>&, int64_t) {
  fail("CUDA graphs need a CUDA build of stic");
}
#endif

}  // namespace stic
