// stic train-sft — supervised fine-tuning with LoRA (or in full) on LLaVA conversation data
// (the library call: run_sft, src/stic/train/sft.h).
#include <cstdio>
#include <memory>

#include "stic/train/sft.h"
#include "flags.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct SftArgs {
  SftRunOptions o;
  bool no_progress = false;
};

int run_train_sft(SftArgs a) {
  a.o.train.progress = !a.no_progress;
  const SftRunResult r = run_sft(a.o);
  std::fprintf(stderr, "stic: train-sft: %lld/%lld steps, last loss %.4f; %s\n", static_cast<long long>(r.train.steps),
               static_cast<long long>(r.train.total_steps), r.train.last_loss, r.data_summary.c_str());
  std::printf("%s\n", r.weights.c_str());
  return 0;
}

}  // namespace

void register_train_sft(CLI::App& app) {
  auto a = std::make_shared<SftArgs>();
  auto& o = a->o;
  auto* c = app.add_subcommand("train-sft", "supervised fine-tuning (LoRA) on LLaVA conversation data");
  c->add_option("--model", o.model, "model folder (llava-hf or original LLaVA layout)")->required();
  c->add_option("--adapter", o.setup.adapter, "PEFT LoRA adapter to continue training");
  c->add_option("--data", o.data, "LLaVA JSON list or JSONL of {id, image, conversations}")->required();
  c->add_option("--image-dir", o.image_dir, "folder the records' image paths are relative to");
  c->add_option("--output-dir", o.output_dir, "adapter, checkpoints, metrics.jsonl, errors.jsonl")->required();
  c->add_option("--eval-data", o.eval_data,
                 "held-out LLaVA records: eval loss, loss with a mismatched image and their gap in metrics.jsonl");
  c->add_option("--eval-every", o.eval_every, "evaluate every N steps (default: total/10) and at the end");
  c->add_option("--eval-examples", o.eval_examples, "held-out examples per evaluation (0: all)");
  c->add_option("--template", o.template_name, "auto|vicuna_v1|llava_v1|mistral_instruct|llava_llama_2")
      ->check(CLI::IsMember({"auto", "vicuna_v1", "v1", "llava_v1", "mistral_instruct", "llava_llama_2"}));
  add_train_flags(c, o.train, o.setup);
  c->add_option("--mm-projector-lr", o.setup.mm_projector_lr,
                 "peak lr of the projector (LLaVA's mm_projector_lr; default: --lr)")->check(CLI::NonNegativeNumber);
  c->add_option("--mm-vision-tower-lr", o.setup.mm_vision_tower_lr,
                 "peak lr of the vision tower (LLaVA's mm_vision_tower_lr; default: --lr)")->check(CLI::NonNegativeNumber);
  c->add_option("--image-marker", o.image_marker,
                 "where the image goes in its turn: front (LLaVA moves <image> to the start) or keep (where the text has it, as HF)")
      ->check(CLI::IsMember({"front", "keep"}));
  c->add_option("--image-mode", o.image_mode, "pad (576 tokens, as the released training) | anyres | crop (default: the model's)")
      ->check(CLI::IsMember({"pad", "anyres", "crop"}));
  c->add_option("--max-length", o.max_length, "decoder positions per sample, image included")->check(CLI::PositiveNumber);
  c->add_flag("--train-projector", o.setup.train_projector, "also train the projector in full (modules_to_save)");
  c->add_flag("--full", o.setup.full, "train every parameter (no LoRA; for small models)");
  c->add_option("--device", o.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", o.dtype, "auto|fp32|bf16");
  add_image_backend_flag(c, o.image_backend);
  c->add_option("--vision-tower", o.vision_tower, "CLIP folder for original-layout checkpoints");
  c->add_flag("--no-progress", a->no_progress, "no progress bar");
  add_recipe_flag(c);
  verb_callbacks()[c] = [a] { return run_train_sft(*a); };
}

}  // namespace stic::app
