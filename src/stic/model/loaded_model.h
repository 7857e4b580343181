// stic/model/loaded_model.h — a model as every verb uses it: the network (config + weights), its
// tokenizer, its image preprocessing, the image placeholder id and the adapter policy. The split
// of llama.cpp: this is the model; what runs it (infer/engine: a KV cache and a batch of
// sequences; train/: a collator, a trainer) stands on it and owns its own state.
//
//   LoadedModel m(dir, load_options("cuda", "auto"));
//   m.attach_adapter(adapter_dir, AdapterPolicy::Merged);   // inference on base + adapter
//   m.prompt_ids("<image>\nWhat is this?", "auto", true);   // ids with one placeholder
//   m.load_image("x.jpg");                                  // pixels as the model preprocesses them
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stic/image/image.h"
#include "stic/model/llava.h"
#include "stic/model/lora.h"
#include "stic/text/tokenizer.h"

namespace stic {

torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device);  // auto|fp32|bf16|fp16
torch::Device parse_device(const std::string& name);                                   // cpu|cuda|cuda:N
AspectMode parse_image_mode(const std::string& name);                                  // pad|anyres|crop
// The verbs' --device / --dtype / --vision-tower / --image-backend flags as LoadOptions (dtype auto
// depends on the device; image_backend "" = the checkpoint's). Throws stic::Error on a bad value.
LoadOptions load_options(const std::string& device, const std::string& dtype, const std::string& vision_tower = "",
                         const std::string& image_backend = "");

// What an attached PEFT adapter is to the model:
//  - None:   no adapter;
//  - Merged: folded into the base weights (inference: the engine runs plain weights);
//  - Active: LoRA modules live beside the base weights (training continues them; the reference
//            policy of DPO is the same network with the adapters switched off).
enum class AdapterPolicy { None, Merged, Active };

class LoadedModel {
 public:
  // Reads DIR's config first (a wrong folder is reported as such), then the tokenizer, then
  // every weight. Throws stic::Error naming the file.
  LoadedModel(const std::string& model_dir, const LoadOptions& opts);
  LoadedModel(const LoadedModel&) = delete;
  LoadedModel& operator=(const LoadedModel&) = delete;

  // Attaches the PEFT adapter in DIR under `policy` (Merged or Active); `cfg_out` receives its
  // adapter_config.json. Throws stic::Error on a mismatched adapter (model/lora.h).
  AdapterLoadReport attach_adapter(const std::string& dir, AdapterPolicy policy, LoraConfig* cfg_out = nullptr);
  AdapterPolicy adapter_policy() const { return adapter_policy_; }

  // The token ids of the rendered prompt (BOS first), with one placeholder id where the image
  // goes. Throws stic::Error when the prompt's <image> markers do not match `has_image`.
  std::vector<int64_t> prompt_ids(const std::string& user, const std::string& template_name, bool has_image,
                                  std::string* rendered = nullptr) const;
  // Decodes an image file, applies `transform` (a corruption; none by default) and preprocesses
  // it as the model's config says (crop | pad | anyres).
  ImageInput load_image(const std::string& path, const ImageTransform& transform = {}) const;
  // The same for an image already in memory (a corrupted copy, a decoded benchmark image).
  ImageInput preprocess(const Image& image) const;

  const LlavaConfig& config() const { return model_->cfg; }
  Llava& model() { return model_; }
  const Tokenizer& tokenizer() const { return tok_; }
  int64_t placeholder_id() const { return placeholder_; }
  const torch::Device& device() const { return device_; }
  // Overrides the checkpoint's image mode (stic --image-mode pad|anyres|crop); anyres needs the
  // model's grid pinpoints. Throws stic::Error otherwise.
  void set_image_mode(AspectMode mode);
  // Overrides whose preprocessing is reproduced (stic --image-backend pil|torchvision).
  void set_image_backend(ImageBackend backend) { model_->cfg.image_backend = backend; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  LlavaConfig cfg_;
  Llava model_{nullptr};
  Tokenizer tok_;
  int64_t placeholder_ = -1;
  torch::Device device_;
  AdapterPolicy adapter_policy_ = AdapterPolicy::None;
};

// A model for inference, as the generation verbs load it: DIR loaded, the PEFT adapter in
// `adapter` (if any) merged into the weights, eval mode. `verb` names it in the one stderr line
// about the adapter ("" = quiet).
std::unique_ptr<LoadedModel> load_for_inference(const std::string& dir, const LoadOptions& opts,
                                                const std::string& adapter, const std::string& verb);

}  // namespace stic
