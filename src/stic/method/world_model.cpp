// stic/method/world_model.cpp — see world_model.h.
#include "stic/method/world_model.h"

#include <map>

#include "stic/io/safetensors.h"
#include "stic/model/config.h"
#include "stic/model/init.h"
#include "stic/model/llava.h"
#include "stic/util/fs.h"

namespace stic {

WorldModelSummary build_world_and_model(const world::WorldOptions& o) {
  WorldModelSummary r;
  r.world = world::build_world(o);
  const std::string weights = r.world.model_dir + "/model.safetensors";
  if (!file_exists(weights) || r.world.tokenizer_trained) {
    LlavaConfig cfg = load_llava_config(r.world.model_dir);
    Llava model = make_initialized_llava(cfg, 0.02, o.seed, torch::kCPU, torch::kFloat32);
    std::map<std::string, torch::Tensor> tensors;
    for (auto& p : model->named_parameters()) tensors[p.key()] = p.value().detach().contiguous();
    save_safetensors(weights, tensors, {{"format", "pt"}});
    r.wrote_weights = true;
  }
  return r;
}

}  // namespace stic
