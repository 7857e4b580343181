// stic/model/lora.h — LoRA adapters on a LLaVA model, interoperable with HF PEFT.
//
// Targets: decoder linear layers chosen by module-name suffix (default q,k,v,o,gate,up,down of
// every language-model layer) or by a regex over stic's module names (std::regex, full match,
// e.g. "language_model\\.model\\.layers\\.[0-3]\\..*_proj"). Extra modules can be trained in
// full ("modules_to_save", PEFT's name: e.g. the projector), or everything (full fine-tuning).
//
// Files: PEFT's `adapter_config.json` + `adapter_model.safetensors`. Key names are PEFT's:
//   "base_model.model." + <the base model's module name> + ".lora_A.weight" / ".lora_B.weight"
//   (modules_to_save: "base_model.model." + <name> + ".weight", as PEFT writes them).
// The base model's module names depend on the checkpoint layout:
//   llava-hf, transformers >= 4.52 / 5.x  model.language_model.layers.N.self_attn.q_proj
//   llava-hf, transformers <  4.52        language_model.model.layers.N.self_attn.q_proj
//   original LLaVA (llava_llama/mistral)  model.layers.N.self_attn.q_proj
//                                         (vision: model.vision_tower.vision_tower.vision_model...)
// Loading accepts every one of them (and the adapter-name infix ".default" older PEFT wrote).
// LoRA on the vision tower (the released STIC adapters carry untrained LoRA on CLIP q/k/v) is
// skipped with a warning. Saving writes the layout of the model it was loaded from (llava-hf:
// AdapterKeyStyle::Auto picks the style PEFT with transformers 5 loads; see docs/training.md).
//
// LoRA weights are kept in fp32 whatever the base dtype (PEFT's autocast_adapter_dtype), so
// they are their own fp32 master copies when training a bf16 model.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stic/model/llava.h"

namespace stic {

struct LoraConfig {
  int64_t r = 8;
  double alpha = 16.0;
  double dropout = 0.0;
  bool rslora = false;  // scaling alpha / sqrt(r) instead of alpha / r
  // Suffixes of language-model linear layers (ignored when target_regex is set).
  std::vector<std::string> target_suffixes{"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  std::string target_regex;               // full match over stic module names ("" = suffixes)
  std::vector<std::string> modules_to_save;  // stic module-name prefixes trained in full
  std::string base_model;                 // written as base_model_name_or_path
};

enum class AdapterKeyStyle {
  Auto,      // the model's layout: llava-hf -> HfV5, original -> Original
  HfV4,      // language_model.model.layers...
  HfV5,      // model.language_model.layers...
  Original,  // model.layers...
};

// stic module name (e.g. "language_model.model.layers.0.self_attn.q_proj") -> the base-model
// module name PEFT sees for this style.
std::string peft_module_name(const std::string& stic_name, AdapterKeyStyle style);
// The inverse, trying `layout` first and then the other layout: "" when the name maps to no
// module of a LLaVA model.
std::string stic_module_name(const std::string& peft_name, CheckpointLayout layout);

// Every stic::Linear of the model by name.
std::vector<std::pair<std::string, Linear>> named_linears(Llava& model);
// The module names `cfg` selects (throws stic::Error when none match).
std::vector<std::string> lora_targets(Llava& model, const LoraConfig& cfg);
// Attaches fresh adapters (A kaiming-uniform, B = 0: the model's output is unchanged) to the
// selected modules; returns their names. Existing adapters on them are replaced.
std::vector<std::string> apply_lora(Llava& model, const LoraConfig& cfg);
// Attaches adapters with non-zero random A and B drawn from `gen` (for tests and fixtures).
void randomize_lora(Llava& model, double std, uint64_t seed);

// Parameters to train: all LoRA weights, the parameters under cfg.modules_to_save and, with
// `full`, every parameter. Everything else gets requires_grad(false). Ordered by name.
std::vector<std::pair<std::string, torch::Tensor>> set_trainable(Llava& model, const LoraConfig& cfg, bool full);

// The adapter's tensors under PEFT's key names (CPU, contiguous; LoRA fp32).
std::map<std::string, torch::Tensor> adapter_state(Llava& model, const LoraConfig& cfg,
                                                   AdapterKeyStyle style = AdapterKeyStyle::Auto);
// Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (each atomically).
void save_adapter(Llava& model, const LoraConfig& cfg, const std::string& dir,
                  AdapterKeyStyle style = AdapterKeyStyle::Auto);

struct AdapterLoadReport {
  int lora_modules = 0;        // adapters attached
  int full_tensors = 0;        // modules_to_save tensors copied
  int skipped_vision = 0;      // LoRA modules on the vision tower, skipped
  std::vector<std::string> warnings;
};
// Reads DIR/adapter_config.json (r, lora_alpha, lora_dropout, use_rslora, target_modules,
// modules_to_save, rank_pattern/alpha_pattern). Throws stic::Error on a non-LoRA or unsupported
// config (DoRA, bias != "none", fan_in_fan_out).
LoraConfig read_adapter_config(const std::string& dir);
// Attaches the adapter in DIR to `model` (adapters already present on other modules stay).
// A key that names no module of the model, or a tensor of the wrong shape, is a stic::Error
// naming the key and file. Warnings go to stderr and into the report.
AdapterLoadReport load_adapter(Llava& model, const std::string& dir, LoraConfig* cfg_out = nullptr);

// Folds every adapter into its base weight and removes it.
void merge_all_lora(Llava& model);
void detach_all_lora(Llava& model);
// Merges, then writes a full checkpoint folder in the model's own layout (the source checkpoint's
// key names, config.json, tokenizer and preprocessor files copied; an original-layout vision
// folder inside the source folder is copied too), loadable by load_llava and by HF; or, with
// `layout` set to the other layout, converted to it (model/convert.h).
struct ExportOptions {
  // the stored dtype; Undefined = as the parameters are. (Merge in fp32, then cast: the bf16 of
  // a merged fp32 weight, not a bf16 merge.)
  torch::ScalarType dtype = torch::ScalarType::Undefined;
  // above this many bytes, HF's sharded layout: model-0000i-of-0000n.safetensors +
  // model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"}); one shard holds at
  // least one tensor, shards are filled in key order as transformers' save_pretrained does
  int64_t max_shard_bytes = 5'000'000'000;
  // the layout to write; unset = the model's own
  std::optional<CheckpointLayout> layout;
};
void export_merged(Llava& model, const std::string& out_dir, const ExportOptions& opts = {});

// Writes `w` (cast to o.dtype) into DIR as one model.safetensors or as HF's shards + index,
// removing any model*.safetensors / index an earlier export left there.
void save_sharded_checkpoint(const std::string& dir, std::map<std::string, torch::Tensor>& w, const ExportOptions& o);

}  // namespace stic
