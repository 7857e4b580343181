// stic/model/llava.h — LLaVA models: CLIP ViT vision tower, projector, Llama/Mistral decoder,
// and their assembly (image features spliced into token embeddings, LLaVA-NeXT anyres packing).
//
// Module names mirror the llava-hf checkpoint names (vision_tower.vision_model..., 
// multi_modal_projector.linear_1, language_model.model.layers.N..., language_model.lm_head,
// image_newline), so loading is a name map (model/loader.cpp), not code. The 7B model and the
// tiny test models are the same classes with different configs.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "stic/model/config.h"
#include "stic/model/kv_cache.h"
#include "stic/model/linear.h"

namespace stic {

// ---------------------------------------------------------------- vision tower (CLIP ViT)
struct ClipAttentionImpl : torch::nn::Module {
  explicit ClipAttentionImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& x);  // (N, T, C) -> (N, T, C)
  int heads, head_dim;
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(ClipAttention);

struct ClipMlpImpl : torch::nn::Module {
  explicit ClipMlpImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  bool quick_gelu;
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ClipMlp);

struct ClipLayerImpl : torch::nn::Module {
  explicit ClipLayerImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  ClipAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ClipLayer);

struct ClipEmbeddingsImpl : torch::nn::Module {
  explicit ClipEmbeddingsImpl(const VisionConfig& c);
  torch::Tensor forward(const torch::Tensor& pixels);  // (N, 3, H, W) -> (N, 1 + P, C)
  torch::Tensor class_embedding;                       // (C)
  torch::nn::Conv2d patch_embedding{nullptr};          // (C, 3, p, p), no bias
  torch::nn::Embedding position_embedding{nullptr};    // (1 + P, C)
};
TORCH_MODULE(ClipEmbeddings);

struct ClipEncoderImpl : torch::nn::Module {
  explicit ClipEncoderImpl(const VisionConfig& c);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(ClipEncoder);

struct ClipVisionTransformerImpl : torch::nn::Module {
  explicit ClipVisionTransformerImpl(const VisionConfig& c);
  ClipEmbeddings embeddings{nullptr};
  torch::nn::LayerNorm pre_layrnorm{nullptr};  // (sic) HF's name
  ClipEncoder encoder{nullptr};
  torch::nn::LayerNorm post_layernorm{nullptr};  // loaded, unused by LLaVA (it reads hidden states)
};
TORCH_MODULE(ClipVisionTransformer);

struct ClipVisionImpl : torch::nn::Module {
  explicit ClipVisionImpl(const VisionConfig& c);
  // Hidden states of the requested layers (python indices into the L+1 list: 0 = embeddings
  // after pre_layrnorm, -1 = last layer), concatenated on the channel dim: (N, 1 + P, C * k).
  // Layers past the deepest requested one are not run.
  torch::Tensor forward_features(const torch::Tensor& pixels, const std::vector<int>& layers);
  VisionConfig cfg;
  ClipVisionTransformer vision_model{nullptr};
};
TORCH_MODULE(ClipVision);

// ---------------------------------------------------------------- projector
struct ProjectorImpl : torch::nn::Module {
  ProjectorImpl(int in, int out, const std::string& type, bool bias);
  torch::Tensor forward(const torch::Tensor& x);
  Linear linear_1{nullptr}, linear_2{nullptr};  // linear_2 absent for "linear"
};
TORCH_MODULE(Projector);

// ---------------------------------------------------------------- decoder (Llama / Mistral)
// CUDA decode attention for the static cache (decoder.cpp; bf16/fp16, exposed for tests).
// q (S, H, 1, D); kc/vc the (S, Hkv, L, D) view of a token-major (S, L, Hkv, D) cache; slot s
// attends to keys [0, write_pos[s]]. `flash_decode` is FlashAttention-2's varlen kernel with
// per-slot lengths; `flash_decode_dense` its dense kernel over [0, attend_len) for every slot,
// exact only when the keys and values past each slot's write position are zero.
torch::Tensor flash_decode(const torch::Tensor& q, const torch::Tensor& kc, const torch::Tensor& vc,
                           const torch::Tensor& write_pos, int64_t max_k, KVCache* step_cache = nullptr);
// cuDNN's fused attention over keys [0, n) of every slot with an additive mask (S, 1, 1, n) that
// hides each slot's keys past its write position (the CUDA default; throws if cuDNN lacks it).
torch::Tensor cudnn_decode(const torch::Tensor& q, const torch::Tensor& kc, const torch::Tensor& vc,
                           const torch::Tensor& mask);
torch::Tensor flash_decode_dense(const torch::Tensor& q, const torch::Tensor& kc, const torch::Tensor& vc,
                                 const torch::Tensor& write_pos, int64_t attend_len);

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int dim, double eps);
  torch::Tensor forward(const torch::Tensor& x);
  double eps;
  torch::Tensor weight;  // (C)
};
TORCH_MODULE(RMSNorm);

struct LlamaAttentionImpl : torch::nn::Module {
  explicit LlamaAttentionImpl(const TextConfig& c);
  // x (B, T, C); cos/sin (B, T, D); mask additive (B, 1, T, Tk) or undefined (causal).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, int layer);
  // q (B, H, T, D) after RoPE, k/v (B, Hkv, T, D): the static-cache paths (see KVCache).
  torch::Tensor forward_static(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& mask, KVCache& cache, int layer);
  int heads, kv_heads, head_dim;
  int sliding_window;  // 0 = none; else keys j with i - window < j <= i (TextConfig::sliding_window)
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  FusedLinear qkv;  // q/k/v in one GEMM for inference, once LlamaModel::fuse_projections ran
};
TORCH_MODULE(LlamaAttention);

struct LlamaMlpImpl : torch::nn::Module {
  explicit LlamaMlpImpl(const TextConfig& c);
  torch::Tensor forward(const torch::Tensor& x);
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  FusedLinear gate_up;  // gate/up in one GEMM for inference
};
TORCH_MODULE(LlamaMlp);

struct LlamaLayerImpl : torch::nn::Module {
  explicit LlamaLayerImpl(const TextConfig& c);
  // x + attention(norm(x)), then + mlp(norm(.)): one decoder layer.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const torch::Tensor& mask, KVCache* cache, int index);
  LlamaAttention self_attn{nullptr};
  LlamaMlp mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(LlamaLayer);

struct LlamaModelImpl : torch::nn::Module {
  explicit LlamaModelImpl(const TextConfig& c);
  // embeds (B, T, C), positions (B, T) int64 -> final-norm hidden states (B, T, C).
  torch::Tensor forward(const torch::Tensor& embeds, const torch::Tensor& positions,
                        const torch::Tensor& mask, KVCache* cache);
  TextConfig cfg;
  // Gradient checkpointing (training without a cache): each layer's activations are dropped
  // after the forward and recomputed in the backward (with the same dropout masks: the RNG
  // state is saved and replayed), trading one extra layer forward for activation memory.
  bool gradient_checkpointing = false;
  // Inference speed: q/k/v and gate/up projections of every layer become one GEMM each
  // (FusedLinear: same memory, used only without gradients or an active LoRA). Idempotent.
  // Measured 0.191 -> 0.135 ms per layer for the seven GEMMs alone at 64 rows on an H200; the
  // whole engine step gained less (15.45 -> 15.2 ms, bench/RESULTS.md).
  bool fuse_projections();  // true if it fused anything (false: already fused)
  torch::Tensor rope_inv_freq(const torch::Device& device);  // (D/2) fp32, 1 / theta^(2i/D)
  torch::Tensor inv_freq;  // cache of rope_inv_freq (not a parameter or buffer)
  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};
};
TORCH_MODULE(LlamaModel);

struct CausalLMImpl : torch::nn::Module {
  explicit CausalLMImpl(const TextConfig& c);
  LlamaModel model{nullptr};
  Linear lm_head{nullptr};  // (V, C), no bias
};
TORCH_MODULE(CausalLM);

// ---------------------------------------------------------------- LLaVA
struct ImageInput {
  torch::Tensor pixels;  // (N, 3, H, W) float32: anyres = base image first, then grid crops row-major
  int orig_h = 0, orig_w = 0;
};

struct LlavaImpl : torch::nn::Module {
  explicit LlavaImpl(const LlavaConfig& c);

  // Projected image features in the order they are spliced: (n_tokens, C_text).
  torch::Tensor encode_image(const ImageInput& image);
  // Vision tower + projector over crops (N, 3, H, W) -> (N, P, C_text), no anyres packing: the
  // per-crop features encode_image starts from (a batch of `pad`-mode images in one call).
  torch::Tensor encode_crops(const torch::Tensor& pixels);
  // Number of feature vectors encode_image returns for an image of this size (no compute).
  int64_t num_image_tokens(int orig_h, int orig_w) const;
  // Token embeddings (1, T, C) of `ids`, with the single image placeholder id replaced by
  // `image_features` (n, C): T = ids.size() - 1 + n. Throws if the placeholder count != 1
  // when features are given.
  torch::Tensor embed_with_image(const std::vector<int64_t>& ids, const torch::Tensor& image_features,
                                 int64_t placeholder_id);
  // Decoder over embeddings: logits (B, T, V) in fp32 for the positions requested
  // (last_only: only the final position, (B, 1, V)).
  torch::Tensor forward_embeds(const torch::Tensor& embeds, const torch::Tensor& positions,
                               KVCache* cache, bool last_only, const torch::Tensor& mask = {});
  torch::Tensor embed_tokens(const torch::Tensor& ids);  // (B, T) -> (B, T, C)

  LlavaConfig cfg;
  ClipVision vision_tower{nullptr};
  Projector multi_modal_projector{nullptr};
  CausalLM language_model{nullptr};
  torch::Tensor image_newline;  // (C_text), anyres only
};
TORCH_MODULE(Llava);

struct LoadOptions {
  torch::Device device = torch::kCPU;
  torch::ScalarType dtype = torch::kFloat32;
  std::string vision_tower;  // override for original-layout checkpoints
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's (LlavaConfig::image_backend)
};

// Builds the model for `dir`'s config and loads every tensor (name-mapped, shape-checked).
// A missing or unexpected tensor is a stic::Error naming it and the file.
Llava load_llava(const std::string& dir, const LoadOptions& opts);
// tie_word_embeddings: lm_head's weight becomes the embedding tensor itself (one tensor, one
// gradient, as HF's tie_weights()). Its registered parameter "lm_head.weight" stays, sharing the
// storage but unused by the forward: training skips it (set_trainable) and full checkpoints leave
// it out (save_full_checkpoint), as HF saves tied weights once.
void tie_embeddings(Llava& model);
Llava load_llava(const LlavaConfig& cfg, const LoadOptions& opts);

// Maps a checkpoint key to our module name; "" means "ignore this key" (rotary buffers,
// position_ids). Exposed for tests.
std::string canonical_key(const std::string& key, CheckpointLayout layout, bool from_vision_folder);

// (h, w) of the unpadded feature grid, HF's or original LLaVA's arithmetic.
std::pair<int64_t, int64_t> unpadded_grid(int64_t cur_h, int64_t cur_w, int64_t orig_h, int64_t orig_w, bool round7);
std::pair<int, int> best_resolution(int orig_h, int orig_w, const std::vector<std::pair<int, int>>& pinpoints);

}  // namespace stic
