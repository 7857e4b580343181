// Checkpoint layout conversion, llava-hf <-> original LLaVA. See convert.h.
#include "stic/model/convert.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "stic/io/safetensors.h"
#include "stic/text/tokenizer.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/strings.h"

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

namespace stic {

CheckpointLayout parse_layout(const std::string& name) {
  if (name == "llava-hf") return CheckpointLayout::LlavaHf;
  if (name == "original") return CheckpointLayout::Original;
  fail("--layout '", name, "': unknown layout (expected llava-hf or original)");
}

const char* layout_name(CheckpointLayout layout) {
  return layout == CheckpointLayout::LlavaHf ? "llava-hf" : "original";
}

namespace {

ojson read_ojson(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return ojson::parse(text);
  } catch (const std::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
}

void write_json(const fs::path& path, const ojson& j) { write_file_atomic(path.string(), j.dump(2) + "\n"); }

const char* dtype_name(torch::ScalarType t) {
  return t == torch::kBFloat16 ? "bfloat16" : t == torch::kFloat16 ? "float16" : "float32";
}

// The fields stic reads from a text config, as stic resolved them: written explicitly, so the
// target's defaults (which can differ from the source's) never decide.
void put_text_fields(ojson& t, const TextConfig& c) {
  t["vocab_size"] = c.vocab_size;
  t["hidden_size"] = c.hidden_size;
  t["intermediate_size"] = c.intermediate_size;
  t["num_hidden_layers"] = c.num_layers;
  t["num_attention_heads"] = c.num_heads;
  t["num_key_value_heads"] = c.num_kv_heads;
  t["head_dim"] = c.head_dim;
  t["rms_norm_eps"] = c.rms_norm_eps;
  t["rope_theta"] = c.rope_theta;
  t.erase("rope_parameters");  // rope_theta above (default rope only: stic loads no other)
  t.erase("rope_scaling");
  t["max_position_embeddings"] = c.max_position_embeddings;
  if (c.arch == "mistral") t["sliding_window"] = c.sliding_window > 0 ? ojson(c.sliding_window) : ojson(nullptr);
  t["bos_token_id"] = c.bos_token_id;
  t["eos_token_id"] = c.eos_token_id;
  t["hidden_act"] = c.hidden_act;
  t["attention_bias"] = c.attention_bias;
  t["mlp_bias"] = c.mlp_bias;
  t["tie_word_embeddings"] = c.tie_word_embeddings;
}

// A CLIPVisionConfig with every shape stic resolved (llava-hf configs often leave them to the
// ViT-L/14-336 defaults of LlavaConfig, which CLIPVisionConfig does not share).
ojson vision_config_json(const LlavaConfig& cfg, ojson src) {
  if (!src.is_object()) src = ojson::object();
  if (src.value("model_type", std::string()) == "clip" && src.contains("vision_config")) src = src["vision_config"];
  for (const char* k : {"_name_or_path", "transformers_version", "architectures", "torch_dtype", "dtype"}) src.erase(k);
  ojson v = ojson::object();
  v["model_type"] = "clip_vision_model";
  v["hidden_size"] = cfg.vision.hidden_size;
  v["intermediate_size"] = cfg.vision.intermediate_size;
  v["num_hidden_layers"] = cfg.vision.num_layers;
  v["num_attention_heads"] = cfg.vision.num_heads;
  v["image_size"] = cfg.vision.image_size;
  v["patch_size"] = cfg.vision.patch_size;
  v["num_channels"] = cfg.vision.num_channels;
  v["layer_norm_eps"] = cfg.vision.layer_norm_eps;
  v["hidden_act"] = cfg.vision.hidden_act;
  for (auto it = src.begin(); it != src.end(); ++it)
    if (!v.contains(it.key())) v[it.key()] = it.value();  // projection_dim, dropout, ... as they were
  return v;
}

ojson pinpoints_json(const LlavaConfig& cfg) {
  ojson p = ojson::array();
  for (auto& [h, w] : cfg.pinpoints) p.push_back({h, w});
  return p;
}

// The image processor the original layout's CLIP folder carries (crop and resize sizes, mean,
// std; LLaVA's own pad / anyres steps are in config.json).
ojson clip_processor_json(const LlavaConfig& cfg) {
  ojson p = ojson::object();
  p["crop_size"] = {{"height", cfg.crop_h}, {"width", cfg.crop_w}};
  p["do_center_crop"] = true;
  p["do_convert_rgb"] = true;
  p["do_normalize"] = true;
  p["do_rescale"] = true;
  p["do_resize"] = true;
  p["image_mean"] = {cfg.image_mean[0], cfg.image_mean[1], cfg.image_mean[2]};
  p["image_processor_type"] = "CLIPImageProcessor";
  p["image_std"] = {cfg.image_std[0], cfg.image_std[1], cfg.image_std[2]};
  p["resample"] = 3;
  p["rescale_factor"] = 1.0 / 255.0;
  p["size"] = {{"shortest_edge", cfg.shortest_edge}};
  return p;
}

bool is_weight_file(const std::string& fn) {
  return ends_with(fn, ".safetensors") || fn == "model.safetensors.index.json" || ends_with(fn, ".bin") ||
         fn == "pytorch_model.bin.index.json";
}

// Tokenizer and generation files: everything at the top of the source folder but weights and the
// files the target layout writes itself.
void copy_side_files(const std::string& src_dir, const std::string& out_dir, const std::set<std::string>& skip) {
  std::error_code ec;
  for (auto& e : fs::directory_iterator(src_dir)) {
    if (!e.is_regular_file()) continue;
    const std::string fn = e.path().filename().string();
    if (is_weight_file(fn) || skip.count(fn)) continue;
    fs::copy_file(e.path(), fs::path(out_dir) / fn, fs::copy_options::overwrite_existing, ec);
    if (ec) fail(out_dir, ": cannot copy ", e.path().string(), ": ", ec.message());
  }
}

// Keys the original layout's config holds beyond the text model's: not part of text_config.
bool is_llava_key(const std::string& k) {
  static const std::set<std::string> keys = {
      "architectures", "_name_or_path", "transformers_version", "torch_dtype", "dtype", "model_type",
      "image_aspect_ratio", "image_grid_pinpoints", "vision_tower", "use_mm_proj", "freeze_mm_mlp_adapter",
      "tune_mm_mlp_adapter", "unfreeze_mm_vision_tower", "tokenizer_model_max_length", "tokenizer_padding_side",
      "image_crop_resolution", "image_split_resolution", "pretrain_mm_mlp_adapter"};
  return keys.count(k) || starts_with(k, "mm_") || starts_with(k, "s2");
}

// ------------------------------------------------------------------------------ llava-hf -> original

void to_original(Llava& model, const std::string& out_dir, const ExportOptions& opts) {
  const LlavaConfig& cfg = model->cfg;
  const std::string cfg_path = (fs::path(cfg.dir) / "config.json").string();
  const ojson src = read_ojson(cfg_path);
  // what the original layout cannot say
  if (cfg.feature_layers.size() != 1)
    fail(cfg_path, ": vision_feature_layer ", ojson(cfg.feature_layers).dump(),
         " lists several layers; the original layout's mm_vision_select_layer holds one");
  if (!cfg.projector_bias)
    fail(cfg_path, ": multimodal_projector_bias false has no original-layout form (mm_projector's linears have biases)");
  if (cfg.projector_act != "gelu")
    fail(cfg_path, ": projector_hidden_act '", cfg.projector_act, "' has no original-layout form (mlp2x_gelu is GELU)");

  std::map<std::string, torch::Tensor> main, vision;
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    auto t = p.value().detach().to(torch::kCPU).contiguous();
    if (n == "language_model.lm_head.weight" && cfg.text.tie_word_embeddings) continue;
    std::string key;
    if (starts_with(n, "language_model.model.")) key = "model." + n.substr(21);
    else if (n == "language_model.lm_head.weight") key = "lm_head.weight";
    else if (starts_with(n, "multi_modal_projector.linear_1.")) key = "model.mm_projector.0." + n.substr(31);
    else if (starts_with(n, "multi_modal_projector.linear_2.")) key = "model.mm_projector.2." + n.substr(31);
    else if (n == "image_newline") key = "model.image_newline";
    else if (starts_with(n, "vision_tower.")) {
      key = "model.vision_tower.vision_tower." + n.substr(13);
      vision[n.substr(13)] = t;  // vision_model.*, as a CLIPVisionModel folder stores it
    } else fail("export --layout original: no original-layout name for tensor '", n, "'");
    main[key] = t;
  }

  ojson c = ojson::object();
  c["architectures"] = {cfg.text.arch == "mistral" ? "LlavaMistralForCausalLM" : "LlavaLlamaForCausalLM"};
  c["model_type"] = cfg.text.arch == "mistral" ? "llava_mistral" : "llava_llama";
  const ojson tsrc = src.value("text_config", ojson::object());
  for (auto it = tsrc.begin(); it != tsrc.end(); ++it)
    if (it.key() != "model_type" && !is_llava_key(it.key())) c[it.key()] = it.value();
  put_text_fields(c, cfg.text);
  if (src.contains("pad_token_id") && !src["pad_token_id"].is_null()) c["pad_token_id"] = src["pad_token_id"];
  c["torch_dtype"] = dtype_name(opts.dtype != torch::ScalarType::Undefined ? opts.dtype
                                                                           : model->multi_modal_projector->linear_1->weight.scalar_type());
  c["mm_vision_tower"] = "./vision_tower";
  c["mm_hidden_size"] = cfg.vision.hidden_size;
  c["mm_projector_type"] = "mlp2x_gelu";
  c["mm_vision_select_layer"] = cfg.feature_layers[0];
  c["mm_vision_select_feature"] = cfg.select_strategy == "full" ? "cls_patch" : "patch";
  const bool anyres = cfg.aspect == AspectMode::Anyres;
  c["mm_patch_merge_type"] = anyres ? "spatial_unpad" : "flat";
  c["image_aspect_ratio"] = anyres ? "anyres" : cfg.aspect == AspectMode::Pad ? "pad" : "square";
  if (anyres) c["image_grid_pinpoints"] = pinpoints_json(cfg);
  c["mm_use_im_start_end"] = false;
  c["mm_use_im_patch_token"] = false;
  c["use_mm_proj"] = true;
  c["unfreeze_mm_vision_tower"] = true;  // the tower's weights are in this checkpoint

  ojson vsrc = src.value("vision_config", ojson::object());
  ojson vc = vision_config_json(cfg, vsrc);
  vc["architectures"] = {"CLIPVisionModel"};

  const fs::path out(out_dir), vdir = out / "vision_tower";
  std::error_code ec;
  fs::create_directories(vdir, ec);
  if (ec) fail(vdir.string(), ": cannot create folder: ", ec.message());
  save_sharded_checkpoint(out_dir, main, opts);
  copy_side_files(cfg.dir, out_dir, {"config.json", "preprocessor_config.json", "processor_config.json"});
  write_json(out / "config.json", c);
  write_json(vdir / "config.json", vc);
  write_json(vdir / "preprocessor_config.json", clip_processor_json(cfg));
  ExportOptions vo = opts;
  vo.max_shard_bytes = INT64_MAX;
  save_sharded_checkpoint(vdir.string(), vision, vo);
}

// ------------------------------------------------------------------------------ original -> llava-hf

ojson added_token_json(int64_t id, const std::string& content) {
  return ojson{{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
               {"rstrip", false},   {"normalized", false}, {"special", true}};
}

bool has_image_token(const Tokenizer& tok) {
  for (auto& a : tok.added_tokens())
    if (a.content == "<image>") return true;
  return false;
}

// A tokenizer without "<image>" needs a file to record the added token in.
void check_image_token_file(const LlavaConfig& cfg, const Tokenizer& tok) {
  const fs::path d(cfg.dir);
  if (has_image_token(tok) || file_exists((d / "tokenizer.json").string()) ||
      file_exists((d / "tokenizer_config.json").string()))
    return;
  fail((d / "tokenizer_config.json").string(), ": missing; the llava-hf layout needs an \"<image>\" token in the "
       "tokenizer, tokenizer.model has none, and stic adds it to tokenizer.json or tokenizer_config.json (the "
       "folder has neither)");
}

// The "<image>" id the llava-hf config names: the tokenizer's own, or one added as HF's
// conversion adds it (convert.h). Writes the tokenizer files into OUT (already copied there).
// `new_vocab` receives the embedding rows the checkpoint needs.
int64_t image_token_for_hf(const LlavaConfig& cfg, const std::string& out_dir, int64_t* new_vocab, bool* pad_added,
                           int64_t* pad_id) {
  const Tokenizer tok = Tokenizer::from_dir(cfg.dir);
  const int64_t vocab = cfg.text.vocab_size;
  *pad_added = false;
  *pad_id = -1;
  int64_t top = vocab;
  for (auto& a : tok.added_tokens()) top = std::max<int64_t>(top, a.id + 1);
  for (auto& a : tok.added_tokens())
    if (a.content == "<image>") {
      *new_vocab = top > vocab ? (top + 63) / 64 * 64 : vocab;
      return a.id;
    }
  // a piece of the SentencePiece vocabulary itself (a user-defined symbol): HF's tokenizer maps
  // "<image>" to it, so adding another "<image>" would leave the model's id unused
  if (const int32_t piece = tok.token_to_id("<image>"); piece >= 0 && piece != tok.unk_id()) {
    *new_vocab = top > vocab ? (top + 63) / 64 * 64 : vocab;
    return piece;
  }
  // HF's tokenizers give added tokens the next ids after the tokenizer's own vocabulary, whatever
  // ids tokenizer_config.json declares: with a model vocabulary padded past the tokenizer's
  // (1024 rows for 1000 pieces, say), "<image>" must be the tokenizer's next id, 1000, not 1024
  int64_t tok_top = tok.vocab_size();
  for (auto& a : tok.added_tokens()) tok_top = std::max<int64_t>(tok_top, a.id + 1);
  top = tok_top;
  const fs::path tj = fs::path(out_dir) / "tokenizer.json", tc = fs::path(out_dir) / "tokenizer_config.json";
  if (!file_exists(tj.string()) && !file_exists(tc.string())) check_image_token_file(cfg, tok);
  const int64_t image_id = std::max<int64_t>(top, tok.vocab_size());
  std::vector<std::pair<int64_t, std::string>> add{{image_id, "<image>"}};
  if (tok.pad_id() < 0) {
    *pad_added = true;
    *pad_id = image_id + 1;
    add.emplace_back(*pad_id, "<pad>");
  }
  // HF: vocab + added, padded to a multiple of 64 (rows the model already has are kept)
  *new_vocab = std::max<int64_t>(vocab, (add.back().first + 1 + 63) / 64 * 64);
  if (file_exists(tj.string())) {
    ojson j = read_ojson(tj.string());
    if (!j.contains("added_tokens") || !j["added_tokens"].is_array()) j["added_tokens"] = ojson::array();
    for (auto& [id, content] : add) j["added_tokens"].push_back(added_token_json(id, content));
    write_json(tj, j);
  }
  if (file_exists(tc.string())) {
    ojson j = read_ojson(tc.string());
    if (!j.contains("added_tokens_decoder") || !j["added_tokens_decoder"].is_object())
      j["added_tokens_decoder"] = ojson::object();
    for (auto& [id, content] : add) {
      ojson e = added_token_json(id, content);
      e.erase("id");
      j["added_tokens_decoder"][std::to_string(id)] = e;
    }
    if (*pad_added) j["pad_token"] = "<pad>";
    write_json(tc, j);
  }
  const fs::path stm = fs::path(out_dir) / "special_tokens_map.json";
  if (*pad_added && file_exists(stm.string())) {
    ojson j = read_ojson(stm.string());
    j["pad_token"] = "<pad>";
    write_json(stm, j);
  }
  return image_id;
}

// Rows [old, rows) of a (old, C) matrix: the mean of the existing rows (convert.h).
torch::Tensor pad_rows(const torch::Tensor& w, int64_t rows) {
  if (w.size(0) >= rows) return w;
  auto mean = w.to(torch::kFloat64).mean(0, true).to(w.scalar_type());
  return torch::cat({w, mean.expand({rows - w.size(0), w.size(1)})}, 0).contiguous();
}

void to_hf(Llava& model, const std::string& out_dir, const ExportOptions& opts) {
  const LlavaConfig& cfg = model->cfg;
  const std::string cfg_path = (fs::path(cfg.dir) / "config.json").string();
  const ojson src = read_ojson(cfg_path);
  if (cfg.projector_type != "mlp2x_gelu")
    fail(cfg_path, ": mm_projector_type '", cfg.projector_type,
         "' has no llava-hf form (LlavaMultiModalProjector is linear_1, GELU, linear_2)");
  for (const char* k : {"mm_use_im_start_end", "mm_use_im_patch_token"})
    if (src.contains(k) && src[k].is_boolean() && src[k].get<bool>())
      fail(cfg_path, ": ", k, " true has no llava-hf form (the processor inserts only <image> tokens)");
  const std::string ar = src.value("image_aspect_ratio", std::string("square"));
  const std::string merge = src.value("mm_patch_merge_type", std::string("flat"));
  if (starts_with(ar, "anyres") && ar != "anyres")
    fail(cfg_path, ": image_aspect_ratio '", ar, "' has no llava-hf form (LlavaNext's anyres has no tile limit)");
  if (!starts_with(ar, "anyres") && merge != "flat")
    fail(cfg_path, ": mm_patch_merge_type '", merge, "' with image_aspect_ratio '", ar,
         "' has no llava-hf form (LLaVA-1.5's llava model flattens the features)");

  check_image_token_file(cfg, Tokenizer::from_dir(cfg.dir));

  const fs::path out(out_dir);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) fail(out_dir, ": cannot create folder: ", ec.message());
  copy_side_files(cfg.dir, out_dir, {"config.json", "preprocessor_config.json", "processor_config.json"});
  int64_t vocab = cfg.text.vocab_size, pad_id = -1;
  bool pad_added = false;
  const int64_t image_id = image_token_for_hf(cfg, out_dir, &vocab, &pad_added, &pad_id);

  std::map<std::string, torch::Tensor> w;
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    auto t = p.value().detach().to(torch::kCPU).contiguous();
    if (n == "language_model.lm_head.weight" && cfg.text.tie_word_embeddings) continue;
    if (n == "language_model.lm_head.weight" || n == "language_model.model.embed_tokens.weight") t = pad_rows(t, vocab);
    w[n] = t;  // stic's names are llava-hf's (transformers < 4.52 spelling, which 4.x and 5.x load)
  }
  const bool next = cfg.aspect == AspectMode::Anyres;
  ojson c = ojson::object();
  c["architectures"] = {next ? "LlavaNextForConditionalGeneration" : "LlavaForConditionalGeneration"};
  c["model_type"] = next ? "llava_next" : "llava";
  const std::string dt = dtype_name(opts.dtype != torch::ScalarType::Undefined
                                        ? opts.dtype : model->multi_modal_projector->linear_1->weight.scalar_type());
  c["torch_dtype"] = dt;
  c["image_token_index"] = image_id;
  const int64_t side = cfg.vision.tokens_per_side();
  c["image_seq_length"] = side * side + (cfg.select_strategy == "full" ? 1 : 0);
  if (next) c["image_grid_pinpoints"] = pinpoints_json(cfg);
  c["multimodal_projector_bias"] = true;
  c["projector_hidden_act"] = "gelu";
  c["vision_feature_layer"] = cfg.feature_layers[0];
  c["vision_feature_select_strategy"] = cfg.select_strategy;
  c["tie_word_embeddings"] = cfg.text.tie_word_embeddings;
  if (pad_added) c["pad_token_id"] = pad_id;
  ojson t = ojson::object();
  t["model_type"] = cfg.text.arch;
  for (auto it = src.begin(); it != src.end(); ++it)
    if (!is_llava_key(it.key())) t[it.key()] = it.value();
  put_text_fields(t, cfg.text);
  t["vocab_size"] = vocab;
  if (pad_added) t["pad_token_id"] = pad_id;
  c["text_config"] = t;
  const std::string vcfg = (fs::path(cfg.vision_dir) / "config.json").string();
  c["vision_config"] = vision_config_json(cfg, file_exists(vcfg) ? read_ojson(vcfg) : ojson::object());

  ojson pp = clip_processor_json(cfg);
  if (next) {
    pp["image_processor_type"] = "LlavaNextImageProcessor";
    pp["image_grid_pinpoints"] = pinpoints_json(cfg);
    pp["do_pad"] = true;  // LlavaNext's do_pad pads the batch of crops, not the image
  } else if (cfg.aspect == AspectMode::Pad) {
    pp["image_processor_type"] = "LlavaImageProcessor";
    pp["do_pad"] = true;  // to a square of the mean colour first, as LLaVA's expand2square
  }
  ojson proc = {{"image_token", "<image>"},
                {"num_additional_image_tokens", 1},
                {"patch_size", cfg.vision.patch_size},
                {"processor_class", next ? "LlavaNextProcessor" : "LlavaProcessor"},
                {"vision_feature_select_strategy", cfg.select_strategy}};
  save_sharded_checkpoint(out_dir, w, opts);
  write_json(out / "config.json", c);
  write_json(out / "preprocessor_config.json", pp);
  write_json(out / "processor_config.json", proc);
}

}  // namespace

void export_converted(Llava& model, const std::string& out_dir, const ExportOptions& opts) {
  if (!opts.layout) fail("export_converted: no target layout");
  merge_all_lora(model);
  if (*opts.layout == CheckpointLayout::Original) to_original(model, out_dir, opts);
  else to_hf(model, out_dir, opts);
}

}  // namespace stic
