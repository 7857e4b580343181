#include "stic/model/config.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace stic {
namespace {

json read_json(const std::string& path) {
  std::string text = read_text_file(path);
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
}

template <typename T>
void get_if(const json& j, const char* key, T& out) {
  if (j.contains(key) && !j[key].is_null()) out = j[key].get<T>();
}

TextConfig parse_text(const json& t, const std::string& where) {
  TextConfig c;
  std::string mt = t.value("model_type", std::string("llama"));
  if (mt == "llava_mistral" || mt == "mistral") {
    c.arch = "mistral";
    c.intermediate_size = 14336;
    c.num_kv_heads = 8;
    c.max_position_embeddings = 4096 * 32;
    c.sliding_window = 4096;
  } else if (mt == "llava_llama" || mt == "llama" || mt == "llava") {
    c.arch = "llama";
  } else {
    fail(where, ": text model_type '", mt, "' is not supported (expected llama or mistral)");
  }
  get_if(t, "vocab_size", c.vocab_size);
  get_if(t, "hidden_size", c.hidden_size);
  get_if(t, "intermediate_size", c.intermediate_size);
  get_if(t, "num_hidden_layers", c.num_layers);
  get_if(t, "num_attention_heads", c.num_heads);
  if (mt == "llama" || mt == "llava_llama" || mt == "llava") c.num_kv_heads = c.num_heads;
  get_if(t, "num_key_value_heads", c.num_kv_heads);
  c.head_dim = c.hidden_size / c.num_heads;
  get_if(t, "head_dim", c.head_dim);
  get_if(t, "rms_norm_eps", c.rms_norm_eps);
  get_if(t, "rope_theta", c.rope_theta);
  if (t.contains("rope_parameters") && t["rope_parameters"].is_object()) {
    get_if(t["rope_parameters"], "rope_theta", c.rope_theta);
    std::string type = t["rope_parameters"].value("rope_type", std::string("default"));
    if (type != "default") fail(where, ": rope_type '", type, "' is not supported (expected default)");
  }
  if (t.contains("rope_scaling") && t["rope_scaling"].is_object()) {
    std::string type = t["rope_scaling"].value("rope_type", t["rope_scaling"].value("type", std::string("default")));
    if (type != "default") fail(where, ": rope_scaling '", type, "' is not supported");
  }
  get_if(t, "max_position_embeddings", c.max_position_embeddings);
  if (t.contains("sliding_window")) c.sliding_window = t["sliding_window"].is_null() ? 0 : t["sliding_window"].get<int>();
  if (t.contains("bos_token_id") && t["bos_token_id"].is_number()) c.bos_token_id = t["bos_token_id"];
  if (t.contains("eos_token_id") && t["eos_token_id"].is_number()) c.eos_token_id = t["eos_token_id"];
  get_if(t, "tie_word_embeddings", c.tie_word_embeddings);
  get_if(t, "attention_bias", c.attention_bias);
  get_if(t, "mlp_bias", c.mlp_bias);
  get_if(t, "hidden_act", c.hidden_act);
  if (c.hidden_act != "silu") fail(where, ": hidden_act '", c.hidden_act, "' is not supported (expected silu)");
  if (c.num_heads % c.num_kv_heads != 0)
    fail(where, ": num_attention_heads ", c.num_heads, " is not a multiple of num_key_value_heads ", c.num_kv_heads);
  return c;
}

VisionConfig parse_vision(const json& v, const std::string& where) {
  VisionConfig c;
  std::string mt = v.value("model_type", std::string("clip_vision_model"));
  if (mt != "clip_vision_model" && mt != "clip")
    fail(where, ": vision model_type '", mt, "' is not supported (expected clip_vision_model)");
  const json& src = (mt == "clip" && v.contains("vision_config")) ? v["vision_config"] : v;
  get_if(src, "hidden_size", c.hidden_size);
  get_if(src, "intermediate_size", c.intermediate_size);
  get_if(src, "num_hidden_layers", c.num_layers);
  get_if(src, "num_attention_heads", c.num_heads);
  get_if(src, "image_size", c.image_size);
  get_if(src, "patch_size", c.patch_size);
  get_if(src, "num_channels", c.num_channels);
  get_if(src, "layer_norm_eps", c.layer_norm_eps);
  get_if(src, "hidden_act", c.hidden_act);
  if (c.hidden_act != "quick_gelu" && c.hidden_act != "gelu")
    fail(where, ": vision hidden_act '", c.hidden_act, "' is not supported (expected quick_gelu or gelu)");
  return c;
}

std::vector<std::pair<int, int>> parse_pinpoints(const json& j, const std::string& where) {
  std::vector<std::pair<int, int>> out;
  if (j.is_string()) fail(where, ": image_grid_pinpoints given as a string ('", j.get<std::string>(),
                          "'); expected a list of [height, width]");
  for (auto& p : j) {
    if (!p.is_array() || p.size() != 2) fail(where, ": image_grid_pinpoints entries must be [height, width]");
    out.emplace_back(p[0].get<int>(), p[1].get<int>());
  }
  return out;
}

void parse_preprocessor(LlavaConfig& c, const std::string& path, bool* do_pad) {
  if (!file_exists(path)) return;
  json p = read_json(path);
  if (p.contains("size")) {
    const auto& s = p["size"];
    if (s.is_number()) c.shortest_edge = s.get<int>();
    else if (s.contains("shortest_edge")) c.shortest_edge = s["shortest_edge"].get<int>();
    else if (s.contains("height")) c.shortest_edge = s["height"].get<int>();
  }
  if (p.contains("crop_size")) {
    const auto& s = p["crop_size"];
    if (s.is_number()) c.crop_h = c.crop_w = s.get<int>();
    else {
      get_if(s, "height", c.crop_h);
      get_if(s, "width", c.crop_w);
    }
  }
  if (p.contains("image_mean")) {
    auto m = p["image_mean"].get<std::vector<float>>();
    if (m.size() == 3) c.image_mean = {m[0], m[1], m[2]};
  }
  if (p.contains("image_std")) {
    auto m = p["image_std"].get<std::vector<float>>();
    if (m.size() == 3) c.image_std = {m[0], m[1], m[2]};
  }
  if (do_pad && p.contains("do_pad") && p["do_pad"].is_boolean()) *do_pad = p["do_pad"].get<bool>();
}

std::string guess_template(const LlavaConfig& c) {
  std::string name = fs::path(c.dir).filename().string();
  for (auto& ch : name) ch = static_cast<char>(std::tolower(ch));
  if (c.text.arch == "mistral" || name.find("mistral") != std::string::npos) return "mistral_instruct";
  return "vicuna_v1";
}

}  // namespace

LlavaConfig load_llava_config(const std::string& dir, const std::string& vision_tower) {
  if (!dir_exists(dir)) fail(dir, ": model folder does not exist");
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  if (!file_exists(cfg_path)) fail(cfg_path, ": missing (a model folder needs config.json)");
  json j = read_json(cfg_path);
  LlavaConfig c;
  c.dir = dir;
  c.model_type = j.value("model_type", std::string());
  const bool hf_layout = (c.model_type == "llava" && j.contains("text_config")) || c.model_type == "llava_next";
  if (hf_layout) {
    c.layout = CheckpointLayout::LlavaHf;
    if (!j.contains("text_config")) fail(cfg_path, ": model_type ", c.model_type, " needs a text_config");
    c.text = parse_text(j["text_config"], cfg_path);
    c.vision = parse_vision(j.value("vision_config", json::object()), cfg_path);
    // llava-hf defaults: CLIP ViT-L/14-336 shapes when the config leaves them out
    if (!j.value("vision_config", json::object()).contains("hidden_size")) {
      c.vision.hidden_size = 1024; c.vision.intermediate_size = 4096; c.vision.num_layers = 24;
      c.vision.num_heads = 16; c.vision.image_size = 336; c.vision.patch_size = 14;
    }
    if (j.contains("image_token_index")) c.image_token_id = j["image_token_index"].get<long>();
    else if (j.contains("image_token_id")) c.image_token_id = j["image_token_id"].get<long>();
    else c.image_token_id = 32000;
    get_if(j, "projector_hidden_act", c.projector_act);
    get_if(j, "multimodal_projector_bias", c.projector_bias);
    if (j.contains("vision_feature_layer")) {
      if (j["vision_feature_layer"].is_array()) c.feature_layers = j["vision_feature_layer"].get<std::vector<int>>();
      else c.feature_layers = {j["vision_feature_layer"].get<int>()};
    }
    get_if(j, "vision_feature_select_strategy", c.select_strategy);
    if (c.model_type == "llava_next") {
      c.aspect = AspectMode::Anyres;
      c.image_newline = true;
      if (j.contains("image_grid_pinpoints")) c.pinpoints = parse_pinpoints(j["image_grid_pinpoints"], cfg_path);
      else c.pinpoints = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
      c.shortest_edge = c.crop_h = c.crop_w = c.vision.image_size;
      parse_preprocessor(c, (fs::path(dir) / "preprocessor_config.json").string(), nullptr);
    } else {
      bool do_pad = false;
      c.shortest_edge = c.crop_h = c.crop_w = c.vision.image_size;
      parse_preprocessor(c, (fs::path(dir) / "preprocessor_config.json").string(), &do_pad);
      c.aspect = do_pad ? AspectMode::Pad : AspectMode::Crop;
    }
    if (j.contains("tie_word_embeddings") && j["tie_word_embeddings"].is_boolean())
      c.text.tie_word_embeddings = j["tie_word_embeddings"].get<bool>();
  } else if (c.model_type == "llava_llama" || c.model_type == "llava_mistral" || c.model_type == "llava") {
    c.layout = CheckpointLayout::Original;
    c.text = parse_text(j, cfg_path);
    c.image_token_id = -200;
    c.unpad_round7 = false;
    get_if(j, "mm_projector_type", c.projector_type);
    if (c.projector_type != "mlp2x_gelu" && c.projector_type != "linear")
      fail(cfg_path, ": mm_projector_type '", c.projector_type, "' is not supported (expected mlp2x_gelu or linear)");
    int layer = -2;
    get_if(j, "mm_vision_select_layer", layer);
    c.feature_layers = {layer};
    std::string feat = j.value("mm_vision_select_feature", std::string("patch"));
    c.select_strategy = feat == "cls_patch" ? "full" : "default";
    std::string ar = j.value("image_aspect_ratio", std::string("square"));
    std::string merge = j.value("mm_patch_merge_type", std::string("flat"));
    if (ar == "anyres" || ar.rfind("anyres", 0) == 0) {
      c.aspect = AspectMode::Anyres;
      if (j.contains("image_grid_pinpoints")) c.pinpoints = parse_pinpoints(j["image_grid_pinpoints"], cfg_path);
      if (merge.find("unpad") == std::string::npos)
        fail(cfg_path, ": mm_patch_merge_type '", merge, "' is not supported with anyres (expected spatial_unpad)");
      c.image_newline = true;
    } else if (ar == "pad") {
      c.aspect = AspectMode::Pad;
    } else {
      c.aspect = AspectMode::Crop;
    }
    std::string vt = vision_tower;
    if (vt.empty()) vt = j.value("mm_vision_tower", j.value("vision_tower", std::string()));
    std::string resolved;
    if (!vt.empty()) {
      if (fs::path(vt).is_absolute() && dir_exists(vt)) resolved = vt;
      else if (dir_exists((fs::path(dir) / vt).string())) resolved = (fs::path(dir) / vt).string();
      else if (dir_exists(vt)) resolved = vt;
    }
    if (resolved.empty())
      fail(cfg_path, ": vision tower '", vt, "' is not a local folder; pass --vision-tower DIR (a CLIP checkpoint "
           "folder with config.json and model.safetensors)");
    c.vision_dir = resolved;
    const std::string vcfg = (fs::path(resolved) / "config.json").string();
    if (!file_exists(vcfg)) fail(vcfg, ": missing (the vision tower folder needs config.json)");
    c.vision = parse_vision(read_json(vcfg), vcfg);
    c.shortest_edge = c.crop_h = c.crop_w = c.vision.image_size;
    parse_preprocessor(c, (fs::path(resolved) / "preprocessor_config.json").string(), nullptr);
    if (j.contains("mm_hidden_size") && j["mm_hidden_size"].get<int>() != c.vision.hidden_size)
      fail(cfg_path, ": mm_hidden_size ", j["mm_hidden_size"].get<int>(), " does not match the vision tower's hidden_size ",
           c.vision.hidden_size, " (", vcfg, ")");
  } else {
    fail(cfg_path, ": unknown model_type '", c.model_type,
         "' (expected llava, llava_next, llava_llama or llava_mistral)");
  }
  if (c.select_strategy != "default" && c.select_strategy != "full")
    fail(cfg_path, ": vision_feature_select_strategy '", c.select_strategy, "' is not supported (expected default or full)");
  if (c.aspect == AspectMode::Anyres && c.pinpoints.empty())
    fail(cfg_path, ": anyres needs image_grid_pinpoints");
  c.default_template = guess_template(c);
  return c;
}

}  // namespace stic
