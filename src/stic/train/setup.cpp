// stic/train/setup.cpp — see setup.h.
#include "stic/train/setup.h"

#include "stic/io/distributed.h"

#include <cstdio>
#include <filesystem>
#include <map>

#include "stic/io/safetensors.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/strings.h"

namespace stic {
namespace {

// The files of a checkpoint folder besides its weights (copied from the source folder on a full
// export; a whitelist, so an input that is itself a training output does not pass on its
// metrics, checkpoints or `latest`).
const char* const kModelFiles[] = {"config.json", "generation_config.json", "preprocessor_config.json", "processor_config.json",
                                   "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                                   "special_tokens_map.json", "added_tokens.json", "chat_template.json",
                                   "chat_template.jinja"};

}  // namespace

TrainSetup setup_training(LoadedModel& lm, const TrainSetupOptions& o) {
  if (o.full && !o.adapter.empty())
    fail("--full trains the base weights; it cannot continue an --adapter (merge it first)");
  auto& model = lm.model();
  TrainSetup s;
  s.full = o.full;
  s.lora = o.lora;
  s.lora.base_model = lm.dir();
  if (!o.targets.empty()) {
    if (o.targets.find_first_of("\\.*[(|^$") != std::string::npos) {
      s.lora.target_regex = o.targets;
    } else {
      s.lora.target_suffixes = split_nonempty(o.targets, ',');
    }
  }
  if (o.train_projector) s.lora.modules_to_save.push_back("multi_modal_projector");
  if (!o.adapter.empty()) {
    LoraConfig loaded;
    s.continued = lm.attach_adapter(o.adapter, AdapterPolicy::Active, &loaded);
    std::fprintf(stderr, "stic: continuing adapter %s (%d LoRA modules)\n", o.adapter.c_str(), s.continued.lora_modules);
    s.lora.r = loaded.r;
    s.lora.alpha = loaded.alpha;
    s.lora.rslora = loaded.rslora;
    for (auto& m : loaded.modules_to_save) s.lora.modules_to_save.push_back(m);
    for (auto& [n, l] : named_linears(model))
      if (l->has_lora()) l->lora_dropout = o.lora.dropout;  // this run's dropout on the continued adapter
  } else if (!o.full) {
    torch::manual_seed(o.init_seed);
    apply_lora(model, s.lora);
  }
  if (o.lora_compute != "input" && o.lora_compute != "fp32")
    fail("--lora-compute must be input or fp32 (got '", o.lora_compute, "')");
  for (auto& [n, l] : named_linears(model)) l->lora_compute_in_input_dtype = o.lora_compute == "input";
  s.params = set_trainable(model, s.lora, o.full);
  // per-group peak lrs (LLaVA's mm_projector_lr / mm_vision_tower_lr): the first matching prefix wins
  if (o.mm_projector_lr >= 0) s.lr_by_prefix.push_back({"multi_modal_projector.", o.mm_projector_lr});
  if (o.mm_vision_tower_lr >= 0) {
    s.lr_by_prefix.push_back({"vision_tower.", o.mm_vision_tower_lr});
    s.lr_by_prefix.push_back({"image_newline", o.mm_vision_tower_lr});
  }
  // an lr of 0 freezes: those weights leave the trainable set (no gradients computed for them;
  // numerically the same as updating with lr 0, as AdamW's decay is scaled by the lr too)
  auto frozen = [&](const std::string& n) {
    for (const auto& [prefix, lr] : s.lr_by_prefix)
      if (starts_with(n, prefix)) return lr == 0;
    return false;
  };
  for (auto it = s.params.begin(); it != s.params.end();) {
    if (frozen(it->first)) {
      it->second.set_requires_grad(false);
      it = s.params.erase(it);
    } else {
      ++it;
    }
  }
  model->train();
  model->language_model->model->gradient_checkpointing = o.gradient_checkpointing;
  return s;
}

void TrainSetup::save(LoadedModel& model, const std::string& dir) const {
  if (full) save_full_checkpoint(model.model(), dir);
  else save_adapter(model.model(), lora, dir);
}

void save_full_checkpoint(Llava& model, const std::string& dir) {
  const auto& cfg = model->cfg;
  if (cfg.layout == CheckpointLayout::Original) {  // vision tower folder etc.: the merge exporter knows them
    export_merged(model, dir);
    return;
  }
  std::map<std::string, torch::Tensor> w;
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    if (n == "language_model.lm_head.weight" && cfg.text.tie_word_embeddings) continue;
    const auto dot = n.rfind('.');
    const std::string name =
        dot == std::string::npos ? n : peft_module_name(n.substr(0, dot), AdapterKeyStyle::HfV4) + n.substr(dot);
    w[name] = p.value().detach().to(torch::kCPU).contiguous();
  }
  save_safetensors(dir + "/model.safetensors", w, {{"format", "pt"}});
  for (const char* fn : kModelFiles) {
    const std::filesystem::path src = std::filesystem::path(cfg.dir) / fn;
    if (!std::filesystem::is_regular_file(src)) continue;
    std::error_code ec;
    std::filesystem::copy_file(src, std::filesystem::path(dir) / fn, std::filesystem::copy_options::overwrite_existing,
                               ec);
    if (ec) fail(dir, ": cannot copy ", src.string(), ": ", ec.message());
  }
}

void create_output_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create the output folder: ", ec.message());
}

void write_train_config(const std::string& dir, const nlohmann::json& cfg) {
  const Distributed& d = Distributed::get();
  if (d.rank() != 0) return;  // one writer per job
  nlohmann::json c = cfg;
  if (d.active()) c["world_size"] = d.world();
  write_file_atomic(dir + "/train_config.json", c.dump(1) + "\n");
}

std::string rank_file_name(const std::string& name) {
  const int r = Distributed::get().rank();
  if (r == 0) return name;
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? name + ".rank" + std::to_string(r)
                                  : name.substr(0, dot) + ".rank" + std::to_string(r) + name.substr(dot);
}

double decoder_flops_per_token(Llava& model) {
  int64_t n = 0;
  for (auto& p : model->language_model->parameters()) n += p.numel();
  return 6.0 * static_cast<double>(n);
}

}  // namespace stic
