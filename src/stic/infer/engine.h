// stic/infer/engine.h — batched generation with a preallocated KV cache and continuous batching.
//
// A fixed number of slots share one static KV cache (S, Hkv, L, D) per layer. Requests wait in
// a queue; a free slot takes the next request at once (prefill: tokenize, image features —
// encoded once per image and cached —, prompt KV written into the slot), then every step
// decodes one token for all slots together. A finished sequence frees its slot immediately.
// Requests that share an image and the prompt up to the image reuse that prefix's KV instead of
// recomputing it (STIC asks several questions of one image).
//
// Sampling is per request: temperature / top-k / top-p by inverse-CDF with a uniform number
// derived from (request seed, step) only, so a request's tokens do not depend on which batch or
// slot it landed in. Greedy = temperature 0.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stic/model/loaded_model.h"

namespace stic {

struct GenRequest {
  std::string id;
  std::string image;                  // "" = text only
  ImageTransform transform;           // applied to the decoded image before preprocessing
  std::string prompt;
  std::string template_name = "auto";
  int max_new_tokens = 512;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;                      // 0 = off
  uint64_t seed = 0;
  std::vector<std::string> stop;      // stop strings (the text is cut before them)
  bool want_logits = false;           // keep the last prompt position's logits
};

// The ranges every sampling setting must be in, for CLI flags and per-request fields alike:
// temperature finite and >= 0, top_p in (0, 1], top_k >= 0, max_new_tokens >= 1. Returns what is
// wrong ("" when nothing), naming the field as the request file spells it.
std::string sampling_error(double temperature, double top_p, int64_t top_k, int64_t max_new_tokens);

struct GenResult {
  std::string id;
  std::string error;                  // non-empty: the request failed (text etc. unset)
  // what failed: "prompt" (template / <image> markers), "image" (missing, unreadable or
  // undecodable file), "request" (anything else, e.g. longer than the cache)
  std::string error_kind;
  std::string text;
  std::vector<int32_t> token_ids;     // generated tokens (EOS included when produced)
  int64_t num_input_tokens = 0;       // decoder positions of the prompt, image features included
  int64_t num_image_tokens = 0;
  std::string finish_reason;          // "eos" | "length" | "stop"
  torch::Tensor last_logits;          // (V) fp32 CPU, when want_logits
};

struct EngineOptions {
  int max_batch = 16;          // slots
  int64_t max_seq_len = 0;     // cache length per slot; 0 = from the requests (upper bound)
  bool share_prefix = true;    // reuse the KV of (image, prompt prefix) across requests
  int prefix_cache = 8;        // prefixes kept (LRU)
  int image_cache = 64;        // encoded images kept (LRU)
  bool ignore_eos = false;     // benchmarks: always generate max_new_tokens
  // Fast paths, each beside its plain reference (tests/unit/torch_fastpaths.cpp compares them):
  DecodeAttention decode_attention = DecodeAttention::Auto;  // model/kv_cache.h
  KvWrite kv_write = KvWrite::IndexCopy;
  bool fuse_projections = true;  // CUDA: q/k/v and gate/up as one GEMM each
  bool cuda_graphs = true;       // CUDA build + device: decode steps replayed as CUDA graphs
  bool kv_token_major = false;   // store the cache (S, L, Hkv, D) also on CPU (always on CUDA)
};

// The environment switches of the engine's fast paths (docs/generation.md), read here and only
// here, over `o`: STIC_DECODE_ATTN=auto|cudnn|flash|dense|manual|sdpa, STIC_KV_WRITE=index_put,
// STIC_FUSE=0, STIC_CUDA_GRAPHS=0, STIC_KV_TOKEN_MAJOR=1. The verbs' engines start from it;
// a test that builds EngineOptions itself does not see the environment.
EngineOptions engine_options_from_env(EngineOptions o = {});

struct EngineStats {
  int64_t requests = 0, failed = 0, prompt_tokens = 0, generated_tokens = 0, decode_steps = 0;
  int64_t prefix_hits = 0, image_hits = 0;
  int64_t prefill_positions = 0;  // prompt positions computed (prompt_tokens minus reused prefixes)
  int64_t kv_tokens_read = 0;     // sum over decode steps of the active slots' lengths (for the bandwidth bound)
  int64_t slot_steps = 0;         // sum over decode steps of active slots (tokens decoded in steps)
  int64_t cuda_graphs = 0;        // decode-step CUDA graphs captured (0: eager steps)
  double seconds = 0, prefill_seconds = 0, decode_seconds = 0;
  double image_load_seconds = 0;  // part of prefill: host time spent on (or, on a GPU, waiting for) image loading
};

// The counters and timings as JSON (the --stats files of the generation verbs, read by bench/).
nlohmann::json engine_stats_json(const EngineStats& s);

// Progress callback: (finished requests, total, generated tokens so far).
using EngineProgress = std::function<void(int64_t, int64_t, int64_t)>;

class Progress;
// An EngineProgress that moves `bar` to the finished count and shows generated tokens/s.
// The bar counts units of `requests_per_unit` finished requests (2: an image of generate-pref).
EngineProgress progress_with_token_rate(Progress& bar, int requests_per_unit = 1);

class Engine {
 public:
  Engine(LoadedModel& model, EngineOptions opts);
  // Runs every request; `on_result` is called as each finishes (completion order).
  EngineStats run(const std::vector<GenRequest>& requests, const std::function<void(GenResult&)>& on_result,
                  const EngineProgress& progress = {});
  const EngineOptions& options() const { return opts_; }

 private:
  LoadedModel& lm_;
  EngineOptions opts_;
};

// The uniform number in [0, 1) that request `seed` uses at decode step `step`.
double sample_uniform(uint64_t seed, uint64_t step);
// Derives a per-request seed from a run seed and the request id (stable across runs).
uint64_t request_seed(uint64_t run_seed, const std::string& id);

}  // namespace stic
