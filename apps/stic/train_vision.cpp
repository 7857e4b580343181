// stic train-vision — the world model's vision tower alone on the scene graphs (the library
// call: run_train_vision, src/stic/train/vision.h).
#include <cstdio>
#include <memory>

#include "stic/train/vision.h"
#include "flags.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct VisionArgs {
  VisionRunOptions o;
  bool no_progress = false;
};

int run_vision(VisionArgs a) {
  a.o.train.progress = !a.no_progress;
  const VisionRunResult r = run_train_vision(a.o);
  std::fprintf(stderr, "stic: train-vision: %lld/%lld steps, last loss %.4f\n", static_cast<long long>(r.train.steps),
               static_cast<long long>(r.train.total_steps), r.train.last_loss);
  std::printf("%s\n", r.weights.c_str());
  return 0;
}

}  // namespace

void register_train_vision(CLI::App& app) {
  auto a = std::make_shared<VisionArgs>();
  auto* c = app.add_subcommand("train-vision",
                               "train a model's vision tower alone on the built-in world's scene graphs (before the LLaVA stages)");
  c->add_option("--model", a->o.model, "model folder (llava-hf layout), e.g. WORLD/model")->required();
  c->add_option("--world", a->o.world, "world folder built by `stic world` (labels: gt/base_scenes.jsonl)")->required();
  c->add_option("--output-dir", a->o.output_dir, "the model with the trained tower, checkpoints, metrics.jsonl")->required();
  c->add_option("--max-steps", a->o.train.max_steps, "optimizer steps")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--batch-size", a->o.train.batch_size, "images per step")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--lr", a->o.train.lr, "peak learning rate")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--schedule", a->o.train.schedule, "cosine|linear|constant")->capture_default_str()->check(CLI::IsMember({"cosine", "linear", "constant"}));
  c->add_option("--warmup-ratio", a->o.train.warmup_ratio, "warmup steps = ceil(ratio * total)")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  c->add_option("--weight-decay", a->o.train.adam.weight_decay, "AdamW decoupled weight decay")->capture_default_str();
  c->add_option("--max-grad-norm", a->o.train.max_grad_norm, "clip the global grad norm (0: off)")->capture_default_str();
  c->add_option("--sincos-init", a->o.sincos_init, "start the patch position embeddings as this scale x a 2D sin-cos table (0: keep)")->capture_default_str();
  c->add_option("--eval-every", a->o.eval_every, "held-out accuracy every N steps (default: total/8) and at the end");
  c->add_option("--eval-examples", a->o.eval_examples, "eval-pool images for the held-out accuracy (0: all)")->capture_default_str();
  c->add_option("--save-every", a->o.train.save_every, "checkpoint every N steps (0: at the end)")->capture_default_str();
  c->add_option("--log-every", a->o.train.log_every, "metrics.jsonl / progress every N steps")->capture_default_str();
  c->add_flag("--resume", a->o.train.resume, "continue the run in --output-dir from its latest checkpoint");
  c->add_option("--stop-after", a->o.train.stop_after, "checkpoint and stop at this step (resume later)");
  c->add_option("--seed", a->o.train.seed, "data order and head init seed")->capture_default_str()->check(non_negative_integer());
  c->add_option("--device", a->o.device, "cpu|cuda|cuda:N")->capture_default_str();
  c->add_option("--dtype", a->o.dtype, "auto|fp32|bf16")->capture_default_str();
  add_image_backend_flag(c, a->o.image_backend);
  c->add_flag("--no-progress", a->no_progress, "no progress bar");
  verb_callbacks()[c] = [a] { return run_vision(*a); };
}

}  // namespace stic::app
