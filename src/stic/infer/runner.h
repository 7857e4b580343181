// stic/infer/runner.h — a loaded model with its tokenizer and preprocessing: what `stic chat`
// (and later verbs) drive. Greedy / temperature / top-p decoding with a KV cache, one request
// at a time; the batched engine (infer/engine) builds on the same pieces.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "stic/model/llava.h"
#include "stic/text/tokenizer.h"

namespace stic {

struct ChatRequest {
  std::string image;                  // path, "" = text only
  std::string prompt;                 // user text ("<image>" optional; required for raw)
  std::string template_name = "auto";
  int max_new_tokens = 512;
  float temperature = 0.0f;           // 0 = greedy
  float top_p = 1.0f;
  uint64_t seed = 0;
};

struct ChatResult {
  std::string prompt_text;             // the rendered prompt
  std::string text;                    // decoded answer (special tokens skipped)
  std::vector<int32_t> token_ids;      // generated tokens only (EOS included if produced)
  int64_t num_input_tokens = 0;        // every decoder position of the prompt, image features included
  int64_t num_image_tokens = 0;
  torch::Tensor last_logits;           // (V) float32, CPU: the last prompt position
};

torch::ScalarType parse_dtype(const std::string& name, const torch::Device& device);  // auto|fp32|bf16|fp16
torch::Device parse_device(const std::string& name);                                   // cpu|cuda|cuda:N
// The verbs' --device / --dtype / --vision-tower flags as LoadOptions (dtype auto depends on the device).
LoadOptions load_options(const std::string& device, const std::string& dtype, const std::string& vision_tower = "");

class Runner {
 public:
  Runner(const std::string& model_dir, const LoadOptions& opts);
  // The token ids of the rendered prompt, with one placeholder id where the image goes.
  std::vector<int64_t> prompt_ids(const std::string& user, const std::string& template_name, bool has_image,
                                  std::string* rendered = nullptr) const;
  ImageInput load_image(const std::string& path) const;
  ChatResult chat(const ChatRequest& req);

  const LlavaConfig& config() const { return model_->cfg; }
  Llava& model() { return model_; }
  const Tokenizer& tokenizer() const { return tok_; }
  int64_t placeholder_id() const { return placeholder_; }

 private:
  LlavaConfig cfg_;
  Llava model_{nullptr};
  Tokenizer tok_;
  int64_t placeholder_ = -1;
  torch::Device device_;
};

}  // namespace stic
