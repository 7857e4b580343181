// stic chat — one image, one prompt, one answer (contract in shared/design.md).
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "stic/infer/engine.h"
#include "stic/io/safetensors.h"
#include "stic/util/error.h"
#include "flags.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct ChatArgs {
  ModelFlags m;
  SamplingFlags s;
  std::string image, prompt, dump_logits;
  bool json = false;
};

int run_chat(const ChatArgs& a) {
  auto model = load_for_inference(a.m, "chat");
  // the same engine as `stic generate`, with one slot
  GenRequest req;
  req.id = "chat";
  req.image = a.image;
  req.prompt = a.prompt;
  req.template_name = a.s.tmpl;
  req.max_new_tokens = a.s.max_new_tokens;
  req.temperature = a.s.temperature;
  req.top_p = a.s.top_p;
  req.seed = a.s.seed;
  req.want_logits = !a.dump_logits.empty();
  EngineOptions eo = engine_options_from_env();
  eo.max_batch = 1;
  Engine engine(*model, eo);
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
  add_model_flags(c, a->m);
  c->add_option("--image", a->image, "image file (JPEG or PNG)");
  c->add_option("--prompt", a->prompt, "the user's text; <image> marks where the image goes")->required();
  add_sampling_flags(c, a->s, "sampling seed", false);
  c->add_flag("--json", a->json, "print {text, token_ids, num_input_tokens, num_image_tokens}");
  c->add_option("--dump-logits", a->dump_logits, "write the last prompt position's logits (safetensors)");
  verb_callbacks()[c] = [a] { return run_chat(*a); };
}

}  // namespace stic::app
