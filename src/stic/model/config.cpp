#include "stic/model/config.h"

#include <cmath>
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
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    out = j[key].get<T>();
  } catch (const json::exception&) {
    fail("'", key, "' must be ", std::is_same<T, std::string>::value ? "text" : std::is_same<T, bool>::value ? "true or false"
                                 : std::is_floating_point<T>::value ? "a number" : "an integer",
         " (got ", j[key].dump(), ")");
  }
}

// Shapes a model can be built from: every size positive, heads dividing the widths, layer counts
// bounded. A config that breaks one is an error naming the file and the key (not a division by
// zero or an allocation of a negative size later).
void check_shapes(const LlavaConfig& c, const std::string& where) {
  auto positive = [&](const char* what, long v, long max) {
    if (v < 1 || v > max) fail(where, ": ", what, " must lie in [1, ", max, "] (got ", v, ")");
  };
  const TextConfig& t = c.text;
  positive("text num_hidden_layers", t.num_layers, 1024);
  positive("text hidden_size", t.hidden_size, 1 << 16);
  positive("text intermediate_size", t.intermediate_size, 1 << 18);
  positive("text vocab_size", t.vocab_size, 1 << 22);
  positive("text num_attention_heads", t.num_heads, 1024);
  positive("text num_key_value_heads", t.num_kv_heads, 1024);
  positive("text head_dim", t.head_dim, 4096);
  positive("text max_position_embeddings", t.max_position_embeddings, 1 << 24);
  if (t.num_heads % t.num_kv_heads != 0)
    fail(where, ": num_attention_heads ", t.num_heads, " is not a multiple of num_key_value_heads ", t.num_kv_heads);
  if (t.head_dim % 2 != 0) fail(where, ": head_dim ", t.head_dim, " must be even (RoPE rotates pairs)");
  if (!(t.rms_norm_eps >= 0)) fail(where, ": rms_norm_eps must be >= 0");
  if (!(t.rope_theta > 0)) fail(where, ": rope_theta must be > 0");
  const VisionConfig& v = c.vision;
  positive("vision num_hidden_layers", v.num_layers, 1024);
  positive("vision hidden_size", v.hidden_size, 1 << 16);
  positive("vision intermediate_size", v.intermediate_size, 1 << 18);
  positive("vision num_attention_heads", v.num_heads, 1024);
  positive("vision patch_size", v.patch_size, 4096);
  positive("vision image_size", v.image_size, 1 << 14);
  if (v.hidden_size % v.num_heads != 0)
    fail(where, ": the vision tower's num_attention_heads ", v.num_heads, " does not divide its hidden_size ", v.hidden_size);
  if (v.image_size < v.patch_size)
    fail(where, ": the vision tower's image_size ", v.image_size, " is smaller than its patch_size ", v.patch_size);
  if (c.projector_act != "gelu")
    fail(where, ": projector_hidden_act '", c.projector_act, "' is not supported (expected gelu)");
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
  if (c.num_heads < 1) fail(where, ": text num_attention_heads must be >= 1 (got ", c.num_heads, ")");
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
  if (t.contains("sliding_window")) {
    if (t["sliding_window"].is_null()) c.sliding_window = 0;
    else get_if(t, "sliding_window", c.sliding_window);
  }
  if (t.contains("bos_token_id") && t["bos_token_id"].is_number()) c.bos_token_id = t["bos_token_id"];
  if (t.contains("eos_token_id") && t["eos_token_id"].is_number()) c.eos_token_id = t["eos_token_id"];
  get_if(t, "tie_word_embeddings", c.tie_word_embeddings);
  get_if(t, "attention_bias", c.attention_bias);
  get_if(t, "mlp_bias", c.mlp_bias);
  get_if(t, "hidden_act", c.hidden_act);
  if (c.hidden_act != "silu") fail(where, ": hidden_act '", c.hidden_act, "' is not supported (expected silu)");
  if (c.num_kv_heads < 1) fail(where, ": text num_key_value_heads must be >= 1 (got ", c.num_kv_heads, ")");
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

// The image processor's settings: `path` (preprocessor_config.json) or, when it is absent, the
// "image_processor" object nested in processor_config.json beside it (what transformers 5 saves).
// Settings stic's preprocessing cannot honour are errors naming the file and key.
void parse_preprocessor(LlavaConfig& c, const std::string& path, bool* do_pad) {
  std::string where = path;
  json p;
  if (file_exists(path)) {
    p = read_json(path);
  } else {
    const std::string proc = (fs::path(path).parent_path() / "processor_config.json").string();
    if (!file_exists(proc)) return;
    const json j = read_json(proc);
    if (!j.contains("image_processor")) return;
    if (!j["image_processor"].is_object()) fail(proc, ": \"image_processor\" must be an object");
    p = j["image_processor"];
    where = proc + " (image_processor)";
  }
  try {
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
  } catch (const json::exception& e) {
    fail(where, ": a size, crop_size, image_mean or image_std of the wrong kind (", e.what(), ")");
  } catch (const Error& e) {
    fail(where, ": ", e.what());
  }
  if (do_pad && p.contains("do_pad") && p["do_pad"].is_boolean()) *do_pad = p["do_pad"].get<bool>();
  if (p.contains("image_processor_type") && p["image_processor_type"].is_string()) {
    const std::string t = p["image_processor_type"].get<std::string>();
    auto ends_with = [&t](const std::string& suffix) {
      return t.size() >= suffix.size() && t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends_with("Fast")) c.image_backend = ImageBackend::Torchvision;
    else if (ends_with("Pil")) c.image_backend = ImageBackend::Pil;
  }
  // what stic's preprocessing does: resize with bicubic (PIL 3), rescale by 1/255, normalize
  for (const char* k : {"do_resize", "do_rescale", "do_normalize"})
    if (p.contains(k) && p[k].is_boolean() && !p[k].get<bool>())
      fail(where, ": ", k, " false is not supported (stic always resizes, rescales by 1/255 and normalizes)");
  if (p.contains("resample") && p["resample"].is_number() && p["resample"].get<int>() != 3)
    fail(where, ": resample ", p["resample"].dump(), " is not supported (stic resizes with bicubic, PIL's 3)");
  if (p.contains("rescale_factor") && p["rescale_factor"].is_number() &&
      std::abs(p["rescale_factor"].get<double>() - 1.0 / 255.0) > 1e-9)
    fail(where, ": rescale_factor ", p["rescale_factor"].dump(), " is not supported (expected 1/255)");
  if (c.shortest_edge < 1 || c.crop_h < 1 || c.crop_w < 1)
    fail(where, ": size and crop_size must be positive (got ", c.shortest_edge, ", ", c.crop_h, "x", c.crop_w, ")");
}

std::string guess_template(const LlavaConfig& c) {
  std::string name = fs::path(c.dir).filename().string();
  for (auto& ch : name) ch = static_cast<char>(std::tolower(ch));
  if (c.text.arch == "mistral" || name.find("mistral") != std::string::npos) return "mistral_instruct";
  return "vicuna_v1";
}

}  // namespace

namespace {
LlavaConfig load_llava_config_unchecked(const std::string& dir, const std::string& vision_tower);
}

LlavaConfig load_llava_config(const std::string& dir, const std::string& vision_tower) {
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  LlavaConfig c;
  try {
    c = load_llava_config_unchecked(dir, vision_tower);
  } catch (const json::exception& e) {  // a value of the wrong kind where the code reads it directly
    fail(cfg_path, ": a value has the wrong type (", e.what(), ")");
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.rfind(dir, 0) == 0 || m.find(": ") < m.find('\'')) throw;  // already says where
    fail(cfg_path, ": ", m);
  }
  check_shapes(c, cfg_path);
  return c;
}

namespace {
LlavaConfig load_llava_config_unchecked(const std::string& dir, const std::string& vision_tower) {
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
    if (!j.contains("text_config") || !j["text_config"].is_object())
      fail(cfg_path, ": model_type ", c.model_type, " needs a text_config object");
    c.text = parse_text(j["text_config"], cfg_path);
    c.vision = parse_vision(j.value("vision_config", json::object()), cfg_path);
    // llava-hf defaults: CLIP ViT-L/14-336 shapes when the config leaves them out
    if (!j.value("vision_config", json::object()).contains("hidden_size")) {
      c.vision.hidden_size = 1024; c.vision.intermediate_size = 4096; c.vision.num_layers = 24;
      c.vision.num_heads = 16; c.vision.image_size = 336; c.vision.patch_size = 14;
    }
    if (j.contains("image_token_index")) get_if(j, "image_token_index", c.image_token_id);
    else if (j.contains("image_token_id")) get_if(j, "image_token_id", c.image_token_id);
    else c.image_token_id = 32000;
    get_if(j, "projector_hidden_act", c.projector_act);
    get_if(j, "multimodal_projector_bias", c.projector_bias);
    if (j.contains("vision_feature_layer")) {
      if (j["vision_feature_layer"].is_array()) c.feature_layers = j["vision_feature_layer"].get<std::vector<int>>();
      else {
        int layer = 0;
        get_if(j, "vision_feature_layer", layer);
        c.feature_layers = {layer};
      }
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
    int mm_hidden = c.vision.hidden_size;
    get_if(j, "mm_hidden_size", mm_hidden);
    if (mm_hidden != c.vision.hidden_size)
      fail(cfg_path, ": mm_hidden_size ", mm_hidden, " does not match the vision tower's hidden_size ",
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
}  // namespace

}  // namespace stic
