// stic/infer/runner.h — the reference decoder: one request at a time, a growing KV cache, greedy
// / temperature / top-p sampling with torch's CPU generator. It is deliberately plain: the
// batched engine (infer/engine.h) and every fast path are tested against it (tests/unit/
// torch_engine.cpp, tests/parity/). Verbs use the engine.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "stic/model/loaded_model.h"

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

// Generates the answer to one request with the reference decoder.
ChatResult reference_chat(LoadedModel& model, const ChatRequest& req);

}  // namespace stic
