// stic/eval/dar.h — describe-and-respond's first step (reference/stic-method.md section 5): each
// distinct image is described once, greedily, with one prompt (DaR's by default), through the
// batched engine; the questions are then asked with text/stic_prompts.h's infuse_description.
//
//   OUT   {"id": image, "image", "prompt", "description", "finish_reason"} per image, or
//         {"id", "image", "error"} for an image that cannot be read; append-only and flushed, a
//         re-run describes only the images missing from it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace stic {

struct DarOptions {
  std::string model, adapter, device = "cpu", dtype = "auto";
  std::string image_backend;  // pil | torchvision; "" = the checkpoint's
  std::string prompt;            // "" = stic_dar_prompt()
  int max_new_tokens = 1024;
  int batch_size = 16;
  bool progress = true;
};

struct DarDescriptions {
  std::map<std::string, std::string> text;  // image (as given) -> description
  int64_t described = 0, failed = 0;        // this run
  double seconds = 0;
};

// `images` as named by the benchmark, resolved against `image_dir` when relative.
DarDescriptions dar_describe(const DarOptions& o, const std::vector<std::string>& images, const std::string& image_dir,
                             const std::string& out);

}  // namespace stic
