// LLaVA assembly: image features (vision tower -> feature selection -> projector -> anyres
// packing with unpad and image_newline), splicing into token embeddings, and loading.
#include "stic/model/llava.h"

#include <cmath>
#include <map>
#include <set>

#include "stic/image/image.h"
#include "stic/io/safetensors.h"
#include "stic/util/error.h"

namespace stic {

LlavaImpl::LlavaImpl(const LlavaConfig& c) : cfg(c) {
  vision_tower = register_module("vision_tower", ClipVision(c.vision));
  const int in = c.vision.hidden_size * static_cast<int>(c.feature_layers.size());
  multi_modal_projector =
      register_module("multi_modal_projector", Projector(in, c.text.hidden_size, c.projector_type, c.projector_bias));
  language_model = register_module("language_model", CausalLM(c.text));
  if (c.image_newline) image_newline = register_parameter("image_newline", torch::zeros({c.text.hidden_size}));
}

std::pair<int, int> best_resolution(int orig_h, int orig_w, const std::vector<std::pair<int, int>>& pinpoints) {
  // the preprocessing and the feature packing must agree on the grid: one implementation
  return select_best_resolution(orig_h, orig_w, pinpoints);
}

std::pair<int64_t, int64_t> unpadded_grid(int64_t cur_h, int64_t cur_w, int64_t orig_h, int64_t orig_w, bool round7) {
  // HF: int(round(x, 7)); original LLaVA: int(x). Both then trim (cur - new) // 2 from each side.
  auto to_int = [&](double x) {
    return round7 ? static_cast<int64_t>(std::nearbyint(x * 1e7) / 1e7) : static_cast<int64_t>(x);
  };
  const double orig_aspect = static_cast<double>(orig_w) / orig_h;
  const double cur_aspect = static_cast<double>(cur_w) / cur_h;
  if (orig_aspect > cur_aspect) {
    const double scale = static_cast<double>(cur_w) / orig_w;
    const int64_t new_h = to_int(orig_h * scale);
    const int64_t pad = (cur_h - new_h) / 2;
    return {cur_h - 2 * pad, cur_w};
  }
  const double scale = static_cast<double>(cur_h) / orig_h;
  const int64_t new_w = to_int(orig_w * scale);
  const int64_t pad = (cur_w - new_w) / 2;
  return {cur_h, cur_w - 2 * pad};
}

int64_t LlavaImpl::num_image_tokens(int orig_h, int orig_w) const {
  const int64_t side = cfg.vision.tokens_per_side();
  const int64_t per_crop = side * side + (cfg.select_strategy == "full" ? 1 : 0);
  if (cfg.aspect != AspectMode::Anyres) return per_crop + (cfg.image_newline && cfg.layout == CheckpointLayout::LlavaHf ? 1 : 0);
  auto [bh, bw] = best_resolution(orig_h, orig_w, cfg.pinpoints);
  const int64_t gh = bh / cfg.vision.image_size * side, gw = bw / cfg.vision.image_size * side;
  auto [uh, uw] = unpadded_grid(gh, gw, orig_h, orig_w, cfg.unpad_round7);
  return per_crop + uh * (uw + 1);
}

torch::Tensor LlavaImpl::encode_crops(const torch::Tensor& crops) {
  const auto dtype = multi_modal_projector->linear_1->weight.scalar_type();
  const auto device = multi_modal_projector->linear_1->weight.device();
  auto pixels = crops.to(device, dtype);                                          // (N, 3, H, W)
  auto feats = vision_tower->forward_features(pixels, cfg.feature_layers);        // (N, 1+P, Cv*k)
  if (cfg.select_strategy == "default") feats = feats.narrow(1, 1, feats.size(1) - 1);  // drop CLS
  return multi_modal_projector(feats);                                            // (N, P, C)
}

torch::Tensor LlavaImpl::encode_image(const ImageInput& image) {
  auto feats = encode_crops(image.pixels);                                        // (N, P, C)
  const int64_t c = feats.size(-1);
  if (cfg.aspect != AspectMode::Anyres || feats.size(0) == 1) {
    auto f = feats[0];                                                            // (P, C)
    if (cfg.aspect == AspectMode::Anyres && cfg.image_newline && cfg.layout == CheckpointLayout::LlavaHf)
      f = torch::cat({f, image_newline.to(f.dtype()).unsqueeze(0)}, 0);           // HF's single-crop branch
    return f;
  }
  // anyres: base crop + grid (nh x nw crops of side x side tokens), unpadded, newline per row
  const int64_t side = cfg.vision.tokens_per_side();
  if (feats.size(1) != side * side)
    fail("anyres packing needs ", side * side, " tokens per crop, got ", feats.size(1),
         " (select strategy 'full' keeps CLS, which LLaVA-NeXT cannot pack)");
  auto [bh, bw] = best_resolution(image.orig_h, image.orig_w, cfg.pinpoints);
  const int64_t nh = bh / cfg.vision.image_size, nw = bw / cfg.vision.image_size;
  if (feats.size(0) != 1 + nh * nw)
    fail("anyres image has ", feats.size(0), " crops but the grid for ", image.orig_h, "x", image.orig_w, " is ", nh,
         "x", nw, " (+1 base)");
  auto base = feats[0];                                                           // (P, C)
  auto grid = feats.narrow(0, 1, nh * nw).view({nh, nw, side, side, c});
  grid = grid.permute({4, 0, 2, 1, 3}).contiguous().view({c, nh * side, nw * side});  // (C, H, W)
  auto [uh, uw] = unpadded_grid(nh * side, nw * side, image.orig_h, image.orig_w, cfg.unpad_round7);
  grid = grid.narrow(1, (nh * side - uh) / 2, uh).narrow(2, (nw * side - uw) / 2, uw);  // (C, uh, uw)
  if (cfg.image_newline) {
    auto nl = image_newline.to(grid.dtype()).view({c, 1, 1}).expand({c, uh, 1});
    grid = torch::cat({grid, nl}, 2);                                             // (C, uh, uw + 1)
  }
  grid = grid.flatten(1, 2).transpose(0, 1);                                      // (uh * (uw+1), C)
  return torch::cat({base, grid}, 0);
}

torch::Tensor LlavaImpl::embed_tokens(const torch::Tensor& ids) {
  return language_model->model->embed_tokens(ids);
}

torch::Tensor LlavaImpl::embed_with_image(const std::vector<int64_t>& ids, const torch::Tensor& image_features,
                                          int64_t placeholder_id) {
  const auto device = language_model->lm_head->weight.device();
  std::vector<int64_t> pos;
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] == placeholder_id) pos.push_back(static_cast<int64_t>(i));
  auto to_tensor = [&](size_t begin, size_t end) {
    std::vector<int64_t> part(ids.begin() + begin, ids.begin() + end);
    return torch::tensor(part, torch::kInt64).to(device);
  };
  if (!image_features.defined()) {
    if (!pos.empty()) fail("prompt has an <image> marker but no image was given");
    return embed_tokens(to_tensor(0, ids.size()).unsqueeze(0));
  }
  if (pos.size() != 1)
    fail("prompt has ", pos.size(), " <image> markers but 1 image was given (expected exactly one)");
  const size_t p = static_cast<size_t>(pos[0]);
  std::vector<torch::Tensor> parts;
  if (p > 0) parts.push_back(embed_tokens(to_tensor(0, p)));
  parts.push_back(image_features.to(language_model->lm_head->weight.scalar_type()));
  if (p + 1 < ids.size()) parts.push_back(embed_tokens(to_tensor(p + 1, ids.size())));
  return torch::cat(parts, 0).unsqueeze(0);  // (1, T, C)
}

torch::Tensor LlavaImpl::forward_embeds(const torch::Tensor& embeds, const torch::Tensor& positions, KVCache* cache,
                                        bool last_only, const torch::Tensor& mask) {
  auto h = language_model->model->forward(embeds, positions, mask, cache);  // (B, T, C)
  if (last_only) h = h.narrow(1, h.size(1) - 1, 1);
  return language_model->lm_head(h).to(torch::kFloat32);                    // (B, T|1, V)
}

// ---------------------------------------------------------------- loading

namespace {
// transformers 5 writes the CLIP tower without its "vision_model." level
// (vision_tower.embeddings.*); hub checkpoints have vision_tower.vision_model.embeddings.*.
std::string with_vision_model(const std::string& name) {
  const std::string p = "vision_tower.";
  if (name.rfind(p, 0) == 0 && name.compare(p.size(), 13, "vision_model.") != 0)
    return p + "vision_model." + name.substr(p.size());
  return name;
}
std::string canonical_key_raw(const std::string& key, CheckpointLayout layout, bool from_vision_folder);
}  // namespace

std::string canonical_key(const std::string& key, CheckpointLayout layout, bool from_vision_folder) {
  return with_vision_model(canonical_key_raw(key, layout, from_vision_folder));
}

namespace {
std::string canonical_key_raw(const std::string& key, CheckpointLayout layout, bool from_vision_folder) {
  auto starts = [&](const std::string& p) { return key.rfind(p, 0) == 0; };
  auto ends = [&](const std::string& s) { return key.size() >= s.size() && key.compare(key.size() - s.size(), s.size(), s) == 0; };
  if (ends("rotary_emb.inv_freq") || ends("embeddings.position_ids")) return "";
  if (from_vision_folder) {  // a CLIP checkpoint: vision_model.* (CLIPVisionModel) or CLIPModel
    if (starts("vision_model.")) return "vision_tower." + key;
    if (starts("embeddings.") || starts("encoder.") || starts("pre_layrnorm.") || starts("post_layernorm."))
      return "vision_tower." + key;  // a bare CLIPVisionTransformer state dict
    return "";  // text tower / projections of a full CLIPModel
  }
  if (layout == CheckpointLayout::LlavaHf) {
    // transformers >= 4.52 in-memory names (also written by some exporters)
    if (starts("model.language_model.")) return "language_model.model." + key.substr(21);
    if (starts("model.vision_tower.")) return "vision_tower." + key.substr(19);
    if (starts("model.multi_modal_projector.")) return "multi_modal_projector." + key.substr(28);
    if (key == "model.image_newline") return "image_newline";
    if (key == "lm_head.weight") return "language_model.lm_head.weight";
    return key;  // the classic llava-hf names are ours
  }
  // original LLaVA: model.layers.*, model.mm_projector.{0,2} (or .weight for linear), lm_head
  if (starts("model.vision_tower.vision_tower.")) return "vision_tower." + key.substr(32);
  if (starts("model.mm_projector.")) {
    std::string rest = key.substr(19);
    if (rest.rfind("0.", 0) == 0) return "multi_modal_projector.linear_1." + rest.substr(2);
    if (rest.rfind("2.", 0) == 0) return "multi_modal_projector.linear_2." + rest.substr(2);
    return "multi_modal_projector.linear_1." + rest;  // "linear" projector
  }
  if (key == "model.image_newline") return "image_newline";
  if (starts("model.")) return "language_model.model." + key.substr(6);
  if (key == "lm_head.weight") return "language_model.lm_head.weight";
  return key;
}
}  // namespace

Llava load_llava(const std::string& dir, const LoadOptions& opts) {
  return load_llava(load_llava_config(dir, opts.vision_tower), opts);
}

void tie_embeddings(Llava& model) {
  auto& lm = model->language_model;
  torch::NoGradGuard ng;
  lm->lm_head->weight.set_data(lm->model->embed_tokens->weight.data());  // the registered tensor: no memory of its own
  lm->lm_head->weight = lm->model->embed_tokens->weight;                  // forward: the embedding itself
}

Llava load_llava(const LlavaConfig& cfg, const LoadOptions& opts) {
  if (opts.device.is_cuda() && opts.dtype == torch::kFloat32) {
    // fp32 means fp32: no TF32 in cuBLAS matmuls or cuDNN convolutions (HF parity).
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  Llava model(cfg);
  model->eval();
  std::map<std::string, torch::Tensor> params;
  for (auto& p : model->named_parameters()) params[p.key()] = p.value();

  struct Source { const Checkpoint* ck; std::string key; };
  std::map<std::string, Source> found;
  Checkpoint main_ck(cfg.dir);
  std::unique_ptr<Checkpoint> vision_ck;
  auto collect = [&](const Checkpoint& ck, bool vision_folder) {
    for (auto& k : ck.keys()) {
      std::string name = canonical_key(k, cfg.layout, vision_folder);
      if (name.empty()) continue;
      if (!params.count(name)) {
        if (vision_folder) continue;
        fail(ck.file_of(k), ": unexpected tensor '", k, "' (not part of a ", cfg.model_type,
             " model with this config.json)");
      }
      if (found.count(name) && found[name].ck == &ck) fail(ck.file_of(k), ": tensor '", k, "' maps to '", name, "' twice");
      if (!found.count(name)) found[name] = Source{&ck, k};
    }
  };
  collect(main_ck, false);
  if (!cfg.vision_dir.empty()) {
    vision_ck = std::make_unique<Checkpoint>(cfg.vision_dir);
    collect(*vision_ck, true);
  }
  torch::NoGradGuard no_grad;
  for (auto& [name, param] : params) {
    auto it = found.find(name);
    if (it == found.end()) {
      if (name == "language_model.lm_head.weight" && cfg.text.tie_word_embeddings) continue;
      if (name.rfind("vision_tower.vision_model.post_layernorm", 0) == 0) continue;  // unused by LLaVA
      fail(cfg.dir, ": checkpoint is missing tensor '", name, "' (expected by the ", cfg.model_type, " config",
           cfg.vision_dir.empty() ? "" : "; vision tower from " + cfg.vision_dir, ")");
    }
    auto t = it->second.ck->get(it->second.key);
    if (!t.is_floating_point())  // every LLaVA weight is a float: an integer one is a broken file, not a cast
      fail(it->second.ck->file_of(it->second.key), ": tensor '", it->second.key, "' is stored as ", t.scalar_type(),
           "; a weight must be a floating-point dtype (F32, F16, BF16 or F64)");
    if (t.sizes() != param.sizes())
      fail(it->second.ck->file_of(it->second.key), ": tensor '", it->second.key, "' has shape ", t.sizes(),
           ", expected ", param.sizes(), " from config.json");
    param.set_data(t.to(opts.device).to(opts.dtype));
  }
  model->to(opts.device, opts.dtype);
  // tied: the output projection IS the embedding (one tensor, one gradient), as HF's tie_weights()
  // after loading; a saved lm_head.weight is ignored then
  if (cfg.text.tie_word_embeddings) tie_embeddings(model);
  return model;
}

}  // namespace stic
