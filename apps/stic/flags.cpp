#include "flags.h"


namespace stic::app {

void add_model_flags(CLI::App* c, ModelFlags& f) {
  c->add_option("--model", f.model, "model folder (llava-hf or original LLaVA layout)")->required();
  c->add_option("--adapter", f.adapter, "PEFT LoRA adapter folder (merged into the weights)");
  c->add_option("--device", f.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", f.dtype, "auto|fp32|bf16|fp16");
  c->add_option("--vision-tower", f.vision_tower, "CLIP folder for original-layout checkpoints");
}

std::unique_ptr<LoadedModel> load_for_inference(const ModelFlags& f, const std::string& verb) {
  return stic::load_for_inference(f.model, load_options(f.device, f.dtype, f.vision_tower), f.adapter, verb);
}

void add_sampling_flags(CLI::App* c, SamplingFlags& s, const std::string& seed_help, bool with_top_k) {
  c->add_option("--template", s.tmpl, "auto|raw|vicuna_v1|llava_v1|mistral_instruct")
      ->check(CLI::IsMember({"auto", "raw", "vicuna_v1", "llava_v1", "mistral_instruct"}));
  c->add_option("--max-new-tokens", s.max_new_tokens, "tokens to generate at most")->check(CLI::PositiveNumber);
  c->add_option("--temperature", s.temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  c->add_option("--top-p", s.top_p, "nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  if (with_top_k) c->add_option("--top-k", s.top_k, "0 = off")->check(CLI::NonNegativeNumber);
  c->add_option("--seed", s.seed, seed_help);
}

}  // namespace stic::app
