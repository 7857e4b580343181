#include "stic/model/init.h"

#include "stic/util/strings.h"

namespace stic {

void init_weights(Llava& model, double std, uint64_t seed) {
  auto gen = torch::make_generator<torch::CPUGeneratorImpl>(seed);
  torch::NoGradGuard ng;
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    auto& t = p.value();
    if (n.find(".lora_A.") != std::string::npos || n.find(".lora_B.") != std::string::npos) continue;
    const bool norm = n.find("norm") != std::string::npos || n.find("layrnorm") != std::string::npos ||
                      n.find("layer_norm") != std::string::npos;
    torch::Tensor v;
    if (norm) {
      v = ends_with(n, ".weight") ? torch::ones(t.sizes()) : torch::zeros(t.sizes());
    } else if (ends_with(n, ".bias")) {
      v = torch::zeros(t.sizes());
    } else {  // weights of linear/conv/embedding layers, class_embedding, image_newline
      v = at::normal(0.0, std, t.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
    }
    t.copy_(v.to(t.device(), t.scalar_type()));
  }
}

Llava make_initialized_llava(const LlavaConfig& cfg, double std, uint64_t seed, const torch::Device& device,
                             torch::ScalarType dtype) {
  Llava model(cfg);
  init_weights(model, std, seed);
  model->to(device, dtype);
  if (cfg.text.tie_word_embeddings) tie_embeddings(model);
  return model;
}

}  // namespace stic
