// LoRA targets, PEFT adapter files (both llava-hf key styles and the original LLaVA layout),
// merge and export. See lora.h.
#include "stic/model/lora.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "stic/io/safetensors.h"
#include "stic/model/convert.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/strings.h"

namespace stic {
namespace fs = std::filesystem;

namespace {
std::string last_component(const std::string& name) {
  const auto p = name.rfind('.');
  return p == std::string::npos ? name : name.substr(p + 1);
}
const char kPrefix[] = "base_model.model.";
}  // namespace

std::string peft_module_name(const std::string& n, AdapterKeyStyle style) {
  if (style == AdapterKeyStyle::Auto) fail("peft_module_name: resolve AdapterKeyStyle::Auto first");
  if (style == AdapterKeyStyle::HfV4) return n;  // the classic llava-hf names are ours
  if (style == AdapterKeyStyle::HfV5) {
    if (starts_with(n, "language_model.model.")) return "model.language_model." + n.substr(21);
    if (starts_with(n, "language_model.lm_head")) return n.substr(15);
    if (starts_with(n, "vision_tower.") || starts_with(n, "multi_modal_projector.") || n == "image_newline")
      return "model." + n;
    return n;
  }
  // original LLaVA
  if (starts_with(n, "language_model.model.")) return "model." + n.substr(21);
  if (starts_with(n, "language_model.lm_head")) return n.substr(15);
  if (starts_with(n, "multi_modal_projector.linear_1")) return "model.mm_projector.0" + n.substr(30);
  if (starts_with(n, "multi_modal_projector.linear_2")) return "model.mm_projector.2" + n.substr(30);
  if (starts_with(n, "vision_tower.")) return "model.vision_tower." + n;
  if (n == "image_newline") return "model.image_newline";
  return n;
}

namespace {
// A module name (no parameter suffix) through the checkpoint-key table of llava.cpp.
std::string map_module(const std::string& peft_name, CheckpointLayout layout) {
  const std::string k = canonical_key(peft_name + ".weight", layout, false);
  if (k.size() < 7 || !ends_with(k, ".weight")) return "";
  return k.substr(0, k.size() - 7);
}
}  // namespace

std::string stic_module_name(const std::string& peft_name, CheckpointLayout layout) {
  // Callers check the result against the model's modules; try the given layout first.
  return map_module(peft_name, layout);
}

std::vector<std::pair<std::string, Linear>> named_linears(Llava& model) {
  std::vector<std::pair<std::string, Linear>> out;
  for (auto& item : model->named_modules("", /*include_self=*/false)) {
    if (auto* lin = item.value()->as<LinearImpl>()) {
      (void)lin;
      out.emplace_back(item.key(), Linear(std::dynamic_pointer_cast<LinearImpl>(item.value())));
    }
  }
  return out;
}

std::vector<std::string> lora_targets(Llava& model, const LoraConfig& cfg) {
  std::vector<std::string> out;
  std::regex re;
  if (!cfg.target_regex.empty()) {
    try {
      re = std::regex(cfg.target_regex);
    } catch (const std::regex_error& e) {
      fail("LoRA target regex '", cfg.target_regex, "' is not valid: ", e.what());
    }
  }
  const std::set<std::string> suffixes(cfg.target_suffixes.begin(), cfg.target_suffixes.end());
  for (auto& [name, lin] : named_linears(model)) {
    bool take;
    if (!cfg.target_regex.empty()) take = std::regex_match(name, re);
    else take = starts_with(name, "language_model.model.layers.") && suffixes.count(last_component(name));
    if (take) out.push_back(name);
  }
  if (out.empty())
    fail("LoRA targets match no linear layer of the model (",
         cfg.target_regex.empty() ? "suffixes of language_model.model.layers.*" : "regex '" + cfg.target_regex + "'",
         "); module names look like language_model.model.layers.0.self_attn.q_proj");
  return out;
}

std::vector<std::string> apply_lora(Llava& model, const LoraConfig& cfg) {
  auto names = lora_targets(model, cfg);
  std::map<std::string, Linear> by_name;
  for (auto& [n, l] : named_linears(model)) by_name.emplace(n, l);
  for (auto& n : names) by_name.at(n)->attach_lora(cfg.r, cfg.alpha, cfg.dropout, cfg.rslora);
  return names;
}

void randomize_lora(Llava& model, double std, uint64_t seed) {
  auto gen = torch::make_generator<torch::CPUGeneratorImpl>(seed);
  torch::NoGradGuard ng;
  for (auto& [n, l] : named_linears(model)) {
    if (!l->has_lora()) continue;
    for (auto* w : {&l->lora_A->weight, &l->lora_B->weight}) {
      auto r = at::normal(0.0, std, w->sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
      w->copy_(r.to(w->device(), w->scalar_type()));
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> set_trainable(Llava& model, const LoraConfig& cfg, bool full) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const bool tied = model->cfg.text.tie_word_embeddings;
  for (auto& m : cfg.modules_to_save)
    if (tied && (m == "language_model.lm_head" || m == "language_model.lm_head.weight"))  // ("language_model" is fine: its embedding trains)
      fail("modules_to_save lists ", m, ", but this model ties lm_head to the input embeddings (tie_word_embeddings): "
           "lm_head is the embedding tensor and trains through it; list language_model.model.embed_tokens "
           "(or language_model.model) instead");
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    bool train = full || n.find(".lora_A.") != std::string::npos || n.find(".lora_B.") != std::string::npos;
    for (auto& m : cfg.modules_to_save)
      if (n == m || starts_with(n, m + ".")) train = true;
    if (tied && n == "language_model.lm_head.weight") train = false;  // the embedding trains for it (tie_embeddings)
    p.value().set_requires_grad(train);
    if (train) out.emplace_back(n, p.value());
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.first < b.first; });
  return out;
}

namespace {
AdapterKeyStyle resolve(Llava& model, AdapterKeyStyle s) {
  if (s != AdapterKeyStyle::Auto) return s;
  return model->cfg.layout == CheckpointLayout::Original ? AdapterKeyStyle::Original : AdapterKeyStyle::HfV5;
}

// PEFT target_modules for the attached set: a regex over the base model's module names
// (PEFT full-matches a string target). Decoder layers only -> a compact pattern; otherwise
// the explicit alternation of names.
std::string target_modules_regex(const std::vector<std::string>& stic_names, AdapterKeyStyle style) {
  std::set<std::string> suffixes;
  bool decoder_only = true;
  for (auto& n : stic_names) {
    if (!starts_with(n, "language_model.model.layers.")) decoder_only = false;
    suffixes.insert(last_component(n));
  }
  auto esc = [](const std::string& s) {
    std::string o;
    for (char c : s) {
      if (std::string(".^$|()[]{}*+?\\").find(c) != std::string::npos) o += '\\';
      o += c;
    }
    return o;
  };
  std::string alt;
  if (decoder_only) {
    for (auto& s : suffixes) alt += (alt.empty() ? "" : "|") + esc(s);
    const std::string prefix = style == AdapterKeyStyle::HfV4   ? "language_model\\.model"
                               : style == AdapterKeyStyle::HfV5 ? "model\\.language_model"
                                                                : "model";
    return prefix + "\\.layers\\.\\d+\\.(?:self_attn|mlp)\\.(?:" + alt + ")";
  }
  for (auto& n : stic_names) alt += (alt.empty() ? "" : "|") + esc(peft_module_name(n, style));
  return "(?:" + alt + ")";
}
}  // namespace

std::map<std::string, torch::Tensor> adapter_state(Llava& model, const LoraConfig& cfg, AdapterKeyStyle style_in) {
  const AdapterKeyStyle style = resolve(model, style_in);
  std::map<std::string, torch::Tensor> out;
  for (auto& [n, l] : named_linears(model)) {
    if (!l->has_lora()) continue;
    const std::string base = kPrefix + peft_module_name(n, style);
    out[base + ".lora_A.weight"] = l->lora_A->weight.detach().to(torch::kCPU).contiguous();
    out[base + ".lora_B.weight"] = l->lora_B->weight.detach().to(torch::kCPU).contiguous();
  }
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    for (auto& m : cfg.modules_to_save) {
      if (n == m || starts_with(n, m + ".")) {
        const std::string mod = n.substr(0, n.rfind('.'));
        out[kPrefix + peft_module_name(mod, style) + n.substr(n.rfind('.'))] = p.value().detach().to(torch::kCPU).contiguous();
      }
    }
  }
  return out;
}

void save_adapter(Llava& model, const LoraConfig& cfg, const std::string& dir, AdapterKeyStyle style_in) {
  const AdapterKeyStyle style = resolve(model, style_in);
  std::vector<std::string> names;
  int64_t r = -1;
  double scaling = 0;
  bool mixed = false;
  for (auto& [n, l] : named_linears(model)) {
    if (!l->has_lora()) continue;
    names.push_back(n);
    const int64_t rr = l->lora_A->weight.size(0);
    if (r >= 0 && (rr != r || l->lora_scaling != scaling)) mixed = true;
    r = rr;
    scaling = l->lora_scaling;
  }
  if (names.empty() && cfg.modules_to_save.empty()) fail("save_adapter: the model has no LoRA adapter to save");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create the adapter folder: ", ec.message());
  nlohmann::json rank_pattern = nlohmann::json::object(), alpha_pattern = nlohmann::json::object();
  if (mixed) {  // per-module rank/alpha: PEFT's patterns keyed by the module name
    for (auto& [n, l] : named_linears(model)) {
      if (!l->has_lora()) continue;
      const int64_t rr = l->lora_A->weight.size(0);
      const double alpha = cfg.rslora ? l->lora_scaling * std::sqrt(static_cast<double>(rr)) : l->lora_scaling * rr;
      rank_pattern[peft_module_name(n, style)] = rr;
      alpha_pattern[peft_module_name(n, style)] = alpha;
    }
  }
  nlohmann::json mts = nlohmann::json(nullptr);
  if (!cfg.modules_to_save.empty()) {
    mts = nlohmann::json::array();
    for (auto& m : cfg.modules_to_save) mts.push_back(peft_module_name(m, style));
  }
  nlohmann::json j = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", cfg.base_model},
      {"r", names.empty() ? cfg.r : r},
      {"lora_alpha", names.empty() ? cfg.alpha
                                   : (cfg.rslora ? scaling * std::sqrt(static_cast<double>(r)) : scaling * static_cast<double>(r))},
      {"lora_dropout", cfg.dropout},
      {"use_rslora", cfg.rslora},
      {"target_modules", names.empty() ? nlohmann::json::array() : nlohmann::json(target_modules_regex(names, style))},
      {"modules_to_save", mts},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"use_dora", false},
      {"rank_pattern", rank_pattern},
      {"alpha_pattern", alpha_pattern},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"revision", nullptr},
      {"stic_key_style", style == AdapterKeyStyle::HfV4 ? "hf_v4" : style == AdapterKeyStyle::HfV5 ? "hf_v5" : "original"},
  };
  save_safetensors(dir + "/adapter_model.safetensors", adapter_state(model, cfg, style), {{"format", "pt"}});
  AtomicFile f(dir + "/adapter_config.json");
  f.write(j.dump(2) + "\n");
  f.commit();
}

LoraConfig read_adapter_config(const std::string& dir) {
  const std::string path = dir + "/adapter_config.json";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  auto get_str = [&](const char* k, const std::string& def) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : def;
  };
  if (get_str("peft_type", "LORA") != "LORA")
    fail(path, ": peft_type is '", get_str("peft_type", ""), "'; stic loads LORA adapters only");
  if (j.value("use_dora", false)) fail(path, ": use_dora is true; DoRA adapters are not supported");
  if (j.value("fan_in_fan_out", false)) fail(path, ": fan_in_fan_out is true; expected false for LLaVA models");
  if (get_str("bias", "none") != "none")
    fail(path, ": bias is '", get_str("bias", ""), "'; only bias \"none\" is supported");
  LoraConfig c;
  try {
    c.r = j.value("r", 8);
    c.alpha = j.value("lora_alpha", 8.0);
    c.dropout = j.contains("lora_dropout") && j["lora_dropout"].is_number() ? j["lora_dropout"].get<double>() : 0.0;
    c.rslora = j.value("use_rslora", false);
    c.base_model = get_str("base_model_name_or_path", "");
    if (j.contains("target_modules") && j["target_modules"].is_array()) {
      c.target_suffixes.clear();
      for (auto& t : j["target_modules"]) c.target_suffixes.push_back(t.get<std::string>());
    }
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": unexpected field type: ", e.what());
  }
  return c;
}

namespace {
// PEFT's pattern lookup: the first key k with re.match(f"(.*\.)?{k}$", module) wins.
const nlohmann::json* pattern_lookup(const nlohmann::json& pat, const std::string& peft_module) {
  if (!pat.is_object()) return nullptr;
  for (auto it = pat.begin(); it != pat.end(); ++it) {
    try {
      if (std::regex_match(peft_module, std::regex("(.*\\.)?" + it.key()))) return &it.value();
    } catch (const std::regex_error&) {
      if (peft_module == it.key() || ends_with(peft_module, "." + it.key())) return &it.value();
    }
  }
  return nullptr;
}
}  // namespace

AdapterLoadReport load_adapter(Llava& model, const std::string& dir, LoraConfig* cfg_out) {
  LoraConfig cfg = read_adapter_config(dir);
  const nlohmann::json j = nlohmann::json::parse(read_text_file(dir + "/adapter_config.json"));
  std::string file = dir + "/adapter_model.safetensors";
  if (!file_exists(file)) {
    if (file_exists(dir + "/adapter_model.bin"))
      fail(dir, ": adapter_model.bin (pickle) is not supported; convert it to adapter_model.safetensors");
    fail(dir, ": adapter_model.safetensors is missing");
  }
  SafetensorsFile st(file);
  std::map<std::string, Linear> linears;
  for (auto& [n, l] : named_linears(model)) linears.emplace(n, l);
  std::map<std::string, torch::Tensor> params;
  for (auto& p : model->named_parameters()) params[p.key()] = p.value();
  const CheckpointLayout layout = model->cfg.layout;
  const CheckpointLayout other = layout == CheckpointLayout::LlavaHf ? CheckpointLayout::Original : CheckpointLayout::LlavaHf;

  struct Pair { torch::Tensor a, b; std::string peft_module, key_a; };
  std::map<std::string, Pair> lora;  // stic module -> A, B
  AdapterLoadReport rep;
  std::set<std::string> vision_skipped;
  std::vector<std::pair<std::string, torch::Tensor>> full;
  for (auto& [key, e] : st.entries()) {
    std::string k = key;
    if (starts_with(k, kPrefix)) k = k.substr(sizeof(kPrefix) - 1);
    else if (starts_with(k, "base_model.")) k = k.substr(11);
    std::string which, module;
    for (const char* ab : {"lora_A", "lora_B"}) {
      for (const std::string& suf : {std::string(".") + ab + ".weight", std::string(".") + ab + ".default.weight"}) {
        if (ends_with(k, suf)) {
          which = ab;
          module = k.substr(0, k.size() - suf.size());
        }
      }
    }
    if (k.find("lora_embedding_") != std::string::npos || k.find("lora_magnitude_vector") != std::string::npos)
      fail(file, ": tensor '", key, "' is an embedding-LoRA/DoRA weight; stic supports LoRA on linear layers only");
    if (which.empty()) {
      // modules_to_save (PEFT writes them without the ".modules_to_save.default" infix)
      std::string kk = k;
      auto p = kk.find(".modules_to_save.default");
      if (p != std::string::npos) kk.erase(p, 24);
      std::string name = canonical_key(kk, layout, false);
      if (!params.count(name)) name = canonical_key(kk, other, false);
      if (!params.count(name))
        fail(file, ": tensor '", key, "' names no parameter of this ", model->cfg.model_type, " model");
      if (name == "language_model.lm_head.weight" && model->cfg.text.tie_word_embeddings)  // before anything is changed
        fail(file, ": the adapter saves its own lm_head (modules_to_save), but this model ties lm_head to the input "
             "embeddings (tie_word_embeddings); loading it would overwrite the embeddings — not supported");
      full.emplace_back(name, st.get(key));
      continue;
    }
    std::string name = map_module(module, layout);
    if (!linears.count(name)) name = map_module(module, other);
    if (!linears.count(name))
      fail(file, ": tensor '", key, "' names no linear layer of this ", model->cfg.model_type,
           " model (expected e.g. base_model.model.", peft_module_name("language_model.model.layers.0.self_attn.q_proj",
                                                                       resolve(model, AdapterKeyStyle::Auto)),
           ".lora_A.weight)");
    if (starts_with(name, "vision_tower.")) {
      vision_skipped.insert(name);
      continue;
    }
    auto& pr = lora[name];
    pr.peft_module = module;
    (which == "lora_A" ? pr.a : pr.b) = st.get(key);
    if (which == "lora_A") pr.key_a = key;
  }
  torch::NoGradGuard ng;
  for (auto& [name, pr] : lora) {
    if (!pr.a.defined() || !pr.b.defined())
      fail(file, ": module '", pr.peft_module, "' has only lora_", pr.a.defined() ? "A" : "B", "; expected both");
    auto& lin = linears.at(name);
    for (const auto* t : {&pr.a, &pr.b})
      if (!t->is_floating_point())
        fail(file, ": LoRA of '", pr.peft_module, "' is stored as ", t->scalar_type(),
             "; adapter weights must be a floating-point dtype (F32, F16, BF16 or F64)");
    const int64_t r = pr.a.size(0);
    if (pr.a.dim() != 2 || pr.b.dim() != 2 || pr.a.size(1) != lin->in_features || pr.b.size(0) != lin->out_features ||
        pr.b.size(1) != r)
      fail(file, ": LoRA of '", pr.peft_module, "' has A ", pr.a.sizes(), " and B ", pr.b.sizes(), "; expected (r, ",
           lin->in_features, ") and (", lin->out_features, ", r) for this model");
    double alpha = cfg.alpha;
    if (auto* ap = pattern_lookup(j.value("alpha_pattern", nlohmann::json::object()), pr.peft_module)) alpha = ap->get<double>();
    if (auto* rp = pattern_lookup(j.value("rank_pattern", nlohmann::json::object()), pr.peft_module))
      if (rp->get<int64_t>() != r)
        fail(file, ": LoRA of '", pr.peft_module, "' has rank ", r, " but rank_pattern says ", rp->get<int64_t>());
    lin->attach_lora(r, alpha, cfg.dropout, cfg.rslora);
    lin->lora_A->weight.copy_(pr.a.to(torch::kFloat32));
    lin->lora_B->weight.copy_(pr.b.to(torch::kFloat32));
    ++rep.lora_modules;
  }
  cfg.modules_to_save.clear();
  std::set<std::string> mts;
  for (auto& [name, t] : full) {
    auto& p = params.at(name);
    if (!t.is_floating_point())
      fail(file, ": tensor for '", name, "' is stored as ", t.scalar_type(), "; weights must be a floating-point dtype");
    if (t.sizes() != p.sizes())
      fail(file, ": tensor for '", name, "' has shape ", t.sizes(), ", expected ", p.sizes());
    p.copy_(t.to(p.device(), p.scalar_type()));
    mts.insert(name.substr(0, name.rfind('.')));
    ++rep.full_tensors;
  }
  cfg.modules_to_save.assign(mts.begin(), mts.end());
  if (!vision_skipped.empty()) {
    rep.skipped_vision = static_cast<int>(vision_skipped.size());
    std::string msg = str_cat(file, ": skipped LoRA on ", vision_skipped.size(),
                              " vision-tower modules (e.g. ", *vision_skipped.begin(),
                              "); the released STIC adapters carry untrained LoRA on CLIP q/k/v, and stic keeps the "
                              "vision tower frozen");
    rep.warnings.push_back(msg);
    std::fprintf(stderr, "stic: warning: %s\n", msg.c_str());
  }
  if (rep.lora_modules == 0 && rep.full_tensors == 0) fail(file, ": the adapter holds no LoRA weights for this model");
  if (cfg_out) *cfg_out = cfg;
  return rep;
}

void merge_all_lora(Llava& model) {
  for (auto& [n, l] : named_linears(model)) l->merge_lora();
}
void detach_all_lora(Llava& model) {
  for (auto& [n, l] : named_linears(model)) l->detach_lora();
}

void save_sharded_checkpoint(const std::string& dir, std::map<std::string, torch::Tensor>& w, const ExportOptions& o) {
  if (o.dtype != torch::ScalarType::Undefined)
    for (auto& [k, t] : w)
      if (t.is_floating_point()) t = t.to(o.dtype).contiguous();
  std::vector<std::map<std::string, torch::Tensor>> shards(1);
  int64_t in_shard = 0, total = 0;
  for (auto& [k, t] : w) {
    const int64_t bytes = static_cast<int64_t>(t.numel() * t.element_size());
    if (in_shard > 0 && in_shard + bytes > o.max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back()[k] = t;
    in_shard += bytes;
    total += bytes;
  }
  // a re-export must not leave an older layout's files for a loader to mix up
  for (auto& e : fs::directory_iterator(dir)) {
    const std::string fn = e.path().filename().string();
    if (starts_with(fn, "model") && (ends_with(fn, ".safetensors") || fn == "model.safetensors.index.json"))
      fs::remove(e.path());
  }
  if (shards.size() == 1) {
    save_safetensors(dir + "/model.safetensors", shards[0], {{"format", "pt"}});
    return;
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", nlohmann::json::object()}};
  char name[64];
  for (size_t i = 0; i < shards.size(); ++i) {
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards.size());
    save_safetensors(dir + "/" + name, shards[i], {{"format", "pt"}});
    for (auto& [k, t] : shards[i]) index["weight_map"][k] = name;
  }
  write_file_atomic(dir + "/model.safetensors.index.json", index.dump(2) + "\n");
}

void export_merged(Llava& model, const std::string& out_dir, const ExportOptions& opts) {
  if (opts.layout && *opts.layout != model->cfg.layout) return export_converted(model, out_dir, opts);
  merge_all_lora(model);
  const auto& cfg = model->cfg;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(out_dir, ": cannot create folder: ", ec.message());
  const bool original = cfg.layout == CheckpointLayout::Original;
  const AdapterKeyStyle style = original ? AdapterKeyStyle::Original : AdapterKeyStyle::HfV4;
  std::map<std::string, torch::Tensor> main, vision;
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    const auto dot = n.rfind('.');
    const std::string mod = dot == std::string::npos ? n : n.substr(0, dot);
    const std::string leaf = dot == std::string::npos ? "" : n.substr(dot);
    auto t = p.value().detach().to(torch::kCPU).contiguous();
    if (n == "language_model.lm_head.weight" && cfg.text.tie_word_embeddings) continue;
    if (original && starts_with(n, "vision_tower.")) {
      vision[n.substr(13)] = t;  // vision_model.* as a CLIPVisionModel folder stores it
      continue;
    }
    main[dot == std::string::npos ? peft_module_name(n, style) : peft_module_name(mod, style) + leaf] = t;
  }
  save_sharded_checkpoint(out_dir, main, opts);
  // configs, tokenizer, preprocessor: everything but weights
  for (auto& e : fs::directory_iterator(cfg.dir)) {
    if (!e.is_regular_file()) continue;
    const std::string fn = e.path().filename().string();
    if (ends_with(fn, ".safetensors") || fn == "model.safetensors.index.json" || ends_with(fn, ".bin")) continue;
    if (fs::weakly_canonical(e.path()) == fs::weakly_canonical(fs::path(out_dir) / fn)) continue;  // exported in place
    fs::copy_file(e.path(), fs::path(out_dir) / fn, fs::copy_options::overwrite_existing, ec);
    if (ec) fail(out_dir, ": cannot copy ", e.path().string(), ": ", ec.message());
  }
  if (opts.dtype != torch::ScalarType::Undefined && file_exists(out_dir + "/config.json")) {
    // the stored dtype, where transformers reads it (torch_dtype in 4.x, dtype in 5.x)
    nlohmann::ordered_json c = nlohmann::ordered_json::parse(read_text_file(out_dir + "/config.json"));
    const std::string name = opts.dtype == torch::kBFloat16 ? "bfloat16" : opts.dtype == torch::kFloat16 ? "float16" : "float32";
    for (const char* k : {"torch_dtype", "dtype"})
      if (c.contains(k) || std::string(k) == "torch_dtype") c[k] = name;
    for (const char* sub : {"text_config", "vision_config"})
      if (c.contains(sub) && c[sub].is_object())
        for (const char* k : {"torch_dtype", "dtype"})
          if (c[sub].contains(k)) c[sub][k] = name;
    write_file_atomic(out_dir + "/config.json", c.dump(2) + "\n");
  }
  if (original && !cfg.vision_dir.empty()) {
    // the vision tower goes where config.json's mm_vision_tower points when that is inside the
    // source folder (a relative path); otherwise the original stays where it is.
    const fs::path src = fs::weakly_canonical(cfg.vision_dir), base = fs::weakly_canonical(cfg.dir);
    const auto rel = src.lexically_relative(base);
    if (!rel.empty() && rel.native().rfind("..", 0) != 0) {
      const fs::path dst = fs::path(out_dir) / rel;
      fs::create_directories(dst, ec);
      for (auto& e : fs::directory_iterator(src)) {
        const std::string fn = e.path().filename().string();
        if (e.is_regular_file() && !ends_with(fn, ".safetensors") && !ends_with(fn, ".bin"))
          fs::copy_file(e.path(), dst / fn, fs::copy_options::overwrite_existing, ec);
      }
      if (opts.dtype != torch::ScalarType::Undefined)
        for (auto& [k, t] : vision)
          if (t.is_floating_point()) t = t.to(opts.dtype).contiguous();
      save_safetensors((dst / "model.safetensors").string(), vision, {{"format", "pt"}});
    }
  }
}

}  // namespace stic
