// Llama / Mistral decoder (HF LlamaModel / MistralModel numerics): RMSNorm in fp32, RoPE with
// cos/sin computed in fp32 and cast to the activation dtype, GQA by repeating KV heads.
#include "stic/model/llava.h"
#include "stic/util/compat.h"
#include "stic/util/error.h"
#include "stic/util/profile.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/stack.h>
#include <torch/cuda.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <map>

#include <cmath>
#include <limits>
#include <cstdlib>
#include <string>

namespace stic {
namespace nn = torch::nn;

RMSNormImpl::RMSNormImpl(int dim, double eps_) : eps(eps_) {
  weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  auto h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

LlamaAttentionImpl::LlamaAttentionImpl(const TextConfig& c)
    : heads(c.num_heads), kv_heads(c.num_kv_heads), head_dim(c.head_dim), sliding_window(c.sliding_window) {
  const bool b = c.attention_bias;
  q_proj = register_module("q_proj", Linear(c.hidden_size, heads * head_dim, b));
  k_proj = register_module("k_proj", Linear(c.hidden_size, kv_heads * head_dim, b));
  v_proj = register_module("v_proj", Linear(c.hidden_size, kv_heads * head_dim, b));
  o_proj = register_module("o_proj", Linear(heads * head_dim, c.hidden_size, b));
}

namespace {
torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}
}  // namespace

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                          const torch::Tensor& mask, KVCache* cache, int layer) {
  const auto b = x.size(0), t = x.size(1);
  torch::Tensor xq, xk, xv;
  if (qkv.usable()) {
    auto o = qkv.forward(x);
    xq = o[0], xk = o[1], xv = o[2];
  } else {
    xq = q_proj(x), xk = k_proj(x), xv = v_proj(x);
  }
  auto q = xq.view({b, t, heads, head_dim}).transpose(1, 2);     // (B, H, T, D)
  auto k = xk.view({b, t, kv_heads, head_dim}).transpose(1, 2);  // (B, Hkv, T, D)
  auto v = xv.view({b, t, kv_heads, head_dim}).transpose(1, 2);  // (B, Hkv, T, D)
  auto c = cos.unsqueeze(1), s = sin.unsqueeze(1);                       // (B, 1, T, D)
  q = q * c + rotate_half(q) * s;
  k = k * c + rotate_half(k) * s;
  if (cache && cache->is_static) return forward_static(q, k, v, mask, *cache, layer);
  if (cache) {
    if (static_cast<int>(cache->k.size()) <= layer) {
      cache->k.resize(layer + 1);
      cache->v.resize(layer + 1);
    }
    if (cache->k[layer].defined()) {
      k = torch::cat({cache->k[layer], k}, 2);
      v = torch::cat({cache->v[layer], v}, 2);
    }
    cache->k[layer] = k;
    cache->v[layer] = v;
  }
  if (kv_heads != heads) {  // GQA: (B, Hkv, Tk, D) -> (B, H, Tk, D)
    const int64_t rep = heads / kv_heads, tk = k.size(2);
    k = k.unsqueeze(2).expand({b, kv_heads, rep, tk, head_dim}).reshape({b, heads, tk, head_dim});
    v = v.unsqueeze(2).expand({b, kv_heads, rep, tk, head_dim}).reshape({b, heads, tk, head_dim});
  }
  auto o = compat::attention(q, k, v, mask, /*causal=*/!mask.defined());  // (B, H, T, D)
  return o_proj(o.transpose(1, 2).reshape({b, t, heads * head_dim}));
}

DecodeAttention decode_attention_from_name(const std::string& name) {
  if (name == "auto") return DecodeAttention::Auto;
  if (name == "cudnn") return DecodeAttention::Cudnn;
  if (name == "flash") return DecodeAttention::Flash;
  if (name == "dense") return DecodeAttention::FlashDense;
  if (name == "manual") return DecodeAttention::Gemm;
  if (name == "sdpa") return DecodeAttention::Sdpa;
  fail("decode attention '", name, "' is not valid (expected auto, cudnn, flash, dense, manual or sdpa)");
}

namespace {
// Kernels that failed once in this process (not in this libtorch / cuDNN build) are not tried
// again: the step falls back to the next path.
bool g_cudnn_unavailable = false, g_flash_unavailable = false;
}  // namespace

// Decode attention through FlashAttention-2's varlen kernel, which ships inside CUDA PyTorch as
// aten::_flash_attention_forward. The cache is stored token-major, (S, L, Hkv, D), so it is one
// packed (S * L, Hkv, D) key tensor in which slot s owns rows [s * L, s * L + L); `seqused_k`
// tells the kernel how many of them each slot uses. GQA is native: K/V are read once, and only
// up to each slot's length. Called through the dispatcher by argument name, so a libtorch
// without `seqused_k` fails here at run time (and the engine falls back) rather than at build.
namespace {
// aten::_flash_attention_forward called through the dispatcher with arguments by name (absent
// ones None); returns the output stack. Throws (c10::Error) if the op or a named argument is
// missing from this libtorch's schema.
torch::jit::Stack call_op_by_name(const c10::OperatorHandle& op, const std::map<std::string, c10::IValue>& args) {
  size_t found = 0;
  torch::jit::Stack stack;
  for (const auto& a : op.schema().arguments()) {
    auto it = args.find(a.name());
    found += it != args.end();
    stack.push_back(it == args.end() ? c10::IValue() : it->second);
  }
  TORCH_CHECK(found == args.size(), "this libtorch's ", op.schema().name(), " lacks an argument stic passes");
  op.callBoxed(&stack);
  return stack;
}

torch::jit::Stack call_flash_forward(const std::map<std::string, c10::IValue>& args) {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("aten::_flash_attention_forward", "");
  return call_op_by_name(op, args);
}
}  // namespace

// Decode attention through cuDNN's fused attention (aten::_scaled_dot_product_cudnn_attention,
// the kernel SDPA picks for this shape on Hopper), GQA native, over keys [0, attend_len) of every
// slot's token-major cache with an additive mask (S, 1, 1, attend_len) that hides the keys past
// each slot's position. Measured 0.19 ms per layer at 64 slots x 3.2k keys on an H200, 1.7x
// faster than FA2's kernels and at the copy-bandwidth bound (bench/attn_micro.py).
torch::Tensor cudnn_decode(const torch::Tensor& q /*(S,H,1,D)*/, const torch::Tensor& kc /*(S,Hkv,L,D) view*/,
                           const torch::Tensor& vc, const torch::Tensor& mask /*(S,1,1,n)*/) {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("aten::_scaled_dot_product_cudnn_attention", "");
  const int64_t d = q.size(3), l = kc.size(2);
  int64_t n = mask.size(-1);
  // the op is called directly, past SDPA's own checks: refuse what cuDNN's kernel does not take
  // (the caller falls back to FlashAttention-2)
  TORCH_CHECK(d <= 128 && d % 8 == 0, "cuDNN decode attention: head dim ", d, " not supported");
  auto bias = mask.to(q.scalar_type());
  if (n % 8 != 0) {  // cuDNN wants the bias rows 16-byte aligned: hide 1-7 more keys
    const int64_t n8 = (n + 7) / 8 * 8;
    TORCH_CHECK(n8 <= l, "cuDNN decode attention: ", n, " keys cannot be aligned in a cache of ", l);
    bias = torch::constant_pad_nd(bias, {0, n8 - n}, -std::numeric_limits<double>::infinity());
    n = n8;
  }
  std::map<std::string, c10::IValue> args = {
      {"query", q},
      {"key", kc.narrow(2, 0, n)},
      {"value", vc.narrow(2, 0, n)},
      {"attn_bias", bias},
      {"compute_log_sumexp", c10::IValue(false)},
      {"dropout_p", c10::IValue(0.0)},
      {"is_causal", c10::IValue(false)},
      {"return_debug_mask", c10::IValue(false)},
      {"scale", c10::IValue(1.0 / std::sqrt(static_cast<double>(d)))}};
  return call_op_by_name(op, args).at(0).toTensor();  // (S, H, 1, D)
}

torch::Tensor flash_decode(const torch::Tensor& q /*(S,H,1,D)*/, const torch::Tensor& kc /*(S,Hkv,L,D) view*/,
                           const torch::Tensor& vc, const torch::Tensor& write_pos /*(S)*/, int64_t max_k,
                           KVCache* step_cache) {
  const int64_t s = q.size(0), h = q.size(1), d = q.size(3), hkv = kc.size(1), l = kc.size(2);
  auto kp = kc.permute({0, 2, 1, 3}), vp = vc.permute({0, 2, 1, 3});  // physical (S, L, Hkv, D)
  TORCH_CHECK(kp.is_contiguous() && vp.is_contiguous(), "flash decode needs the token-major KV cache layout");
  torch::Tensor used, cu_k, cu_q;
  if (step_cache && step_cache->flash_used.defined()) {  // computed by an earlier layer of this step
    used = step_cache->flash_used, cu_k = step_cache->flash_cu_k, cu_q = step_cache->flash_cu_q;
  } else {
    auto i32 = write_pos.options().dtype(torch::kInt32);
    used = (write_pos + 1).to(torch::kInt32);
    cu_k = torch::arange(s + 1, i32) * static_cast<int32_t>(l);
    cu_q = torch::arange(s + 1, i32);
    if (step_cache) step_cache->flash_used = used, step_cache->flash_cu_k = cu_k, step_cache->flash_cu_q = cu_q;
  }
  std::map<std::string, c10::IValue> args = {
      {"query", q.reshape({s, h, d})},
      {"key", kp.view({s * l, hkv, d})},
      {"value", vp.view({s * l, hkv, d})},
      {"cum_seq_q", cu_q},
      {"cum_seq_k", cu_k},
      {"max_q", c10::IValue(static_cast<int64_t>(1))},
      {"max_k", c10::IValue(std::min(max_k, l))},
      {"dropout_p", c10::IValue(0.0)},
      {"is_causal", c10::IValue(false)},
      {"return_debug_mask", c10::IValue(false)},
      {"scale", c10::IValue(1.0 / std::sqrt(static_cast<double>(d)))},
      {"seqused_k", used}};  // a libtorch without seqused_k fails here (the engine falls back)
  return call_flash_forward(args).at(0).toTensor().view({s, h, 1, d});
}

// Decode attention through FlashAttention-2's dense kernel (aten::_flash_attention_forward
// without cumulative lengths = mha_fwd, which splits long key ranges across blocks and groups
// the query heads that share a KV head), over keys [0, attend_len) of every slot. Slots are
// ragged; the engine keeps every key past a slot's own length exactly zero (KVCache::zero_tail),
// so each of those n keys adds exp(0) = 1 to the softmax denominator and nothing to the
// numerator. With Z = exp(lse) the kernel's denominator, the true output is out * Z / (Z - n):
// a factor 1 / (1 - n * exp(-lse)), in fp32. Opt-in (DecodeAttention::FlashDense, STIC_DECODE_ATTN=dense): see forward_static.
torch::Tensor flash_decode_dense(const torch::Tensor& q /*(S,H,1,D)*/, const torch::Tensor& kc /*(S,Hkv,L,D) view*/,
                                 const torch::Tensor& vc, const torch::Tensor& write_pos /*(S)*/, int64_t attend_len) {
  const int64_t s = q.size(0), h = q.size(1), d = q.size(3), l = kc.size(2);
  const int64_t n = std::min(attend_len, l);
  auto kp = kc.permute({0, 2, 1, 3}).narrow(1, 0, n), vp = vc.permute({0, 2, 1, 3}).narrow(1, 0, n);  // (S, n, Hkv, D)
  std::map<std::string, c10::IValue> args = {
      {"query", q.transpose(1, 2)},  // (S, 1, H, D)
      {"key", kp},
      {"value", vp},
      {"max_q", c10::IValue(static_cast<int64_t>(1))},
      {"max_k", c10::IValue(n)},
      {"dropout_p", c10::IValue(0.0)},
      {"is_causal", c10::IValue(false)},
      {"return_debug_mask", c10::IValue(false)},
      {"scale", c10::IValue(1.0 / std::sqrt(static_cast<double>(d)))}};
  const auto stack = call_flash_forward(args);
  auto out = stack.at(0).toTensor();                       // (S, 1, H, D)
  auto lse = stack.at(1).toTensor().reshape({s, h, 1});    // (S, H, 1) fp32, natural log
  auto stale = (n - 1 - write_pos).to(torch::kFloat32).view({s, 1, 1});  // zero keys each slot attended
  auto factor = 1.0 / (1.0 - stale * torch::exp(-lse));
  return (out.reshape({s, h, d}).to(torch::kFloat32) * factor).to(q.scalar_type()).view({s, h, 1, d});
}

torch::Tensor LlamaAttentionImpl::forward_static(const torch::Tensor& q, const torch::Tensor& k,
                                                 const torch::Tensor& v, const torch::Tensor& mask, KVCache& cache,
                                                 int layer) {
  using torch::indexing::Slice;
  const auto b = q.size(0), t = q.size(2);
  auto& kc = cache.k.at(layer);  // (S, Hkv, L, D)
  auto& vc = cache.v.at(layer);
  torch::Tensor o;
  if (cache.slot >= 0) {  // prefill of one request into its slot
    const int64_t end = cache.start + t;
    kc.select(0, cache.slot).narrow(1, cache.start, t).copy_(k[0]);
    vc.select(0, cache.slot).narrow(1, cache.start, t).copy_(v[0]);
    auto kk = kc.narrow(0, cache.slot, 1).narrow(2, 0, end);  // (1, Hkv, end, D)
    auto vv = vc.narrow(0, cache.slot, 1).narrow(2, 0, end);
    if (kv_heads != heads) {
      const int64_t rep = heads / kv_heads;
      kk = kk.unsqueeze(2).expand({1, kv_heads, rep, end, head_dim}).reshape({1, heads, end, head_dim});
      vv = vv.unsqueeze(2).expand({1, kv_heads, rep, end, head_dim}).reshape({1, heads, end, head_dim});
    }
    // bottom-right causal (1, H, T, D); a sliding window shorter than the keys comes as `mask`
    o = mask.defined() ? compat::attention(q, kk, vv, mask, /*causal=*/false)
                       : compat::attention(q, kk, vv, {}, /*causal=*/true);
  } else {  // one decode step for every slot
    if (t != 1) fail("static KV cache: a decode step takes one token per slot, got ", t);
    const bool prof = profile::level() == 1 && q.is_cuda();
    auto sync_now = [&] {
      if (prof) torch::cuda::synchronize();
      return profile::now();
    };
    double t0 = prof ? sync_now() : 0;
    const bool kv_flat = cache.kv_write == KvWrite::IndexCopy;
    const int64_t L = kc.size(2);
    const bool head_major = kc.is_contiguous();                          // (S, Hkv, L, D) storage
    const bool token_major = kc.permute({0, 2, 1, 3}).is_contiguous();  // (S, L, Hkv, D) storage (CUDA)
    if (layer == 0) {  // a new step: the per-step index tensors are recomputed once
      cache.kv_rows = torch::Tensor();
      cache.flash_used = cache.flash_cu_k = cache.flash_cu_q = torch::Tensor();
    }
    if (kv_flat && (head_major || token_major)) {
      if (!cache.kv_rows.defined()) {
        auto pos = cache.write_pos.view({b, 1});
        auto heads_idx = torch::arange(kv_heads, cache.write_pos.options()).view({1, kv_heads});
        auto slots_idx = torch::arange(b, cache.write_pos.options()).view({b, 1});
        // the flat row of (slot s, head h) at position p in each storage order
        cache.kv_rows = (head_major ? (slots_idx * kv_heads + heads_idx) * L + pos
                                    : (slots_idx * L + pos) * kv_heads + heads_idx)
                            .view({-1});  // (S * Hkv)
      }
      const auto& idx = cache.kv_rows;
      auto flat = [&](const torch::Tensor& c) {
        return (head_major ? c : c.permute({0, 2, 1, 3})).view({-1, head_dim});
      };
      flat(kc).index_copy_(0, idx, k.select(2, 0).reshape({b * kv_heads, head_dim}));
      flat(vc).index_copy_(0, idx, v.select(2, 0).reshape({b * kv_heads, head_dim}));
    } else {
      auto rows = torch::arange(b, cache.write_pos.options());
      kc.index_put_({rows, Slice(), cache.write_pos}, k.select(2, 0));  // (S, Hkv, D) at each slot's position
      vc.index_put_({rows, Slice(), cache.write_pos}, v.select(2, 0));
    }
    double t1 = prof ? sync_now() : 0;
    auto kk = kc.narrow(2, 0, cache.attend_len), vv = vc.narrow(2, 0, cache.attend_len);  // (S, Hkv, Lr, D)
    // GQA without copying the cache: the `rep` query heads that share a KV head become `rep`
    // query rows of that head (they sit at the same position, so no causal mask among them).
    const int64_t rep = heads / kv_heads;
    auto qg = q.reshape({b, kv_heads, rep, head_dim});                             // (S, Hkv, rep, D)
    // Decode attention on CUDA (bf16/fp16): cuDNN's fused kernel with the padding mask (the
    // default), else FlashAttention-2 varlen, else two batched GEMMs (read K and V once, softmax
    // in fp32; the fp32 path). On CPU the SDPA/reference path. cache.attention picks one
    // (kv_cache.h; bench/RESULTS.md has their timings).
    const DecodeAttention pick = cache.attention;
    const bool manual = pick == DecodeAttention::Sdpa ? false : pick == DecodeAttention::Gemm ? true : q.is_cuda();
    const bool try_cudnn = pick == DecodeAttention::Auto || pick == DecodeAttention::Cudnn;
    const bool try_flash = try_cudnn || pick == DecodeAttention::Flash || pick == DecodeAttention::FlashDense;
    torch::Tensor og;
    // the dense kernel is opt-in: on an H100 the engine's step was 27.3 ms with it and 26.5 ms
    // with varlen (64 x 3.2k keys, bench/RESULTS.md), although the kernel alone is 5% faster
    const bool dense = pick == DecodeAttention::FlashDense;
    // FlashAttention-2 here reads every key below each slot's length: with a sliding window
    // shorter than the keys, only the masked kernels (cuDNN, GEMMs, SDPA) apply the window
    const bool window_cuts = sliding_window > 0 && cache.attend_len > sliding_window;
    if (q.is_cuda() && try_cudnn && !g_cudnn_unavailable && q.scalar_type() != torch::kFloat32 && mask.defined()) {
      try {
        o = cudnn_decode(q, kc, vc, mask);
      } catch (const c10::Error& e) {
        std::fprintf(stderr, "stic: cuDNN decode attention unavailable (%s); using FlashAttention-2\n",
                     e.what_without_backtrace());
        g_cudnn_unavailable = true;
      }
    }
    if (!o.defined() && q.is_cuda() && try_flash && !window_cuts && !g_flash_unavailable &&
        q.scalar_type() != torch::kFloat32) {  // FA2: bf16/fp16 only
      try {
        o = cache.zero_tail && dense ? flash_decode_dense(q, kc, vc, cache.write_pos, cache.attend_len)
                                       : flash_decode(q, kc, vc, cache.write_pos, cache.attend_len, &cache);  // (S, H, 1, D)
      } catch (const c10::Error& e) {
        std::fprintf(stderr, "stic: flash decode attention unavailable (%s); using batched GEMMs\n",
                     e.what_without_backtrace());
        g_flash_unavailable = true;
      }
    }
    if (o.defined()) {
      // done
    } else if (manual) {  // two batched GEMMs that read K and V once; softmax in fp32
      auto sc = torch::matmul(qg, kk.transpose(-2, -1)).to(torch::kFloat32) * (1.0 / std::sqrt(double(head_dim)));
      og = torch::matmul(torch::softmax(sc + mask.to(torch::kFloat32), -1).to(vv.scalar_type()), vv);
    } else {
      og = compat::attention(qg, kk, vv, mask, /*causal=*/false);                  // (S, Hkv, rep, D)
    }
    if (prof) {
      double t2 = sync_now();
      profile::totals()[profile::KvWrite] += t1 - t0;
      profile::totals()[profile::Attention] += t2 - t1;
    }
    if (!o.defined()) o = og.reshape({b, heads, 1, head_dim});
  }
  return o_proj(o.transpose(1, 2).reshape({b, t, heads * head_dim}));
}

LlamaMlpImpl::LlamaMlpImpl(const TextConfig& c) {
  const bool b = c.mlp_bias;
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, b));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, b));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, b));
}

torch::Tensor LlamaMlpImpl::forward(const torch::Tensor& x) {
  if (gate_up.usable()) {
    auto o = gate_up.forward(x);
    return down_proj(torch::silu(o[0]) * o[1]);
  }
  // gate before up, as HF: the operands of `*` are unsequenced in C++ (g++ evaluates up_proj
  // first), and the order of the LoRA dropout draws is the order of these calls
  auto gate = torch::silu(gate_proj(x));
  return down_proj(gate * up_proj(x));
}

LlamaLayerImpl::LlamaLayerImpl(const TextConfig& c) {
  self_attn = register_module("self_attn", LlamaAttention(c));
  mlp = register_module("mlp", LlamaMlp(c));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

torch::Tensor LlamaLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                                      const torch::Tensor& mask, KVCache* cache, int index) {
  auto h = x + self_attn->forward(input_layernorm(x), cos, sin, mask, cache, index);
  return h + mlp(post_attention_layernorm(h));
}

namespace {
at::Generator generator_of(const torch::Device& d) {
  return d.is_cuda() ? at::globalContext().defaultGenerator(d) : at::detail::getDefaultCPUGenerator();
}

// Reentrant activation checkpointing of one decoder layer (torch.utils.checkpoint's reentrant
// variant): the forward runs without recording a graph and keeps only its inputs and the RNG
// state; the backward replays that RNG state, recomputes the layer with a graph and
// backpropagates through it, which accumulates the parameters' gradients directly (they are
// leaves) and returns the input's.
struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor cos,
                               torch::Tensor sin, int64_t layer_ptr) {
    ctx->saved_data["layer"] = layer_ptr;
    ctx->saved_data["rng"] = generator_of(x.device()).get_state();
    ctx->save_for_backward({x, cos, sin});
    auto* layer = reinterpret_cast<LlamaLayerImpl*>(layer_ptr);
    return layer->forward(x, cos, sin, {}, nullptr, 0);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto* layer = reinterpret_cast<LlamaLayerImpl*>(ctx->saved_data["layer"].toInt());
    auto x = saved[0].detach().requires_grad_(true);
    auto gen = generator_of(x.device());
    const auto now = gen.get_state();
    gen.set_state(ctx->saved_data["rng"].toTensor());
    torch::Tensor out;
    {
      torch::AutoGradMode on(true);
      out = layer->forward(x, saved[1], saved[2], {}, nullptr, 0);
    }
    gen.set_state(now);
    torch::autograd::backward({out}, {grads[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};
}  // namespace

LlamaModelImpl::LlamaModelImpl(const TextConfig& c) : cfg(c) {
  embed_tokens = register_module("embed_tokens", nn::Embedding(c.vocab_size, c.hidden_size));
  layers = register_module("layers", nn::ModuleList());
  for (int i = 0; i < c.num_layers; ++i) layers->push_back(LlamaLayer(c));
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps));
}

bool LlamaModelImpl::fuse_projections() {
  bool fused = false;
  for (auto& m : *layers) {
    auto* layer = m->as<LlamaLayerImpl>();
    auto& at = *layer->self_attn;
    if (!at.qkv.intact()) {
      at.qkv.fuse({at.q_proj, at.k_proj, at.v_proj});
      fused = true;
    }
    auto& mlp = *layer->mlp;
    if (!mlp.gate_up.intact()) {
      mlp.gate_up.fuse({mlp.gate_proj, mlp.up_proj});
      fused = true;
    }
  }
  return fused;
}

torch::Tensor LlamaModelImpl::rope_inv_freq(const torch::Device& device) {
  if (!inv_freq.defined() || inv_freq.device() != device) {
    auto idx = torch::arange(0, cfg.head_dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(cfg.head_dim);
    // fp32 throughout, as HF computes it: 1 / theta ** (arange(0, D, 2) / D)
    inv_freq = (1.0 / torch::pow(torch::Scalar(cfg.rope_theta), idx)).to(torch::kFloat32).to(device);
  }
  return inv_freq;
}

torch::Tensor LlamaModelImpl::forward(const torch::Tensor& embeds, const torch::Tensor& positions,
                                      const torch::Tensor& mask, KVCache* cache) {
  // RoPE tables in fp32, then cast (HF LlamaRotaryEmbedding).
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * rope_inv_freq(embeds.device()).view({1, 1, -1});  // (B,T,D/2)
  auto emb = torch::cat({freqs, freqs}, -1);                                                                // (B,T,D)
  auto cos = emb.cos().to(embeds.scalar_type()), sin = emb.sin().to(embeds.scalar_type());
  torch::Tensor attn_mask = mask;
  const int64_t past = cache ? cache->length() : 0;
  const int64_t t = embeds.size(1);
  if (!attn_mask.defined() && cfg.sliding_window > 0 && past + t > cfg.sliding_window) {
    // Mistral sliding window: query i (absolute past + i) sees keys j with i - window < j <= i
    // (HF masking_utils sliding_window_overlay: kv_idx > q_idx - window), in a prefill, a
    // growing-cache decode step and an engine prefill alike; the engine's decode steps carry it
    // in their own mask (infer/decode_graph.cpp decode_step_eager).
    auto qi = torch::arange(past, past + t, torch::TensorOptions().dtype(torch::kInt64).device(embeds.device())).unsqueeze(1);
    auto kj = torch::arange(0, past + t, torch::TensorOptions().dtype(torch::kInt64).device(embeds.device())).unsqueeze(0);
    auto ok = (kj <= qi).logical_and(kj > qi - cfg.sliding_window);
    attn_mask = torch::zeros(ok.sizes(), torch::TensorOptions().dtype(torch::kFloat32).device(embeds.device()))
                    .masked_fill(ok.logical_not(), -std::numeric_limits<float>::infinity())
                    .view({1, 1, t, past + t});
  }
  auto x = embeds;
  int i = 0;
  const bool checkpoint = gradient_checkpointing && is_training() && torch::GradMode::is_enabled() && !cache &&
                          !attn_mask.defined();
  // the checkpointed layers only backpropagate if their input requires grad (as HF's
  // enable_input_require_grads arranges for LoRA on frozen embeddings)
  if (checkpoint && !x.requires_grad()) x = x.detach().requires_grad_(true);
  for (auto& m : *layers) {
    auto* layer = m->as<LlamaLayerImpl>();
    x = checkpoint ? LayerCheckpoint::apply(x, cos, sin, reinterpret_cast<int64_t>(layer))
                   : layer->forward(x, cos, sin, attn_mask, cache, i);
    ++i;
  }
  return norm(x);
}

CausalLMImpl::CausalLMImpl(const TextConfig& c) {
  model = register_module("model", LlamaModel(c));
  lm_head = register_module("lm_head", Linear(c.hidden_size, c.vocab_size, false));
}

}  // namespace stic
