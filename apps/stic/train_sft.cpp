// stic train-sft — supervised fine-tuning with LoRA (or in full) on LLaVA conversation data
// (the library call: run_sft, src/stic/train/sft.h).
#include <cstdio>
#include <memory>

#include "stic/train/sft.h"
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
  c->add_option("--max-steps", o.train.max_steps, "optimizer steps (default: --epochs)");
  c->add_option("--epochs", o.train.epochs, "passes over the data")->check(CLI::PositiveNumber);
  c->add_option("--lr", o.train.lr, "peak learning rate")->check(CLI::NonNegativeNumber);
  c->add_option("--mm-projector-lr", o.setup.mm_projector_lr,
                 "peak lr of the projector (LLaVA's mm_projector_lr; default: --lr)")->check(CLI::NonNegativeNumber);
  c->add_option("--mm-vision-tower-lr", o.setup.mm_vision_tower_lr,
                 "peak lr of the vision tower (LLaVA's mm_vision_tower_lr; default: --lr)")->check(CLI::NonNegativeNumber);
  c->add_option("--schedule", o.train.schedule, "cosine|linear|constant")->check(CLI::IsMember({"cosine", "linear", "constant"}));
  c->add_option("--warmup-ratio", o.train.warmup_ratio, "warmup steps = ceil(ratio * total)")->check(CLI::Range(0.0, 1.0));
  c->add_option("--batch-size", o.train.batch_size, "examples per micro-batch")->check(CLI::PositiveNumber);
  c->add_option("--grad-accum", o.train.grad_accum, "micro-batches per optimizer step")->check(CLI::PositiveNumber);
  c->add_option("--weight-decay", o.train.adam.weight_decay, "AdamW decoupled weight decay");
  c->add_option("--max-grad-norm", o.train.max_grad_norm, "clip the global grad norm (0: off)");
  c->add_option("--image-marker", o.image_marker,
                 "where the image goes in its turn: front (LLaVA moves <image> to the start) or keep (where the text has it, as HF)")
      ->check(CLI::IsMember({"front", "keep"}));
  c->add_option("--max-length", o.max_length, "decoder positions per sample, image included")->check(CLI::PositiveNumber);
  c->add_option("--lora-r", o.setup.lora.r, "LoRA rank")->check(CLI::PositiveNumber);
  c->add_option("--lora-alpha", o.setup.lora.alpha, "LoRA alpha");
  c->add_option("--lora-dropout", o.setup.lora.dropout, "LoRA dropout")->check(CLI::Range(0.0, 1.0));
  c->add_flag("--rslora", o.setup.lora.rslora, "scale by alpha/sqrt(r)");
  c->add_option("--lora-targets", o.setup.targets,
                "comma-separated suffixes (default q_proj,...,down_proj of the decoder) or a regex over module names");
  c->add_flag("--train-projector", o.setup.train_projector, "also train the projector in full (modules_to_save)");
  c->add_flag("--full", o.setup.full, "train every parameter (no LoRA; for small models)");
  c->add_option("--save-every", o.train.save_every, "checkpoint every N steps (0: at the end)");
  c->add_option("--keep-checkpoints", o.train.keep_checkpoints, "checkpoint folders kept");
  c->add_option("--log-every", o.train.log_every, "metrics.jsonl / progress every N steps");
  auto* group = c->add_flag("--group-by-length", o.train.group_by_length, "length-grouped batches (HF's sampler)");
  c->add_flag("--sort-within-step", o.train.sort_within_step,
              "sort each step's batch-size x grad-accum examples by length before cutting micro-batches (less padding with --grad-accum > 1)")
      ->excludes(group);
  c->add_flag("--resume", o.train.resume, "continue the run in --output-dir from its latest checkpoint");
  c->add_option("--stop-after", o.train.stop_after, "checkpoint and stop at this step (resume later)");
  c->add_option("--seed", o.train.seed, "data order, init and dropout seed");
  c->add_option("--peak-tflops", o.train.peak_tflops, "GPU peak for the mfu metric (H100 bf16 dense: 989)");
  c->add_option("--device", o.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", o.dtype, "auto|fp32|bf16");
  c->add_option("--vision-tower", o.vision_tower, "CLIP folder for original-layout checkpoints");
  c->add_flag("--no-progress", a->no_progress, "no progress bar");
  c->add_flag("--gradient-checkpointing", o.setup.gradient_checkpointing,
              "recompute each decoder layer in the backward instead of keeping its activations");
  verb_callbacks()[c] = [a] { return run_train_sft(*a); };
}

}  // namespace stic::app
