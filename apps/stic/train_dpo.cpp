// stic train-dpo — stage 1 of STIC: regularised DPO with LoRA on preference pairs (the library
// call: run_dpo, src/stic/train/dpo.h).
#include <cstdio>
#include <memory>

#include "flags.h"
#include "stic/train/dpo.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct DpoArgs {
  DpoRunOptions o;
  bool no_progress = false;
};

int run_train_dpo(DpoArgs a) {
  a.o.train.progress = !a.no_progress;
  const DpoRunResult r = run_dpo(a.o);
  std::fprintf(stderr, "stic: train-dpo: %lld/%lld steps, last loss %.4f; %s\n", static_cast<long long>(r.train.steps),
               static_cast<long long>(r.train.total_steps), r.train.last_loss, r.data_summary.c_str());
  std::printf("%s\n", r.weights.c_str());
  return 0;
}

}  // namespace

void register_train_dpo(CLI::App& app) {
  auto a = std::make_shared<DpoArgs>();
  auto& o = a->o;
  auto& L = o.dpo.loss;
  auto* c = app.add_subcommand("train-dpo", "STIC stage 1: DPO + alpha * NLL of the preferred answer, with LoRA");
  c->add_option("--model", o.model, "model folder (llava-hf or original LLaVA layout)")->required();
  c->add_option("--adapter", o.setup.adapter, "PEFT LoRA adapter to start from (policy = base + adapter, reference = base)");
  c->add_option("--data", o.data, "preference pairs: JSONL or JSON list of {image, chosen, rejected} (stic generate-pref, the STIC file)")
      ->required();
  c->add_option("--image-dir", o.image_dir, "folder the records' image paths are relative to");
  c->add_option("--output-dir", o.output_dir, "adapter, checkpoints, metrics.jsonl, dpo.svg, errors.jsonl")->required();
  c->add_option("--template", o.dpo.template_name, "auto|vicuna_v1|llava_v1|mistral_instruct|llava_llama_2")
      ->check(CLI::IsMember({"auto", "vicuna_v1", "v1", "llava_v1", "mistral_instruct", "llava_llama_2"}));
  c->add_option("--image-mode", o.image_mode, "pad (576 tokens, as the released training) | anyres | crop (default: the model's)")
      ->check(CLI::IsMember({"pad", "anyres", "crop"}));
  c->add_option("--image-marker", o.dpo.image_marker, "front (LLaVA moves <image> to the start) | keep")
      ->check(CLI::IsMember({"front", "keep"}));
  c->add_flag("--add-image-marker", o.dpo.add_image_marker,
              "show the image to pairs whose prompt lacks <image> (the released files); without it they train text-only, as released");
  c->add_option("--max-length", o.dpo.max_length, "decoder positions per side, image included")->check(CLI::PositiveNumber);
  c->add_option("--beta", L.beta, "DPO beta")->check(finite_number() & CLI::PositiveNumber);
  c->add_option("--alpha", L.alpha, "weight of the NLL of the preferred answer (0: plain DPO)")->check(finite_number() & CLI::NonNegativeNumber);
  c->add_option("--alpha-norm", L.alpha_norm, "sum: alpha on the summed log-prob (released) | mean: per answer token")
      ->check(CLI::IsMember({"sum", "mean"}));
  c->add_option("--loss-type", L.loss_type, "sigmoid | hinge | ipo | sft (alpha * nll of the chosen answer alone: no negatives)")
      ->check(CLI::IsMember({"sigmoid", "hinge", "ipo", "sft"}));
  c->add_option("--label-smoothing", L.label_smoothing, "cDPO label smoothing (sigmoid), in [0, 0.5)")
      ->check(CLI::Range(0.0, 0.4999));
  c->add_flag("--released-rejected-logps", o.dpo.released_rejected_logps,
              "the released trainer's rejected log-prob: the most likely token other than the rejected one (docs/training.md)");
  c->add_flag("--skip-identical", o.dpo.skip_identical, "skip pairs whose two answers are the same text (default: keep, counted)");
  c->add_flag("--precompute-ref", o.precompute_ref,
              "compute the reference log-probs once before training (cached in OUTPUT/reference_logps.jsonl); training runs the policy only");
  add_train_flags(c, o.train, o.setup);
  c->add_flag("--full", o.setup.full, "train every parameter (needs --precompute-ref)");
  c->add_option("--device", o.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", o.dtype, "auto|fp32|bf16");
  add_image_backend_flag(c, o.image_backend);
  c->add_option("--vision-tower", o.vision_tower, "CLIP folder for original-layout checkpoints");
  c->add_flag("--no-progress", a->no_progress, "no progress bar");
  add_recipe_flag(c);
  verb_callbacks()[c] = [a] { return run_train_dpo(*a); };
}

}  // namespace stic::app
