#include "stic/infer/engine.h"

#include <algorithm>
#include <cmath>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <system_error>
#include <unordered_map>

#include "stic/infer/decode_graph.h"
#include "stic/util/error.h"
#include "stic/util/profile.h"
#include "stic/util/progress.h"
#include "stic/util/rng.h"

namespace stic {

std::string sampling_error(double temperature, double top_p, int64_t top_k, int64_t max_new_tokens) {
  if (!std::isfinite(temperature) || temperature < 0) return str_cat("temperature must be a finite number >= 0 (got ", temperature, ")");
  if (!std::isfinite(top_p) || top_p <= 0 || top_p > 1) return str_cat("top_p must be in (0, 1] (got ", top_p, ")");
  if (top_k < 0) return str_cat("top_k must be >= 0 (got ", top_k, ")");
  if (max_new_tokens < 1) return str_cat("max_new_tokens must be at least 1 (got ", max_new_tokens, ")");
  return "";
}

namespace {

// What the image and prefix caches key on: the file and the transform applied to it.
std::string image_key(const GenRequest& q) {
  return q.transform.none() ? q.image : q.image + '\x1e' + q.transform.key();
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A small LRU map (key -> value), bounded by entry count.
template <typename V>
class Lru {
 public:
  explicit Lru(size_t cap) : cap_(cap) {}
  bool contains(const std::string& k) const { return map_.count(k) > 0; }
  V* get(const std::string& k) {
    auto it = map_.find(k);
    if (it == map_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second.second);
    return &it->second.first;
  }
  void put(const std::string& k, V v) {
    if (cap_ == 0) return;
    auto it = map_.find(k);
    if (it != map_.end()) {
      it->second.first = std::move(v);
      order_.splice(order_.begin(), order_, it->second.second);
      return;
    }
    order_.push_front(k);
    map_.emplace(k, std::make_pair(std::move(v), order_.begin()));
    while (map_.size() > cap_) {
      map_.erase(order_.back());
      order_.pop_back();
    }
  }

 private:
  size_t cap_;
  std::list<std::string> order_;
  std::unordered_map<std::string, std::pair<V, std::list<std::string>::iterator>> map_;
};

struct ImageEntry {
  torch::Tensor feats;  // (n, C) on device
  std::string error;
};

struct PrefixEntry {
  std::vector<torch::Tensor> k, v;  // per layer (Hkv, P, D)
  int64_t length = 0;
};

struct Slot {
  bool active = false;
  size_t req = 0;
  int64_t len = 0;  // positions filled in the cache
  int64_t step = 0;
  int64_t last_token = 0;
  int64_t max_new = 0;  // the request's max_new_tokens, bounded by the model's context
  GenResult result;
};

}  // namespace

double sample_uniform(uint64_t seed, uint64_t step) {
  const uint64_t x = splitmix64(splitmix64(seed) ^ (step * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull));
  return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
}

uint64_t request_seed(uint64_t run_seed, const std::string& id) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the id
  for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
  return splitmix64(run_seed ^ h);
}

EngineProgress progress_with_token_rate(Progress& bar, int requests_per_unit) {
  const int64_t g = std::max(1, requests_per_unit);
  return [&bar, g](int64_t finished, int64_t, int64_t tokens) {
    bar.set(finished / g);
    const double el = bar.elapsed_s();
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f tok/s", el > 0 ? tokens / el : 0.0);
    bar.set_suffix(buf);
  };
}

nlohmann::json engine_stats_json(const EngineStats& st) {
  return {{"requests", st.requests}, {"failed", st.failed}, {"prompt_tokens", st.prompt_tokens},
          {"generated_tokens", st.generated_tokens}, {"decode_steps", st.decode_steps},
          {"slot_steps", st.slot_steps}, {"kv_tokens_read", st.kv_tokens_read},
          {"prefix_hits", st.prefix_hits}, {"image_hits", st.image_hits},
          {"prefill_positions", st.prefill_positions}, {"seconds", st.seconds},
          {"prefill_seconds", st.prefill_seconds}, {"decode_seconds", st.decode_seconds},
          {"image_load_seconds", st.image_load_seconds}, {"cuda_graphs", st.cuda_graphs}};
}

EngineOptions engine_options_from_env(EngineOptions o) {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("STIC_DECODE_ATTN").empty()) o.decode_attention = decode_attention_from_name(env("STIC_DECODE_ATTN"));
  if (env("STIC_KV_WRITE") == "index_put") o.kv_write = KvWrite::IndexPut;
  if (env("STIC_FUSE") == "0") o.fuse_projections = false;
  if (env("STIC_CUDA_GRAPHS") == "0") o.cuda_graphs = false;
  if (!env("STIC_KV_TOKEN_MAJOR").empty() && env("STIC_KV_TOKEN_MAJOR") != "0") o.kv_token_major = true;
  return o;
}

Engine::Engine(LoadedModel& model, EngineOptions opts) : lm_(model), opts_(opts) {
  if (opts_.max_batch < 1) fail("engine: max_batch must be >= 1, got ", opts_.max_batch);
}

namespace {

// Picks the next token for each row of `logits` (R, V) fp32 on device. Greedy rows (T <= 0)
// take the argmax; the others sample by inverse CDF with their own uniform number.
std::vector<int64_t> pick_tokens(const torch::Tensor& logits, const std::vector<const GenRequest*>& reqs,
                                 const std::vector<int64_t>& steps) {
  const int64_t r = logits.size(0);
  auto greedy = logits.argmax(-1);
  bool any_sample = false;
  for (auto* q : reqs)
    if (q && q->temperature > 0) any_sample = true;
  torch::Tensor chosen = greedy;
  if (any_sample) {
    std::vector<float> temp(r, 1.0f), top_p(r, 1.0f), uni(r, 0.0f);
    std::vector<int64_t> top_k(r, 0);
    for (int64_t i = 0; i < r; ++i) {
      if (!reqs[i] || reqs[i]->temperature <= 0) continue;
      temp[i] = reqs[i]->temperature;
      top_p[i] = reqs[i]->top_p;
      top_k[i] = reqs[i]->top_k;
      uni[i] = static_cast<float>(sample_uniform(reqs[i]->seed, static_cast<uint64_t>(steps[i])));
    }
    auto dev = logits.device();
    auto fopt = torch::TensorOptions().dtype(torch::kFloat32);
    auto t_temp = torch::from_blob(temp.data(), {r, 1}, fopt).to(dev);
    auto t_topp = torch::from_blob(top_p.data(), {r, 1}, fopt).to(dev);
    auto t_uni = torch::from_blob(uni.data(), {r, 1}, fopt).to(dev);
    auto t_topk = torch::from_blob(top_k.data(), {r, 1}, torch::TensorOptions().dtype(torch::kInt64)).to(dev);
    auto probs = torch::softmax(logits / t_temp, -1);                         // (R, V)
    auto sorted = probs.sort(-1, /*descending=*/true);
    auto p = std::get<0>(sorted), idx = std::get<1>(sorted);
    auto before = p.cumsum(-1) - p;                                           // mass strictly above
    auto rank = torch::arange(p.size(1), t_topk.options()).unsqueeze(0);
    auto keep = (before < t_topp).logical_and((t_topk <= 0).logical_or(rank < t_topk));
    p = p * keep.to(p.scalar_type());
    auto cdf = p.cumsum(-1);                                                  // (R, V)
    auto target = t_uni * cdf.narrow(1, cdf.size(1) - 1, 1);
    auto pos = torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true).clamp_max(p.size(1) - 1);
    auto sampled = idx.gather(1, pos).squeeze(1);
    std::vector<uint8_t> mask(r, 0);
    for (int64_t i = 0; i < r; ++i) mask[i] = reqs[i] && reqs[i]->temperature > 0;
    auto t_mask = torch::from_blob(mask.data(), {r}, torch::TensorOptions().dtype(torch::kUInt8)).to(dev).to(torch::kBool);
    chosen = torch::where(t_mask, sampled, greedy);
  }
  auto host = chosen.to(torch::kCPU, torch::kInt64).contiguous();
  return std::vector<int64_t>(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + r);
}

// Cuts `text` at the first stop string; returns true when one was found.
bool apply_stop(std::string& text, const std::vector<std::string>& stop) {
  size_t cut = std::string::npos;
  for (auto& s : stop) {
    if (s.empty()) continue;
    auto p = text.find(s);
    if (p != std::string::npos && p < cut) cut = p;
  }
  if (cut == std::string::npos) return false;
  text.resize(cut);
  return true;
}

}  // namespace

EngineStats Engine::run(const std::vector<GenRequest>& requests, const std::function<void(GenResult&)>& on_result,
                        const EngineProgress& progress) {
  torch::NoGradGuard no_grad;
  EngineStats st;
  const double t0 = now_s();
  auto& model = lm_.model();
  const auto& cfg = lm_.config();
  const auto& tok = lm_.tokenizer();
  const auto wopt = model->language_model->lm_head->weight.options();
  const auto device = wopt.device();
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  const int32_t eos = tok.eos_id() >= 0 ? tok.eos_id() : cfg.text.eos_token_id;
  if (device.is_cuda() && opts_.fuse_projections) {  // q/k/v and gate/up as one GEMM each
    if (model->language_model->model->fuse_projections())
      cuda_release_cached_memory();  // the parts' old blocks: back to the driver before the KV cache
  }

  // --- tokenize everything first: errors become results, lengths size the cache
  struct Prepared {
    std::vector<int64_t> ids;
    std::string error;
  };
  std::vector<Prepared> prep(requests.size());
  int64_t max_len = 0;
  // upper bound of image tokens: base + full grid (no unpad) + one newline per row
  int64_t max_img = 0;
  {
    const int64_t side = cfg.vision.tokens_per_side();
    const int64_t per_crop = side * side + 1;
    max_img = per_crop;
    for (auto [h, w] : cfg.pinpoints) {
      const int64_t rows = h / cfg.vision.image_size * side, cols = w / cfg.vision.image_size * side;
      max_img = std::max(max_img, per_crop + rows * (cols + 1));
    }
  }
  // the model's context bounds every sequence: a prompt that fills it is a per-request error, a
  // longer max_new_tokens stops at the context ("length"); the cache is never longer than it
  const int64_t ctx = std::max<int64_t>(1, cfg.text.max_position_embeddings);
  const int64_t min_img = cfg.vision.tokens_per_side() * cfg.vision.tokens_per_side();
  // a prompt is refused by its size before it is tokenized: a 10 MB prompt costs no tokenizer
  // memory (env STIC_MAX_PROMPT_BYTES, default 1 MiB: ~250k tokens of text, past any context)
  static const int64_t max_prompt_bytes = [] {
    const char* e = std::getenv("STIC_MAX_PROMPT_BYTES");
    const long long v = e ? std::atoll(e) : 0;
    return v > 0 ? static_cast<int64_t>(v) : int64_t{1} << 20;
  }();
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      if (static_cast<int64_t>(requests[i].prompt.size()) > max_prompt_bytes)
        fail("prompt of ", requests[i].prompt.size(), " bytes is over the limit of ", max_prompt_bytes,
             " bytes (STIC_MAX_PROMPT_BYTES raises it)");
      prep[i].ids = lm_.prompt_ids(requests[i].prompt, requests[i].template_name, !requests[i].image.empty());
      const int64_t n = static_cast<int64_t>(prep[i].ids.size()), img = requests[i].image.empty() ? 0 : max_img;
      if (n + (requests[i].image.empty() ? 0 : min_img) >= ctx)
        fail("prompt of ", n, " tokens", requests[i].image.empty() ? "" : str_cat(" + at least ", min_img, " image tokens"),
             " does not fit the model's context of ", ctx, " positions (max_position_embeddings)");
      const GenRequest& q = requests[i];
      const std::string bad = sampling_error(q.temperature, q.top_p, q.top_k, q.max_new_tokens);
      if (!bad.empty()) fail(bad);
      const int64_t need = std::min(n + img + static_cast<int64_t>(requests[i].max_new_tokens), ctx);
      max_len = std::max(max_len, need);
    } catch (const stic::Error& e) {
      prep[i].error = e.what();
    }
  }
  int64_t L = opts_.max_seq_len > 0 ? opts_.max_seq_len : std::max<int64_t>(max_len, 1);
  if (device.is_cuda()) L = (L + 255) / 256 * 256;
  const int64_t S = std::min<int64_t>(opts_.max_batch, std::max<size_t>(requests.size(), 1));

  // --- the static cache
  auto& layers = *model->language_model->model->layers;
  const int64_t n_layers = static_cast<int64_t>(layers.size());
  const auto& tc = cfg.text;
  KVCache cache;
  cache.is_static = true;
  cache.attention = opts_.decode_attention;
  cache.kv_write = opts_.kv_write;
  for (int64_t l = 0; l < n_layers; ++l) {
    // Seen by the model as (S, Hkv, L, D). On CUDA it is stored token-major (S, L, Hkv, D), the
    // packed layout the flash decode kernel reads (decoder.cpp); on CPU head-major.
    if (device.is_cuda() || opts_.kv_token_major) {
      cache.k.push_back(torch::zeros({S, L, tc.num_kv_heads, tc.head_dim}, wopt).permute({0, 2, 1, 3}));
      cache.v.push_back(torch::zeros({S, L, tc.num_kv_heads, tc.head_dim}, wopt).permute({0, 2, 1, 3}));
    } else {
      cache.k.push_back(torch::zeros({S, tc.num_kv_heads, L, tc.head_dim}, wopt));
      cache.v.push_back(torch::zeros({S, tc.num_kv_heads, L, tc.head_dim}, wopt));
    }
  }

  // Dense flash decode (decoder.cpp) needs every key past a slot's length to be zero: track how
  // far each slot has been written and zero the old tail when a new request takes the slot.
  cache.zero_tail = device.is_cuda();
  std::vector<int64_t> extent(static_cast<size_t>(S), 0);

  StepTrace trace;  // STIC_TRACE: a Kineto trace of a few decode steps or prefills
  Lru<ImageEntry> images(static_cast<size_t>(std::max(0, opts_.image_cache)));
  Lru<PrefixEntry> prefixes(opts_.share_prefix ? static_cast<size_t>(std::max(0, opts_.prefix_cache)) : 0);
  std::vector<Slot> slots(S);
  std::unique_ptr<DecodeGraphs> graphs;
  if (opts_.cuda_graphs && DecodeGraphs::supported(device)) graphs = std::make_unique<DecodeGraphs>(model, &cache, S);
  std::deque<size_t> queue;
  for (size_t i = 0; i < requests.size(); ++i) queue.push_back(i);

  // On a GPU, images of the next queued requests are decoded and preprocessed on worker threads
  // while the device works: done inline, this host work stalled the GPU for 1.3-2 s of a 13 s
  // run (64 requests of 672x672 PNGs, H200). At most kAhead loads are in flight or waiting. On
  // a CPU the threads would only compete with the model for the cores.
  constexpr size_t kAhead = 8;
  std::map<std::string, std::shared_future<ImageInput>> pending;
  bool prefetching = device.is_cuda();
  auto prefetch = [&] {
    size_t looked = 0;
    for (size_t ri : queue) {
      if (!prefetching || pending.size() >= kAhead || ++looked > 4 * kAhead) break;
      const GenRequest& rq = requests[ri];
      if (rq.image.empty() || !prep[ri].error.empty()) continue;
      const std::string key = image_key(rq);
      if (pending.count(key) || images.contains(key)) continue;
      try {
        pending.emplace(key, std::async(std::launch::async, [this, path = rq.image, tf = rq.transform] {
                               return lm_.load_image(path, tf);
                             }).share());
      } catch (const std::system_error& e) {  // no thread to be had: load inline from now on
        std::fprintf(stderr, "stic: loading images ahead failed (%s); loading them inline\n", e.what());
        prefetching = false;
      }
    }
  };
  int64_t finished = 0;

  auto finish = [&](GenResult& r) {
    ++finished;
    if (!r.error.empty()) ++st.failed;
    on_result(r);
    if (progress) progress(finished, static_cast<int64_t>(requests.size()), st.generated_tokens);
  };

  // Appends token `t` to slot `s`; returns true if the sequence is done.
  auto push_token = [&](Slot& s, int64_t t) {
    const GenRequest& q = requests[s.req];
    s.result.token_ids.push_back(static_cast<int32_t>(t));
    ++st.generated_tokens;
    s.last_token = t;
    ++s.step;
    if (t == eos && !opts_.ignore_eos) {
      s.result.finish_reason = "eos";
      return true;
    }
    if (!q.stop.empty()) {
      std::string text = tok.decode(s.result.token_ids, true);
      if (apply_stop(text, q.stop)) {
        s.result.finish_reason = "stop";
        return true;
      }
    }
    if (static_cast<int64_t>(s.result.token_ids.size()) >= s.max_new) {
      s.result.finish_reason = "length";
      return true;
    }
    return false;
  };

  auto complete = [&](Slot& s) {
    const GenRequest& q = requests[s.req];
    s.result.text = tok.decode(s.result.token_ids, true);
    if (!q.stop.empty()) apply_stop(s.result.text, q.stop);
    s.active = false;
    finish(s.result);
  };

  // Prefill request `ri` into slot `si`; false if it failed (result already emitted).
  auto admit = [&](size_t ri, int64_t si) -> bool {
    const GenRequest& q = requests[ri];
    Slot& s = slots[si];
    s = Slot{};
    s.req = ri;
    s.result.id = q.id;
    ++st.requests;
    if (!prep[ri].error.empty()) {
      s.result.error = prep[ri].error;
      s.result.error_kind = "prompt";
      finish(s.result);
      return false;
    }
    trace.before_prefill(st.requests - 1);
    const double tp = now_s();
    bool image_failed = false;
    try {
      torch::Tensor feats;
      std::string prefix_key;
      const auto& ids = prep[ri].ids;
      int64_t placeholder_pos = -1;
      if (!q.image.empty()) {
        const std::string key = image_key(q);
        ImageEntry* e = images.get(key);
        ImageEntry fresh;
        if (e) {
          ++st.image_hits;
        } else {
          try {
            const double ti = now_s();
            ImageInput pixels;
            auto it = pending.find(key);
            if (it != pending.end()) {  // loaded ahead on a worker thread
              auto f = it->second;
              pending.erase(it);
              pixels = f.get();  // rethrows the worker's error
            } else {
              pixels = lm_.load_image(q.image, q.transform);
            }
            st.image_load_seconds += now_s() - ti;
            fresh.feats = model->encode_image(pixels);
          } catch (const stic::Error& err) {
            fresh.error = err.what();
          }
          images.put(key, fresh);
          e = &fresh;
        }
        if (!e->error.empty()) {
          image_failed = true;
          fail(e->error);
        }
        feats = e->feats;
        for (size_t i = 0; i < ids.size(); ++i)
          if (ids[i] == lm_.placeholder_id()) placeholder_pos = static_cast<int64_t>(i);
        s.result.num_image_tokens = feats.size(0);
        if (placeholder_pos >= 0) {
          prefix_key = key + '\x1f';
          for (int64_t i = 0; i < placeholder_pos; ++i) prefix_key += std::to_string(ids[i]) + ',';
        }
      }
      auto embeds = model->embed_with_image(ids, feats, lm_.placeholder_id());  // (1, T, C)
      const int64_t T = embeds.size(1);
      s.result.num_input_tokens = T;
      st.prompt_tokens += T;
      if (T >= ctx) fail("prompt of ", T, " positions (image tokens included) does not fit the model's context of ", ctx);
      s.max_new = std::min<int64_t>(q.max_new_tokens, ctx - T);
      if (T + s.max_new > L)
        fail("prompt of ", T, " positions + max_new_tokens ", s.max_new, " exceeds the cache length ", L);
      if (cache.zero_tail && extent[si] > T) {
        for (int64_t l = 0; l < n_layers; ++l) {
          cache.k[l].select(0, si).narrow(1, T, extent[si] - T).zero_();
          cache.v[l].select(0, si).narrow(1, T, extent[si] - T).zero_();
        }
      }
      extent[si] = T;
      int64_t start = 0;
      const int64_t prefix_len = placeholder_pos >= 0 ? placeholder_pos + feats.size(0) : 0;
      if (!prefix_key.empty() && prefix_len < T) {
        if (PrefixEntry* pe = prefixes.get(prefix_key)) {
          for (int64_t l = 0; l < n_layers; ++l) {
            cache.k[l].select(0, si).narrow(1, 0, pe->length).copy_(pe->k[l]);
            cache.v[l].select(0, si).narrow(1, 0, pe->length).copy_(pe->v[l]);
          }
          start = pe->length;
          ++st.prefix_hits;
        }
      }
      st.prefill_positions += T - start;
      cache.slot = si;
      cache.start = start;
      auto pos = torch::arange(start, T, i64).unsqueeze(0);
      auto logits = model->forward_embeds(embeds.narrow(1, start, T - start), pos, &cache, true);  // (1, 1, V)
      cache.slot = -1;
      if (!prefix_key.empty() && start == 0 && prefix_len < T && opts_.share_prefix && opts_.prefix_cache > 0) {
        PrefixEntry pe;
        pe.length = prefix_len;
        for (int64_t l = 0; l < n_layers; ++l) {
          pe.k.push_back(cache.k[l].select(0, si).narrow(1, 0, prefix_len).clone());
          pe.v.push_back(cache.v[l].select(0, si).narrow(1, 0, prefix_len).clone());
        }
        prefixes.put(prefix_key, std::move(pe));
      }
      auto row = logits.select(1, 0);  // (1, V)
      if (q.want_logits) s.result.last_logits = row[0].to(torch::kCPU).clone();
      s.len = T;
      s.active = true;
      auto tok0 = pick_tokens(row, {&q}, {0});
      st.prefill_seconds += now_s() - tp;
      if (push_token(s, tok0[0])) {
        complete(s);
        return false;
      }
      return true;
    } catch (const stic::Error& e) {
      cache.slot = -1;
      st.prefill_seconds += now_s() - tp;
      s.active = false;
      s.result = GenResult{};
      s.result.id = q.id;
      s.result.error = e.what();
      s.result.error_kind = image_failed ? "image" : "request";
      finish(s.result);
      return false;
    }
  };

  while (true) {
    // fill free slots
    prefetch();
    for (int64_t si = 0; si < S && !queue.empty(); ++si) {
      while (!slots[si].active && !queue.empty()) {
        size_t ri = queue.front();
        queue.pop_front();
        admit(ri, si);
        prefetch();
      }
    }
    int64_t active = 0, max_pos = 0;
    for (auto& s : slots)
      if (s.active) {
        ++active;
        max_pos = std::max(max_pos, s.len);
      }
    if (active == 0) break;
    // one decode step for all slots (idle ones write position 0 of their own row, masked out)
    const double td = now_s();
    std::vector<int64_t> tokens(S, 0), wpos(S, 0);
    for (int64_t i = 0; i < S; ++i) {
      if (slots[i].active) {
        tokens[i] = slots[i].last_token;
        wpos[i] = slots[i].len;
        st.kv_tokens_read += slots[i].len + 1;
        ++st.slot_steps;
      }
      extent[i] = std::max(extent[i], wpos[i] + 1);  // idle slots write position 0
    }
    const int64_t lr = max_pos + 1;
    trace.before_step(st.decode_steps);
    torch::Tensor logits;  // (S, V) fp32
    const double tl = now_s();
    if (graphs) {
      logits = graphs->step(tokens, wpos, lr);
    } else {
      auto t_tokens = torch::from_blob(tokens.data(), {S, 1}, torch::kInt64).to(device);
      auto t_pos = torch::from_blob(wpos.data(), {S}, torch::kInt64).to(device);
      const int64_t keys = device.is_cuda() ? decode_key_bucket(lr, L) : lr;
      logits = decode_step_eager(model, cache, t_tokens, t_pos, keys);
    }
    profile::totals()[profile::Launch] += now_s() - tl;
    std::vector<const GenRequest*> rq(S, nullptr);
    std::vector<int64_t> steps(S, 0);
    for (int64_t i = 0; i < S; ++i)
      if (slots[i].active) {
        rq[i] = &requests[slots[i].req];
        steps[i] = slots[i].step;
      }
    auto next = pick_tokens(logits, rq, steps);
    ++st.decode_steps;
    for (int64_t i = 0; i < S; ++i) {
      if (!slots[i].active) continue;
      slots[i].len += 1;
      if (push_token(slots[i], next[i])) complete(slots[i]);
    }
    st.decode_seconds += now_s() - td;
  }
  st.seconds = now_s() - t0;
  if (graphs) st.cuda_graphs = graphs->graphs_captured();
  if (profile::level() > 0) {
    const double* p = profile::totals();
    std::fprintf(stderr,
                 "[profile] decode %.3fs over %lld steps: forward launch (host) %.3fs, KV write %.3fs, attention %.3fs "
                 "(device-synchronised when STIC_PROFILE=1)\n",
                 st.decode_seconds, static_cast<long long>(st.decode_steps), p[profile::Launch], p[profile::KvWrite],
                 p[profile::Attention]);
  }
  return st;
}

}  // namespace stic
