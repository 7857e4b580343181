// stic chat — one image, one prompt, one answer (contract in shared/design.md).
#include <cstdio>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "stic/infer/engine.h"
#include "stic/io/safetensors.h"
#include "stic/util/error.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct ChatArgs {
  std::string model, image, prompt, tmpl = "auto", dump_logits, device = "cpu", dtype = "auto", vision_tower,
                                    adapter;
  int max_new_tokens = 512;
  float temperature = 0.0f, top_p = 1.0f;
  uint64_t seed = 0;
  bool json = false;
};

int run_chat(const ChatArgs& a) {
  LoadedModel model(a.model, load_options(a.device, a.dtype, a.vision_tower));
  if (!a.adapter.empty()) model.attach_adapter(a.adapter, AdapterPolicy::Merged);
  // the same engine as `stic generate`, with one slot
  GenRequest req;
  req.id = "chat";
  req.image = a.image;
  req.prompt = a.prompt;
  req.template_name = a.tmpl;
  req.max_new_tokens = a.max_new_tokens;
  req.temperature = a.temperature;
  req.top_p = a.top_p;
  req.seed = a.seed;
  req.want_logits = !a.dump_logits.empty();
  EngineOptions eo = engine_options_from_env();
  eo.max_batch = 1;
  Engine engine(model, eo);
  GenResult r;
  engine.run({req}, [&](GenResult& g) { r = g; });
  if (!r.error.empty()) fail(r.error);
  if (!a.dump_logits.empty()) save_safetensors(a.dump_logits, {{"logits", r.last_logits.contiguous()}});
  if (a.json) {
    nlohmann::json j = {{"text", r.text},
                        {"token_ids", r.token_ids},
                        {"num_input_tokens", r.num_input_tokens},
                        {"num_image_tokens", r.num_image_tokens}};
    std::cout << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    std::cout << r.text << std::endl;
  }
  return 0;
}

}  // namespace

void register_chat(CLI::App& app) {
  auto a = std::make_shared<ChatArgs>();
  auto* c = app.add_subcommand("chat", "answer one prompt about one image");
  c->add_option("--model", a->model, "model folder (llava-hf or original LLaVA layout)")->required();
  c->add_option("--image", a->image, "image file (JPEG or PNG)");
  c->add_option("--prompt", a->prompt, "the user's text; <image> marks where the image goes")->required();
  c->add_option("--template", a->tmpl, "auto|raw|vicuna_v1|llava_v1|mistral_instruct")
      ->check(CLI::IsMember({"auto", "raw", "vicuna_v1", "llava_v1", "mistral_instruct"}));
  c->add_option("--max-new-tokens", a->max_new_tokens, "tokens to generate at most")->check(CLI::PositiveNumber);
  c->add_option("--temperature", a->temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  c->add_option("--top-p", a->top_p, "nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  c->add_option("--seed", a->seed, "sampling seed");
  c->add_flag("--json", a->json, "print {text, token_ids, num_input_tokens, num_image_tokens}");
  c->add_option("--dump-logits", a->dump_logits, "write the last prompt position's logits (safetensors)");
  c->add_option("--device", a->device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", a->dtype, "auto|fp32|bf16|fp16");
  c->add_option("--vision-tower", a->vision_tower, "CLIP folder for original-layout checkpoints");
  c->add_option("--adapter", a->adapter, "PEFT LoRA adapter folder (merged into the weights)");
  verb_callbacks()[c] = [a] { return run_chat(*a); };
}

}  // namespace stic::app
