// stic/infer/decode_graph.h — the engine's decode step replayed from CUDA graphs.
//
// At batch 64 a 7B decode step launches ~2000 small kernels; launched one by one from the host
// they cost more than the GPU work itself. A captured graph replays them with one launch. The
// graph's inputs are static device tensors (last tokens, write positions); the attention reads a
// fixed key length per graph, so graphs are kept per bucket of 128 key positions (the mask hides
// the positions a slot has not reached). CPU builds, and EngineOptions::cuda_graphs = false (STIC_CUDA_GRAPHS=0), use the eager path.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>

#include "stic/model/llava.h"

namespace stic {

class DecodeGraphs {
 public:
  // `cache` is the engine's static cache (S slots); the graphs write into it.
  DecodeGraphs(Llava model, KVCache* cache, int64_t slots);
  ~DecodeGraphs();
  static bool supported(const torch::Device& device);  // a CUDA build, a CUDA device, no STIC_PROFILE=1
  // One decode step: tokens (S) and write positions (S) on the host; attends over `attend_len`
  // keys (rounded up to the bucket). Returns the last-position logits (S, V) fp32 on the device,
  // valid until the next call.
  torch::Tensor step(const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions, int64_t attend_len);
  int64_t graphs_captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// STIC_TRACE=FILE.json: a Kineto trace (host ops and CUDA kernels, graph-replayed ones included)
// of decode steps [STIC_TRACE_FROM, STIC_TRACE_FROM + STIC_TRACE_STEPS) (defaults 64 and 8) —
// or, with STIC_TRACE_WHAT=prefill, of the prefills of admitted requests in that range — saved
// in Chrome trace format for bench/trace_summary.py or chrome://tracing. CUDA builds only;
// without STIC_TRACE it does nothing.
class StepTrace {
 public:
  StepTrace();
  ~StepTrace();                        // ends a trace still open (saves it)
  void before_step(int64_t step);      // call before decode step `step` (0-based)
  void before_prefill(int64_t admitted);  // call before the prefill of the `admitted`-th request
 private:
  void at(int64_t n);
  void stop();
  std::string path_;
  int64_t from_ = 64, steps_ = 8;
  bool prefill_ = false, on_ = false;
};

// The key length a CUDA decode step attends over: `attend_len` rounded up to the 128-key bucket
// (capped at the cache length L). One graph is captured per bucket, and the eager CUDA path uses
// the same lengths (cuDNN builds a plan per length); the mask hides the keys past each slot.
inline int64_t decode_key_bucket(int64_t attend_len, int64_t L) {
  return std::min<int64_t>(L, (attend_len + 127) / 128 * 128);
}

// Hands the CUDA caching allocator's unused blocks back to the driver (no-op without CUDA).
void cuda_release_cached_memory();

// The eager decode step the graphs capture (also the CPU path): embeds -> decoder -> logits.
torch::Tensor decode_step_eager(Llava& model, KVCache& cache, const torch::Tensor& tokens /*(S,1) i64*/,
                                const torch::Tensor& positions /*(S) i64*/, int64_t attend_len);

}  // namespace stic
