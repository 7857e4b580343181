// stic/model/kv_cache.h — the key/value cache the decoder layers read and write. The decoder
// (model/decoder.cpp) implements both modes; who owns a cache and its slots is the caller's
// business: reference_chat (infer/runner.h) grows one, the batched engine (infer/engine.h)
// preallocates one per slot set and fills the static-decode fields each step.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace stic {

// The static-cache decode step's switchable fast paths. Each sits beside a plain reference and
// tests/unit/torch_fastpaths.cpp compares them all (CPU here, the CUDA kernels on a GPU).
//  - attention: Auto = cuDNN's fused kernel (CUDA bf16/fp16), else FlashAttention-2 varlen,
//    else two batched GEMMs (CUDA) / SDPA (CPU). Cudnn = Auto. Flash = FA2 varlen first;
//    FlashDense = FA2's dense kernel over [0, attend_len) (needs zero_tail); Gemm = the two
//    batched GEMMs with an fp32 softmax; Sdpa = the SDPA / matmul-softmax reference.
//  - kv_write: IndexCopy writes every slot's new key/value with one index_copy_ on the flat
//    cache; IndexPut is the advanced-indexing reference.
enum class DecodeAttention { Auto, Cudnn, Flash, FlashDense, Gemm, Sdpa };
enum class KvWrite { IndexCopy, IndexPut };
// "auto" | "cudnn" | "flash" | "dense" | "manual" | "sdpa" (STIC_DECODE_ATTN's values); throws
// stic::Error on another.
DecodeAttention decode_attention_from_name(const std::string& name);

// Key/value cache. Two modes:
//  - growing (chat, tests): k[l], v[l] are (B, Hkv, T, D) and grow by concatenation;
//  - static (the batched engine, infer/engine): k[l], v[l] are preallocated (S, Hkv, L, D) for S
//    slots. A prefill writes one request into `slot` at [start, start + T) and attends over
//    [0, start + T) of that slot; a decode step (slot = -1, T = 1) writes each slot's new key at
//    `write_pos[s]` and attends over [0, attend_len) of every slot with the caller's mask.
struct KVCache {
  std::vector<torch::Tensor> k, v;
  bool is_static = false;
  int64_t slot = -1;        // static prefill: the slot being filled
  int64_t start = 0;        // static prefill: first position written
  torch::Tensor write_pos;  // static decode: (S) int64 on the cache's device
  int64_t attend_len = 0;   // static decode: keys [0, attend_len) are read
  // static decode: the owner guarantees that every key and value past a slot's write position
  // is exactly zero (the engine zeroes a slot's old tail when it admits a request), which lets
  // CUDA decode attend densely over [0, attend_len) and correct the softmax afterwards.
  bool zero_tail = false;
  // static decode: per-step index tensors, computed by layer 0 and reused by the others (they
  // depend only on the write positions): the flat KV rows written and FA2's varlen lengths.
  torch::Tensor kv_rows, flash_used, flash_cu_k, flash_cu_q;
  DecodeAttention attention = DecodeAttention::Auto;  // static decode: the attention kernel
  KvWrite kv_write = KvWrite::IndexCopy;               // static decode: how new keys are written
  int64_t length() const {
    if (is_static) return slot >= 0 ? start : attend_len;
    return k.empty() || !k[0].defined() ? 0 : k[0].size(2);
  }
};

}  // namespace stic
