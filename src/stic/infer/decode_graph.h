// stic/infer/decode_graph.h — the engine's decode step replayed from CUDA graphs.
//
// At batch 64 a 7B decode step launches ~2000 small kernels; launched one by one from the host
// they cost more than the GPU work itself. A captured graph replays them with one launch. The
// graph's inputs are static device tensors (last tokens, write positions); the attention reads a
// fixed key length per graph, so graphs are kept per bucket of 128 key positions (the mask hides
// the positions a slot has not reached). CPU builds, and STIC_CUDA_GRAPHS=0, use the eager path.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>

#include "stic/model/llava.h"

namespace stic {

class DecodeGraphs {
 public:
  // `cache` is the engine's static cache (S slots); the graphs write into it.
  DecodeGraphs(Llava model, KVCache* cache, int64_t slots);
  ~DecodeGraphs();
  static bool supported(const torch::Device& device);  // a CUDA build, a CUDA device, not disabled
  // One decode step: tokens (S) and write positions (S) on the host; attends over `attend_len`
  // keys (rounded up to the bucket). Returns the last-position logits (S, V) fp32 on the device,
  // valid until the next call.
  torch::Tensor step(const std::vector<int64_t>& tokens, const std::vector<int64_t>& positions, int64_t attend_len);
  int64_t graphs_captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The eager decode step the graphs capture (also the CPU path): embeds -> decoder -> logits.
torch::Tensor decode_step_eager(Llava& model, KVCache& cache, const torch::Tensor& tokens /*(S,1) i64*/,
                                const torch::Tensor& positions /*(S) i64*/, int64_t attend_len);

}  // namespace stic
