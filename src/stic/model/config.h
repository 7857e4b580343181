// stic/model/config.h — the model description read from a checkpoint folder.
//
// One struct covers LLaVA-1.5 (`llava`), LLaVA-1.6 (`llava_next`) in the llava-hf layout and the
// original LLaVA layout (`llava_llama`, `llava_mistral`, vision tower in a separate CLIP folder).
// Missing fields take the defaults of the HF config classes (LlamaConfig, MistralConfig,
// CLIPVisionConfig), because llava-hf configs often store only the fields that differ.
#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "stic/image/image.h"  // AspectMode

namespace stic {

enum class CheckpointLayout { LlavaHf, Original };

struct VisionConfig {
  int hidden_size = 768, intermediate_size = 3072, num_layers = 12, num_heads = 12;
  int image_size = 224, patch_size = 32, num_channels = 3;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "quick_gelu";
  int tokens_per_side() const { return image_size / patch_size; }
};

struct TextConfig {
  std::string arch = "llama";  // "llama" | "mistral"
  int vocab_size = 32000, hidden_size = 4096, intermediate_size = 11008, num_layers = 32;
  int num_heads = 32, num_kv_heads = 32, head_dim = 128;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0;
  int max_position_embeddings = 2048;
  int sliding_window = 0;  // 0 = none
  int bos_token_id = 1, eos_token_id = 2;
  bool tie_word_embeddings = false, attention_bias = false, mlp_bias = false;
  std::string hidden_act = "silu";
};

struct LlavaConfig {
  std::string dir;          // the checkpoint folder
  std::string vision_dir;   // folder holding the vision tower weights ("" = in `dir`)
  std::string model_type;   // llava | llava_next | llava_llama | llava_mistral
  CheckpointLayout layout = CheckpointLayout::LlavaHf;
  VisionConfig vision;
  TextConfig text;
  std::string projector_type = "mlp2x_gelu";  // mlp2x_gelu | linear
  std::string projector_act = "gelu";
  bool projector_bias = true;
  std::vector<int> feature_layers{-2};        // python-style indices into the L+1 hidden states
  std::string select_strategy = "default";    // default (drop CLS) | full
  long image_token_id = -1;                   // llava-hf: id of "<image>"; original: -200
  AspectMode aspect = AspectMode::Pad;
  std::vector<std::pair<int, int>> pinpoints;  // (h, w)
  bool image_newline = false;                 // llava_next / spatial_unpad
  bool unpad_round7 = true;                   // HF rounds int(round(x, 7)); original LLaVA truncates int(x)
  // CLIP preprocessing
  int shortest_edge = 336, crop_h = 336, crop_w = 336;
  std::array<float, 3> image_mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> image_std{0.26862954f, 0.26130258f, 0.27577711f};
  // Whose preprocessing to reproduce: torchvision when the processor config names a ...Fast class
  // (image_processor_type), else PIL. A bare class name (CLIPImageProcessor, LlavaNextImageProcessor)
  // is PIL in transformers 4 but torchvision in transformers 5, so it is read as PIL, the
  // version llava-hf checkpoints were made with; stic --image-backend overrides.
  ImageBackend image_backend = ImageBackend::Pil;
  std::string default_template;  // a guess from the folder name / arch; "" = unknown
};

// Reads DIR/config.json (+ preprocessor_config.json, + the CLIP folder of original layouts).
// `vision_tower` overrides the original layout's mm_vision_tower. Throws stic::Error.
LlavaConfig load_llava_config(const std::string& dir, const std::string& vision_tower = "");

}  // namespace stic
