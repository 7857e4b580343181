// stic/method/recipe.cpp — see recipe.h.
#include "stic/method/recipe.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <map>

#include "stic/image/image.h"
#include "stic/model/loaded_model.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"

namespace stic {
namespace {

std::string where(const std::string& path, const YAML::Node& n) {
  const auto m = n.Mark();
  return m.line >= 0 ? str_cat(path, ":", m.line + 1, ": ") : path + ": ";
}

template <typename T>
T scalar(const std::string& path, const std::string& key, const YAML::Node& n) {
  if (!n.IsScalar()) fail(where(path, n), "'", key, "' must be a single value");
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    fail(where(path, n), "'", key, "': cannot read '", n.Scalar(), "' as ",
         std::is_same<T, std::string>::value ? "text"
         : std::is_same<T, bool>::value      ? "true or false"
         : std::is_floating_point<T>::value  ? "a number"
                                             : "an integer");
  }
}

using Setter = std::function<void(const YAML::Node&)>;

// Applies `setters` to the keys of map `node`; an unknown key is an error listing the valid ones.
void apply(const std::string& path, const std::string& section, const YAML::Node& node,
           const std::map<std::string, Setter>& setters) {
  if (!node.IsMap()) fail(where(path, node), "'", section, "' must be a mapping of keys to values");
  std::map<std::string, YAML::Node> seen;  // yaml-cpp keeps both of a repeated key: the last would win
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    if (seen.count(key))
      fail(where(path, kv.first), "'", key, "' is given twice in ", section, " (first at line ",
           seen[key].Mark().line + 1, ")");
    seen[key] = kv.first;
    auto it = setters.find(key);
    if (it == setters.end()) {
      std::string valid;
      for (auto& [k, _] : setters) valid += (valid.empty() ? "" : ", ") + k;
      fail(where(path, kv.first), "unknown key '", key, "' in ", section, " (valid keys: ", valid, ")");
    }
    it->second(kv.second);
  }
}

std::map<std::string, Setter> train_setters(const std::string& path, TrainStage& t) {
  return {
      {"max_steps", [&](const YAML::Node& n) { t.max_steps = scalar<int64_t>(path, "max_steps", n); }},
      {"batch_size", [&](const YAML::Node& n) { t.batch_size = scalar<int>(path, "batch_size", n); }},
      {"grad_accum", [&](const YAML::Node& n) { t.grad_accum = scalar<int>(path, "grad_accum", n); }},
      {"log_every", [&](const YAML::Node& n) { t.log_every = scalar<int>(path, "log_every", n); }},
      {"save_every", [&](const YAML::Node& n) { t.save_every = scalar<int>(path, "save_every", n); }},
      {"lr", [&](const YAML::Node& n) { t.lr = scalar<double>(path, "lr", n); }},
      {"warmup_ratio", [&](const YAML::Node& n) { t.warmup_ratio = scalar<double>(path, "warmup_ratio", n); }},
      {"weight_decay", [&](const YAML::Node& n) { t.weight_decay = scalar<double>(path, "weight_decay", n); }},
      {"max_grad_norm", [&](const YAML::Node& n) { t.max_grad_norm = scalar<double>(path, "max_grad_norm", n); }},
      {"schedule", [&](const YAML::Node& n) { t.schedule = scalar<std::string>(path, "schedule", n); }},
      {"max_length", [&](const YAML::Node& n) { t.max_length = scalar<int64_t>(path, "max_length", n); }},
      {"seed", [&](const YAML::Node& n) { t.seed = scalar<uint64_t>(path, "seed", n); }},
      {"freeze_vision", [&](const YAML::Node& n) { t.freeze_vision = scalar<bool>(path, "freeze_vision", n); }},
      {"freeze_projector", [&](const YAML::Node& n) { t.freeze_projector = scalar<bool>(path, "freeze_projector", n); }},
      {"group_by_length",
       [&](const YAML::Node& n) {
         t.group_by_length = scalar<std::string>(path, "group_by_length", n);
         if (t.group_by_length != "false" && t.group_by_length != "true" && t.group_by_length != "step")
           fail(where(path, n), "group_by_length must be false, true or step (got '", t.group_by_length, "')");
       }},
      {"image_marker",
       [&](const YAML::Node& n) {
         t.image_marker = scalar<std::string>(path, "image_marker", n);
         if (t.image_marker != "front" && t.image_marker != "keep")
           fail(where(path, n), "image_marker must be front or keep (got '", t.image_marker, "')");
       }},
      {"epochs", [&](const YAML::Node& n) { t.epochs = scalar<double>(path, "epochs", n); }},
      {"gradient_checkpointing",
       [&](const YAML::Node& n) { t.gradient_checkpointing = scalar<bool>(path, "gradient_checkpointing", n); }},
  };
}

// the base-model stages of a world recipe: steps only (no epochs; no gradient checkpointing)
std::map<std::string, Setter> world_train_setters(const std::string& path, TrainStage& t) {
  auto s = train_setters(path, t);
  s.erase("epochs");
  s.erase("gradient_checkpointing");
  return s;
}

// template / image_mode keys of a generation or training section
void add_model_io_setters(std::map<std::string, Setter>& s, const std::string& path, std::string& tmpl,
                          std::string& mode) {
  s["template"] = [&, path](const YAML::Node& v) { tmpl = scalar<std::string>(path, "template", v); };
  s["image_mode"] = [&, path](const YAML::Node& v) {
    mode = scalar<std::string>(path, "image_mode", v);
    if (mode != "pad" && mode != "anyres" && mode != "crop")
      fail(where(path, v), "image_mode must be pad, anyres or crop (got '", mode, "')");
  };
}

// the keys of one model-io pair, only when set (older work folders' recipe.json still match)
void model_io_json(nlohmann::json& j, const std::string& tmpl, const std::string& mode) {
  if (!tmpl.empty()) j["template"] = tmpl;
  if (!mode.empty()) j["image_mode"] = mode;
}

void check_train(const std::string& path, const std::string& section, const TrainStage& t, bool required) {
  const std::string p = path + ": " + section + ".";
  if (required && t.max_steps < 1 && !(t.epochs > 0)) fail(p, "max_steps (or epochs) must be >= 1");
  if (!(t.epochs >= 0)) fail(p, "epochs must be >= 0");
  if (t.max_steps < 0) fail(p, "max_steps must be >= 0 (0 skips the stage)");
  if (t.batch_size < 1) fail(p, "batch_size must be >= 1");
  if (t.grad_accum < 1) fail(p, "grad_accum must be >= 1");
  if (t.log_every < 1) fail(p, "log_every must be >= 1");
  if (t.save_every < 0) fail(p, "save_every must be >= 0");
  if (!(t.lr >= 0)) fail(p, "lr must be >= 0");
  if (!(t.warmup_ratio >= 0 && t.warmup_ratio <= 1)) fail(p, "warmup_ratio must be in [0, 1]");
  if (t.schedule != "cosine" && t.schedule != "linear" && t.schedule != "constant")
    fail(p, "schedule must be cosine, linear or constant (got '", t.schedule, "')");
  if (t.max_length < 1) fail(p, "max_length must be >= 1");
}

nlohmann::json train_json(const TrainStage& t) {
  nlohmann::json j = {{"max_steps", t.max_steps}, {"batch_size", t.batch_size}, {"grad_accum", t.grad_accum},
          {"log_every", t.log_every}, {"save_every", t.save_every}, {"lr", t.lr},
          {"warmup_ratio", t.warmup_ratio}, {"weight_decay", t.weight_decay},
          {"max_grad_norm", t.max_grad_norm}, {"schedule", t.schedule}, {"max_length", t.max_length},
          {"seed", t.seed}, {"freeze_vision", t.freeze_vision},
          {"freeze_projector", t.freeze_projector}, {"group_by_length", t.group_by_length}};
  if (t.image_marker != "front") j["image_marker"] = t.image_marker;  // absent = front: older work folders still match
  if (t.epochs > 0) j["epochs"] = t.epochs;                            // (absent at their defaults, as above)
  if (t.gradient_checkpointing) j["gradient_checkpointing"] = true;
  return j;
}

}  // namespace

nlohmann::json Recipe::to_json() const {
  nlohmann::json j = {{"name", name},
          {"threads", threads},
          {"device", device},
          {"dtype", dtype},
          {"eval", {{"batch_size", eval_batch_size}, {"max_new_tokens", eval_max_new_tokens}}},
          {"report", {{"examples", report_examples}}}};
  if (external()) {  // a checkpoint of its own: no world, no base-model stages
    j["model"] = {{"path", model_path}};
    nlohmann::json b = nlohmann::json::object();
    for (const auto& s : benchmarks)
      b[s.name] = {{"data", s.data}, {"annotations", s.annotations}, {"image_dir", s.image_dir}, {"split", s.split},
                   {"limit", s.limit}, {"max_new_tokens", s.max_new_tokens}, {"circular", s.circular}};
    j["benchmarks"] = b;
  } else {
    j["world"] = {{"preset", world_preset}, {"seed", world_seed}};
    j["vision"] = train_json(vision);
    j["pretrain"] = train_json(pretrain);
    j["base"] = train_json(base);
    j["instruct"] = train_json(instruct);
  }
  if (!eval_template.empty()) j["eval"]["template"] = eval_template;
  if (stic()) {  // absent without STIC: work folders of recipes without it still match
    j["pref"] = {{"max_new_tokens", pref.max_new_tokens}, {"batch_size", pref.batch_size},
                 {"temperature", pref.temperature}, {"p_bad_prompt", pref.p_bad_prompt}, {"seed", pref.seed}};
    if (external()) j["pref"].update({{"image_dir", pref.image_dir}, {"image_list", pref.image_list}, {"limit", pref.limit}});
    model_io_json(j["pref"], pref.template_name, pref.image_mode);
    if (pref.ignore_eos) j["pref"]["ignore_eos"] = true;
    j["dpo"] = train_json(dpo.train);
    j["dpo"].update({{"lora_r", dpo.lora_r}, {"lora_alpha", dpo.lora_alpha}, {"beta", dpo.beta}, {"alpha", dpo.alpha},
                     {"alpha_norm", dpo.alpha_norm}, {"loss_type", dpo.loss_type}});
    if (dpo.rounds > 1) j["dpo"]["rounds"] = dpo.rounds;  // absent at 1: older work folders still match
    model_io_json(j["dpo"], dpo.template_name, dpo.image_mode);
  }
  if (stage2()) {  // (absent without stage 2, as above)
    j["describe"] = {{"max_new_tokens", describe.max_new_tokens}, {"batch_size", describe.batch_size},
                     {"temperature", describe.temperature}, {"seed", describe.seed}};
    if (external())
      j["describe"].update({{"data", describe.data}, {"image_dir", describe.image_dir}, {"limit", describe.limit}});
    model_io_json(j["describe"], describe.template_name, describe.image_mode);
    if (describe.ignore_eos) j["describe"]["ignore_eos"] = true;
    j["sft2"] = train_json(sft2.train);
    j["sft2"]["lora_dropout"] = sft2.lora_dropout;
    model_io_json(j["sft2"], sft2.template_name, sft2.image_mode);
  }
  if (eval_dar) j["eval"].update({{"dar", true}, {"dar_max_new_tokens", eval_dar_max_new_tokens}});
  if (!image_backend.empty()) j["image_backend"] = image_backend;  // absent = each model's: older work folders match
  return j;
}

Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides) {
  if (!file_exists(path)) fail(path, ": recipe file does not exist (recipes/ has world-smoke.yaml, world-tiny.yaml, ...)");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    fail(path, ":", e.mark.line + 1, ": not valid YAML: ", e.msg);
  }
  // --set section.key=value (or key=value at the top): applied to the parsed file, then checked
  // like the file's own values (an unknown key or a bad value is an error naming it)
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) fail("--set '", o, "': expected section.key=value (e.g. dpo.alpha=0)");
    const std::string key = o.substr(0, eq), value = o.substr(eq + 1);
    std::vector<std::string> parts;
    for (size_t a = 0, b;; a = b + 1) {
      b = key.find('.', a);
      parts.push_back(key.substr(a, b == std::string::npos ? std::string::npos : b - a));
      if (b == std::string::npos) break;
    }
    for (const auto& p : parts)
      if (p.empty()) fail("--set '", o, "': empty key between dots");
    if (parts.size() > 3) fail("--set '", o, "': at most three levels (e.g. benchmarks.pope.data=FILE)");
    if (parts.size() >= 2 && root[parts[0]] && !root[parts[0]].IsMap())
      fail("--set '", o, "': '", parts[0], "' is not a section");
    if (parts.size() == 3 && root[parts[0]][parts[1]] && !root[parts[0]][parts[1]].IsMap())
      fail("--set '", o, "': '", parts[0], ".", parts[1], "' is not a section");
    if (parts.size() == 1) root[parts[0]] = value;
    else if (parts.size() == 2) root[parts[0]][parts[1]] = value;
    else root[parts[0]][parts[1]][parts[2]] = value;
  }
  Recipe r;
  r.path = path;
  r.vision.batch_size = 32;  // train-vision's defaults
  r.vision.lr = 2e-3;
  r.sft2.train.lr = 2e-5;  // the paper's stage 2 (reference/stic-method.md section 4)
  if (!root.IsMap()) fail(path, ": a recipe is a YAML mapping (name:, world:, base:, ...)");
  apply(path, "the recipe", root,
        {{"name", [&](const YAML::Node& n) { r.name = scalar<std::string>(path, "name", n); }},
         {"threads", [&](const YAML::Node& n) { r.threads = scalar<int>(path, "threads", n); }},
         {"device", [&](const YAML::Node& n) { r.device = scalar<std::string>(path, "device", n); }},
         {"dtype", [&](const YAML::Node& n) { r.dtype = scalar<std::string>(path, "dtype", n); }},
         {"image_backend",
          [&](const YAML::Node& n) {
            r.image_backend = scalar<std::string>(path, "image_backend", n);
            try {
              parse_image_backend(r.image_backend);
            } catch (const Error& e) {
              fail(path, ": image_backend: ", e.what());
            }
          }},
         {"model",
          [&](const YAML::Node& n) {
            apply(path, "model", n,
                  {{"path", [&](const YAML::Node& v) { r.model_path = scalar<std::string>(path, "path", v); }}});
            if (r.model_path.empty()) fail(where(path, n), "model.path is empty (give it in the file or with --set model.path=DIR)");
          }},
         {"benchmarks",
          [&](const YAML::Node& n) {
            if (!n.IsMap()) fail(where(path, n), "'benchmarks' must map a benchmark name to its files");
            for (const auto& kv : n) {
              BenchmarkSpec b;
              b.name = kv.first.as<std::string>();
              static const std::vector<std::string> known = {"pope", "scienceqa", "textvqa", "mmbench", "llava-bench", "mm-vet"};
              if (std::find(known.begin(), known.end(), b.name) == known.end())
                fail(where(path, kv.first), "unknown benchmark '", b.name, "' (pope, scienceqa, textvqa, mmbench, llava-bench, mm-vet)");
              for (const auto& o : r.benchmarks)
                if (o.name == b.name) fail(where(path, kv.first), "benchmark '", b.name, "' is given twice");
              const std::string sec = "benchmarks." + b.name;
              if (kv.second.IsScalar() && kv.second.Scalar() == "off") continue;  // --set benchmarks.NAME=off
              apply(path, sec, kv.second,
                    {{"data", [&](const YAML::Node& v) { b.data = scalar<std::string>(path, "data", v); }},
                     {"annotations", [&](const YAML::Node& v) { b.annotations = scalar<std::string>(path, "annotations", v); }},
                     {"image_dir", [&](const YAML::Node& v) { b.image_dir = scalar<std::string>(path, "image_dir", v); }},
                     {"split", [&](const YAML::Node& v) { b.split = scalar<std::string>(path, "split", v); }},
                     {"limit", [&](const YAML::Node& v) { b.limit = scalar<int64_t>(path, "limit", v); }},
                     {"max_new_tokens", [&](const YAML::Node& v) { b.max_new_tokens = scalar<int>(path, "max_new_tokens", v); }},
                     {"circular", [&](const YAML::Node& v) { b.circular = scalar<bool>(path, "circular", v); }}});
              if (b.data.empty()) fail(where(path, kv.second), sec, ".data: the question file is required");
              if (b.limit < 0 || b.max_new_tokens < 0) fail(where(path, kv.second), sec, ": limit and max_new_tokens must be >= 0");
              r.benchmarks.push_back(b);
            }
          }},
         {"world",
          [&](const YAML::Node& n) {
            apply(path, "world", n,
                  {{"preset", [&](const YAML::Node& v) { r.world_preset = scalar<std::string>(path, "preset", v); }},
                   {"seed", [&](const YAML::Node& v) { r.world_seed = scalar<uint64_t>(path, "seed", v); }}});
          }},
         {"vision",
          [&](const YAML::Node& n) {
            auto setters = train_setters(path, r.vision);
            for (const char* k : {"grad_accum", "max_length", "freeze_vision", "freeze_projector", "group_by_length", "image_marker",
                                  "epochs", "gradient_checkpointing"}) setters.erase(k);  // not train-vision's
            apply(path, "vision", n, setters);
          }},
         {"pretrain", [&](const YAML::Node& n) { apply(path, "pretrain", n, world_train_setters(path, r.pretrain)); }},
         {"base", [&](const YAML::Node& n) { apply(path, "base", n, world_train_setters(path, r.base)); }},
         {"instruct", [&](const YAML::Node& n) { apply(path, "instruct", n, world_train_setters(path, r.instruct)); }},
         {"eval",
          [&](const YAML::Node& n) {
            apply(path, "eval", n,
                  {{"batch_size", [&](const YAML::Node& v) { r.eval_batch_size = scalar<int>(path, "batch_size", v); }},
                   {"max_new_tokens",
                    [&](const YAML::Node& v) { r.eval_max_new_tokens = scalar<int>(path, "max_new_tokens", v); }},
                   {"dar", [&](const YAML::Node& v) { r.eval_dar = scalar<bool>(path, "dar", v); }},
                   {"template", [&](const YAML::Node& v) { r.eval_template = scalar<std::string>(path, "template", v); }},
                   {"dar_max_new_tokens",
                    [&](const YAML::Node& v) { r.eval_dar_max_new_tokens = scalar<int>(path, "dar_max_new_tokens", v); }}});
          }},
         {"report", [&](const YAML::Node& n) {
            apply(path, "report", n,
                  {{"examples", [&](const YAML::Node& v) { r.report_examples = scalar<int>(path, "examples", v); }}});
          }},
         {"pref",
          [&](const YAML::Node& n) {
            auto& p = r.pref;
            std::map<std::string, Setter> setters = {
                {"max_new_tokens", [&](const YAML::Node& v) { p.max_new_tokens = scalar<int>(path, "max_new_tokens", v); }},
                {"batch_size", [&](const YAML::Node& v) { p.batch_size = scalar<int>(path, "batch_size", v); }},
                {"temperature", [&](const YAML::Node& v) { p.temperature = scalar<double>(path, "temperature", v); }},
                {"p_bad_prompt", [&](const YAML::Node& v) { p.p_bad_prompt = scalar<double>(path, "p_bad_prompt", v); }},
                {"seed", [&](const YAML::Node& v) { p.seed = scalar<uint64_t>(path, "seed", v); }},
                {"image_dir", [&](const YAML::Node& v) { p.image_dir = scalar<std::string>(path, "image_dir", v); }},
                {"image_list", [&](const YAML::Node& v) { p.image_list = scalar<std::string>(path, "image_list", v); }},
                {"limit", [&](const YAML::Node& v) { p.limit = scalar<int64_t>(path, "limit", v); }},
                {"ignore_eos", [&](const YAML::Node& v) { p.ignore_eos = scalar<bool>(path, "ignore_eos", v); }}};
            add_model_io_setters(setters, path, p.template_name, p.image_mode);
            apply(path, "pref", n, setters);
          }},
         {"dpo", [&](const YAML::Node& n) {
            auto& d = r.dpo;
            auto setters = train_setters(path, d.train);
            for (const char* k : {"freeze_vision", "freeze_projector", "image_marker"}) setters.erase(k);  // not train-dpo's
            setters["lora_r"] = [&](const YAML::Node& v) { d.lora_r = scalar<int64_t>(path, "lora_r", v); };
            setters["lora_alpha"] = [&](const YAML::Node& v) { d.lora_alpha = scalar<double>(path, "lora_alpha", v); };
            setters["beta"] = [&](const YAML::Node& v) { d.beta = scalar<double>(path, "beta", v); };
            setters["alpha"] = [&](const YAML::Node& v) { d.alpha = scalar<double>(path, "alpha", v); };
            setters["alpha_norm"] = [&](const YAML::Node& v) { d.alpha_norm = scalar<std::string>(path, "alpha_norm", v); };
            setters["loss_type"] = [&](const YAML::Node& v) { d.loss_type = scalar<std::string>(path, "loss_type", v); };
            setters["rounds"] = [&](const YAML::Node& v) { d.rounds = scalar<int>(path, "rounds", v); };
            add_model_io_setters(setters, path, d.template_name, d.image_mode);
            apply(path, "dpo", n, setters);
          }},
         {"describe",
          [&](const YAML::Node& n) {
            auto& d = r.describe;
            std::map<std::string, Setter> setters = {
                {"max_new_tokens", [&](const YAML::Node& v) { d.max_new_tokens = scalar<int>(path, "max_new_tokens", v); }},
                {"batch_size", [&](const YAML::Node& v) { d.batch_size = scalar<int>(path, "batch_size", v); }},
                {"temperature", [&](const YAML::Node& v) { d.temperature = scalar<double>(path, "temperature", v); }},
                {"seed", [&](const YAML::Node& v) { d.seed = scalar<uint64_t>(path, "seed", v); }},
                {"data", [&](const YAML::Node& v) { d.data = scalar<std::string>(path, "data", v); }},
                {"image_dir", [&](const YAML::Node& v) { d.image_dir = scalar<std::string>(path, "image_dir", v); }},
                {"limit", [&](const YAML::Node& v) { d.limit = scalar<int64_t>(path, "limit", v); }},
                {"ignore_eos", [&](const YAML::Node& v) { d.ignore_eos = scalar<bool>(path, "ignore_eos", v); }}};
            add_model_io_setters(setters, path, d.template_name, d.image_mode);
            apply(path, "describe", n, setters);
          }},
         {"sft2", [&](const YAML::Node& n) {
            auto& t = r.sft2;
            auto setters = train_setters(path, t.train);
            for (const char* k : {"freeze_vision", "freeze_projector"}) setters.erase(k);  // LoRA: the tower and projector stay
            setters["lora_dropout"] = [&](const YAML::Node& v) { t.lora_dropout = scalar<double>(path, "lora_dropout", v); };
            add_model_io_setters(setters, path, t.template_name, t.image_mode);
            apply(path, "sft2", n, setters);
          }}});
  if (r.name.empty()) fail(path, ": 'name' is required");
  try {  // checked here, before the first stage runs (not when a stage first loads a model)
    parse_dtype(r.dtype, parse_device(r.device));
  } catch (const Error& e) {
    fail(path, ": device / dtype: ", e.what());
  }
  if (r.threads < 0) fail(path, ": threads must be >= 0 (0 = all cores)");
  if (r.eval_batch_size < 1 || r.eval_max_new_tokens < 1) fail(path, ": eval.batch_size and eval.max_new_tokens must be >= 1");
  if (r.report_examples < 0) fail(path, ": report.examples must be >= 0");
  if (r.external()) {  // STIC on a checkpoint: no world, no base model to train
    for (const char* sec : {"world", "vision", "pretrain", "base", "instruct"})
      if (root[sec])
        fail(where(path, root[sec]), "'", sec, "' belongs to world recipes; a recipe with model.path trains no base model");
    if (r.stic() && r.pref.image_dir.empty() && r.pref.image_list.empty())
      fail(path, ": pref.image_dir (or pref.image_list): the unlabeled images of stage 1 (e.g. --set pref.image_dir=DIR)");
    if (r.stage2() && (r.describe.data.empty() || r.describe.image_dir.empty()))
      fail(path, ": describe.data and describe.image_dir: the stage-2 instruction set and its images (e.g. --set "
                 "describe.data=FILE --set describe.image_dir=DIR)");
    if (r.pref.limit < 0 || r.describe.limit < 0) fail(path, ": pref.limit and describe.limit must be >= 0 (0 = all)");
  } else {
    if (!r.benchmarks.empty()) fail(path, ": 'benchmarks' needs model.path (world recipes evaluate on the world)");
    for (const std::string* v : {&r.pref.image_dir, &r.pref.image_list, &r.describe.data, &r.describe.image_dir})
      if (!v->empty()) fail(path, ": pref.image_dir / image_list and describe.data / image_dir need model.path (world recipes use the world's pools)");
    check_train(path, "base", r.base, true);
  }
  check_train(path, "vision", r.vision, false);
  check_train(path, "pretrain", r.pretrain, false);
  check_train(path, "instruct", r.instruct, false);
  check_train(path, "dpo", r.dpo.train, false);
  check_train(path, "sft2", r.sft2.train, false);
  if (r.eval_dar_max_new_tokens < 1) fail(path, ": eval.dar_max_new_tokens must be >= 1");
  if (r.sft2.train.runs() && !r.stic()) fail(path, ": sft2 (STIC stage 2) continues stage 1: set dpo.max_steps (or dpo.epochs) too");
  if (r.stage2() && r.instruct.runs())
    fail(path, ": instruct trains the base model on the stage-2 pool's labels, which STIC stage 2 must find unseen: "
               "set instruct.max_steps to 0 or sft2.max_steps to 0");
  if (r.stage2()) {
    if (r.describe.max_new_tokens < 1 || r.describe.batch_size < 1)
      fail(path, ": describe.max_new_tokens and describe.batch_size must be >= 1");
    if (!(r.describe.temperature >= 0)) fail(path, ": describe.temperature must be >= 0");
    if (!(r.sft2.lora_dropout >= 0 && r.sft2.lora_dropout < 1)) fail(path, ": sft2.lora_dropout must be in [0, 1)");
  }
  if (r.stic()) {
    if (r.pref.max_new_tokens < 1 || r.pref.batch_size < 1) fail(path, ": pref.max_new_tokens and pref.batch_size must be >= 1");
    if (!(r.pref.temperature >= 0)) fail(path, ": pref.temperature must be >= 0");
    if (!(r.pref.p_bad_prompt >= 0 && r.pref.p_bad_prompt <= 1)) fail(path, ": pref.p_bad_prompt must be in [0, 1]");
    if (r.dpo.lora_r < 1) fail(path, ": dpo.lora_r must be >= 1");
    if (!(r.dpo.beta > 0) || !(r.dpo.alpha >= 0)) fail(path, ": dpo.beta must be > 0 and dpo.alpha >= 0");
    if (r.dpo.alpha_norm != "sum" && r.dpo.alpha_norm != "mean") fail(path, ": dpo.alpha_norm must be sum or mean");
    if (r.dpo.loss_type != "sigmoid" && r.dpo.loss_type != "hinge" && r.dpo.loss_type != "ipo" && r.dpo.loss_type != "sft")
      fail(path, ": dpo.loss_type must be sigmoid, hinge, ipo or sft");
    if (r.dpo.rounds < 1 || r.dpo.rounds > 3) fail(path, ": dpo.rounds must be 1, 2 or 3 (got ", r.dpo.rounds, ")");
  }
  return r;
}

}  // namespace stic
