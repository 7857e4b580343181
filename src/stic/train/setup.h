// stic/train/setup.h — what every training verb does to a loaded model before and after the
// trainer runs: LoRA targets (fresh or a continued PEFT adapter), the trainable set, per-group
// learning rates (an lr of 0 freezes), gradient checkpointing; and saving — a PEFT adapter or a
// complete model folder — plus the output folder's train_config.json. train-sft, train-vision
// and train-dpo share it.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "stic/model/loaded_model.h"
#include "stic/model/lora.h"

namespace stic {

struct TrainSetupOptions {
  std::string adapter;             // continue this PEFT adapter (its r/alpha/targets); "" = fresh
  LoraConfig lora;                 // a fresh adapter's settings (dropout also for a continued one)
  std::string targets;             // "" = lora's; comma-separated suffixes, or a regex over module names
  bool full = false;               // train every parameter (no LoRA)
  bool train_projector = false;    // the projector in full beside LoRA (modules_to_save)
  double mm_projector_lr = -1;     // >= 0: the projector's peak lr (0 freezes it)
  double mm_vision_tower_lr = -1;  // >= 0: the vision tower's and image_newline's peak lr (0 freezes)
  bool gradient_checkpointing = false;
  // LoRA arithmetic of a bf16/fp16 model: "input" (the adapter's fp32 weights cast to the
  // activations' dtype, as autocast; default) or "fp32" (activations cast up: PEFT without
  // autocast). The weights and optimizer state stay fp32 either way; fp32 models are unaffected.
  std::string lora_compute = "input";
  // torch's generators are seeded with this before a fresh adapter is made, so LoRA A's
  // kaiming init (and later dropout masks) are the same for the same --seed; the run verbs set
  // it from the training seed
  uint64_t init_seed = 42;
};

struct TrainSetup {
  LoraConfig lora;  // the adapter as saved
  bool full = false;
  std::vector<std::pair<std::string, torch::Tensor>> params;   // trainable, by name
  std::vector<std::pair<std::string, double>> lr_by_prefix;    // TrainConfig::lr_by_prefix
  AdapterLoadReport continued;                                 // what a continued adapter brought
  // The user-facing weights in DIR: the PEFT adapter, or with `full` a complete model folder.
  void save(LoadedModel& model, const std::string& dir) const;
};

// Applies the options to `model` (base_model = its folder, for adapter_config.json) and puts it
// in training mode. Throws stic::Error on conflicting options (--full with --adapter) or
// targets that match nothing.
TrainSetup setup_training(LoadedModel& model, const TrainSetupOptions& o);

// A complete model folder in `dir`: every weight of `model` under its checkpoint layout's names,
// plus the config, tokenizer and preprocessor files of the folder it was loaded from.
void save_full_checkpoint(Llava& model, const std::string& dir);

// Creates the output folder (throws stic::Error naming it).
void create_output_dir(const std::string& dir);
// DIR/train_config.json, atomically: what a training run was given (for people and for resume).
void write_train_config(const std::string& dir, const nlohmann::json& cfg);
// NAME for rank 0 (and a single process), NAME.rankR.EXT for rank R of a data-parallel job: the
// files each rank writes for itself (skip logs)
std::string rank_file_name(const std::string& name);
// 6 x the decoder's parameters: training FLOPs per token for the MFU metric.
double decoder_flops_per_token(Llava& model);

}  // namespace stic
