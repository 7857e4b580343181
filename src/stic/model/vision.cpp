// CLIP ViT vision tower and the multimodal projector (HF CLIPVisionModel numerics).
#include <algorithm>

#include "stic/model/llava.h"
#include "stic/util/compat.h"
#include "stic/util/error.h"

namespace stic {
namespace nn = torch::nn;

ClipAttentionImpl::ClipAttentionImpl(const VisionConfig& c)
    : heads(c.num_heads), head_dim(c.hidden_size / c.num_heads) {
  q_proj = register_module("q_proj", Linear(c.hidden_size, c.hidden_size, true));
  k_proj = register_module("k_proj", Linear(c.hidden_size, c.hidden_size, true));
  v_proj = register_module("v_proj", Linear(c.hidden_size, c.hidden_size, true));
  out_proj = register_module("out_proj", Linear(c.hidden_size, c.hidden_size, true));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x) {
  const auto n = x.size(0), t = x.size(1);
  auto split = [&](const torch::Tensor& y) { return y.view({n, t, heads, head_dim}).transpose(1, 2); };
  auto q = split(q_proj(x)), k = split(k_proj(x)), v = split(v_proj(x));  // (N, H, T, D)
  auto o = compat::attention(q, k, v, {}, /*causal=*/false);               // (N, H, T, D)
  return out_proj(o.transpose(1, 2).reshape({n, t, heads * head_dim}));
}

ClipMlpImpl::ClipMlpImpl(const VisionConfig& c) : quick_gelu(c.hidden_act == "quick_gelu") {
  fc1 = register_module("fc1", Linear(c.hidden_size, c.intermediate_size, true));
  fc2 = register_module("fc2", Linear(c.intermediate_size, c.hidden_size, true));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  auto h = fc1(x);
  h = quick_gelu ? h * torch::sigmoid(1.702 * h) : torch::gelu(h);
  return fc2(h);
}

ClipLayerImpl::ClipLayerImpl(const VisionConfig& c) {
  self_attn = register_module("self_attn", ClipAttention(c));
  layer_norm1 = register_module("layer_norm1",
                                nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  mlp = register_module("mlp", ClipMlp(c));
  layer_norm2 = register_module("layer_norm2",
                                nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

torch::Tensor ClipLayerImpl::forward(const torch::Tensor& x) {
  auto h = x + self_attn(layer_norm1(x));
  return h + mlp(layer_norm2(h));
}

ClipEmbeddingsImpl::ClipEmbeddingsImpl(const VisionConfig& c) {
  class_embedding = register_parameter("class_embedding", torch::zeros({c.hidden_size}));
  patch_embedding = register_module(
      "patch_embedding",
      nn::Conv2d(nn::Conv2dOptions(c.num_channels, c.hidden_size, c.patch_size).stride(c.patch_size).bias(false)));
  const int positions = c.tokens_per_side() * c.tokens_per_side() + 1;
  position_embedding = register_module("position_embedding", nn::Embedding(positions, c.hidden_size));
}

torch::Tensor ClipEmbeddingsImpl::forward(const torch::Tensor& pixels) {
  const auto n = pixels.size(0);
  auto patches = patch_embedding(pixels.to(patch_embedding->weight.dtype()));  // (N, C, h, w)
  patches = patches.flatten(2).transpose(1, 2);                               // (N, P, C)
  auto cls = class_embedding.view({1, 1, -1}).expand({n, 1, class_embedding.size(0)});
  auto x = torch::cat({cls.to(patches.dtype()), patches}, 1);                 // (N, 1 + P, C)
  return x + position_embedding->weight.unsqueeze(0);
}

ClipEncoderImpl::ClipEncoderImpl(const VisionConfig& c) {
  layers = register_module("layers", nn::ModuleList());
  for (int i = 0; i < c.num_layers; ++i) layers->push_back(ClipLayer(c));
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const VisionConfig& c) {
  embeddings = register_module("embeddings", ClipEmbeddings(c));
  pre_layrnorm = register_module("pre_layrnorm",
                                 nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  encoder = register_module("encoder", ClipEncoder(c));
  post_layernorm = register_module("post_layernorm",
                                   nn::LayerNorm(nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
}

ClipVisionImpl::ClipVisionImpl(const VisionConfig& c) : cfg(c) {
  vision_model = register_module("vision_model", ClipVisionTransformer(c));
}

torch::Tensor ClipVisionImpl::forward_features(const torch::Tensor& pixels, const std::vector<int>& layers) {
  const int total = cfg.num_layers + 1;  // hidden states: embeddings + one per layer
  std::vector<int> idx;
  for (int l : layers) {
    int i = l < 0 ? total + l : l;
    if (i < 0 || i >= total) fail("vision_feature_layer ", l, " is out of range for a ", cfg.num_layers, "-layer vision tower");
    idx.push_back(i);
  }
  const int deepest = *std::max_element(idx.begin(), idx.end());
  std::vector<torch::Tensor> hidden(total);
  auto x = vision_model->pre_layrnorm(vision_model->embeddings(pixels));  // (N, 1 + P, C)
  hidden[0] = x;
  auto& enc_layers = *vision_model->encoder->layers;
  for (int i = 1; i <= deepest; ++i) {
    x = enc_layers[i - 1]->as<ClipLayerImpl>()->forward(x);
    hidden[i] = x;
  }
  std::vector<torch::Tensor> picked;
  for (int i : idx) picked.push_back(hidden[i]);
  return picked.size() == 1 ? picked[0] : torch::cat(picked, -1);
}

ProjectorImpl::ProjectorImpl(int in, int out, const std::string& type, bool bias) {
  linear_1 = register_module("linear_1", Linear(in, out, bias));
  if (type == "mlp2x_gelu") linear_2 = register_module("linear_2", Linear(out, out, bias));
}

torch::Tensor ProjectorImpl::forward(const torch::Tensor& x) {
  auto h = linear_1(x);
  if (!linear_2) return h;
  return linear_2(torch::gelu(h));  // exact (erf) GELU, HF's ACT2FN["gelu"]
}

}  // namespace stic
