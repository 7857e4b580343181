// stic train-sft — supervised fine-tuning with LoRA (or in full) on LLaVA conversation data.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "stic/infer/runner.h"
#include "stic/io/safetensors.h"
#include "stic/model/lora.h"
#include "stic/train/sft.h"
#include "stic/train/trainer.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct SftArgs {
  double mm_projector_lr = -1, mm_vision_tower_lr = -1;
  std::string eval_data;
  int64_t eval_every = 0, eval_examples = 128;
  std::string model, adapter, data, image_dir, output_dir, tmpl = "auto", device = "cpu", dtype = "auto",
                                                            vision_tower, schedule = "cosine", targets,
                                                            image_marker = "front";
  TrainConfig train;
  LoraConfig lora;
  int64_t max_length = 2048;
  bool full = false, train_projector = false, no_progress = false, gradient_checkpointing = false;
};

// The files of a checkpoint folder besides its weights (copied from --model on a full export;
// a whitelist, so an input that is itself a training output does not pass on its metrics,
// checkpoints or `latest`).
const char* const kModelFiles[] = {"config.json", "generation_config.json", "preprocessor_config.json",
                                   "tokenizer.model", "tokenizer.json", "tokenizer_config.json",
                                   "special_tokens_map.json", "added_tokens.json", "chat_template.json",
                                   "chat_template.jinja"};

int run_train_sft(SftArgs a) {
  if (a.full && !a.adapter.empty())
    fail("train-sft: --full trains the base weights; it cannot continue an --adapter (merge it first)");
  const LoadOptions opts = load_options(a.device, a.dtype, a.vision_tower);
  Runner runner(a.model, opts);
  auto& model = runner.model();
  LoraConfig lora = a.lora;
  lora.base_model = a.model;
  if (!a.targets.empty()) {
    if (a.targets.find_first_of("\\.*[(|^$") != std::string::npos) {
      lora.target_regex = a.targets;
    } else {
      lora.target_suffixes.clear();
      std::string cur;
      for (char c : a.targets + ",") {
        if (c == ',') {
          if (!cur.empty()) lora.target_suffixes.push_back(cur);
          cur.clear();
        } else {
          cur += c;
        }
      }
    }
  }
  if (a.train_projector) lora.modules_to_save.push_back("multi_modal_projector");
  if (!a.adapter.empty()) {
    LoraConfig loaded;
    auto rep = load_adapter(model, a.adapter, &loaded);
    std::fprintf(stderr, "stic: continuing adapter %s (%d LoRA modules)\n", a.adapter.c_str(), rep.lora_modules);
    lora.r = loaded.r;
    lora.alpha = loaded.alpha;
    lora.rslora = loaded.rslora;
    for (auto& m : loaded.modules_to_save) lora.modules_to_save.push_back(m);
    // the loaded adapter keeps its own dropout unless --lora-dropout was given
    for (auto& [n, l] : named_linears(model))
      if (l->has_lora()) l->lora_dropout = a.lora.dropout;
  } else if (!a.full) {
    apply_lora(model, lora);
  }
  auto params = set_trainable(model, lora, a.full);
  // per-group peak lrs (LLaVA's mm_projector_lr / mm_vision_tower_lr): the first matching prefix wins
  std::vector<std::pair<std::string, double>> lr_by_prefix;
  if (a.mm_projector_lr >= 0) lr_by_prefix.push_back({"multi_modal_projector.", a.mm_projector_lr});
  if (a.mm_vision_tower_lr >= 0) {
    lr_by_prefix.push_back({"vision_tower.", a.mm_vision_tower_lr});
    lr_by_prefix.push_back({"image_newline", a.mm_vision_tower_lr});
  }
  // an lr of 0 freezes: those weights leave the trainable set (no gradients computed for them;
  // numerically the same as updating with lr 0, as AdamW's decay is scaled by the lr too)
  auto frozen = [&](const std::string& n) {
    for (const auto& [prefix, lr] : lr_by_prefix)
      if (n.rfind(prefix, 0) == 0) return lr == 0;
    return false;
  };
  for (auto it = params.begin(); it != params.end();) {
    if (frozen(it->first)) {
      it->second.set_requires_grad(false);
      it = params.erase(it);
    } else {
      ++it;
    }
  }
  model->train();
  model->language_model->model->gradient_checkpointing = a.gradient_checkpointing;

  std::error_code ec;
  std::filesystem::create_directories(a.output_dir, ec);
  if (ec) fail(a.output_dir, ": cannot create the output folder: ", ec.message());
  SftOptions so;
  so.template_name = a.tmpl;
  so.image_dir = a.image_dir;
  so.image_marker = a.image_marker;
  so.max_length = a.max_length;
  so.errors_path = a.output_dir + "/errors.jsonl";
  if (!a.train.resume) std::filesystem::remove(so.errors_path, ec);
  SftTask task(runner, a.data, so);

  TrainConfig tc = a.train;
  tc.output_dir = a.output_dir;
  tc.schedule = a.schedule;
  tc.progress = !a.no_progress;
  tc.lr_by_prefix = lr_by_prefix;
  int64_t n_params = 0;
  for (auto& p : model->language_model->parameters()) n_params += p.numel();
  tc.flops_per_token = 6.0 * static_cast<double>(n_params);
  auto save = [&](const std::string& dir) {
    if (a.full) {
      // full fine-tuning: a complete checkpoint folder (every weight under the source layout's
      // names + config, tokenizer and preprocessor files of --model), loadable by every verb
      save_full_checkpoint(model, dir);
    } else {
      save_adapter(model, lora, dir);
    }
  };
  Trainer trainer(tc, params, task.lengths(), [&](const std::vector<int64_t>& idx) { return task.micro(idx); }, save);
  std::unique_ptr<SftTask> eval_task;
  if (!a.eval_data.empty()) {
    SftOptions eo = so;
    eo.errors_path = a.output_dir + "/eval_errors.jsonl";
    std::filesystem::remove(eo.errors_path, ec);
    eval_task = std::make_unique<SftTask>(runner, a.eval_data, eo);
    const int64_t every = a.eval_every > 0 ? a.eval_every : std::max<int64_t>(1, trainer.total_steps() / 10);
    trainer.set_step_hook([&, every](int64_t step, std::map<std::string, double>& m) {
      if (step % every != 0 && step != trainer.total_steps()) return;
      const auto e = eval_task->evaluate(a.eval_examples, tc.batch_size);
      m["eval_loss"] = e.loss;
      m["eval_loss_other_image"] = e.loss_other_image;
      m["eval_image_gain"] = e.image_gain;
      m["eval_examples"] = static_cast<double>(e.examples);
      std::fprintf(stderr, "%seval step %lld: loss %.4f, with another image %.4f, image gain %.4f nats/token (%lld examples)\n",
                   tc.progress ? "\r\033[K" : "", static_cast<long long>(step), e.loss, e.loss_other_image,
                   e.image_gain, static_cast<long long>(e.examples));
    });
  }
  {
    std::map<std::string, std::string> fp = {{"data", a.data}, {"model", a.model}, {"full", a.full ? "1" : "0"}};
    if (a.image_marker != "front") fp["image_marker"] = a.image_marker;  // absent = front: older checkpoints resume
    trainer.set_fingerprint(fp);
  }
  {
    nlohmann::json cfg = {{"verb", "train-sft"}, {"model", a.model}, {"adapter", a.adapter}, {"data", a.data},
                          {"image_dir", a.image_dir}, {"image_marker", a.image_marker}, {"template", a.tmpl}, {"device", a.device}, {"dtype", a.dtype},
                          {"lr", tc.lr}, {"mm_projector_lr", a.mm_projector_lr},
                          {"mm_vision_tower_lr", a.mm_vision_tower_lr}, {"schedule", tc.schedule}, {"warmup_ratio", tc.warmup_ratio},
                          {"batch_size", tc.batch_size}, {"grad_accum", tc.grad_accum}, {"max_steps", tc.max_steps},
                          {"epochs", tc.epochs}, {"total_steps", trainer.total_steps()},
                          {"weight_decay", tc.adam.weight_decay}, {"max_grad_norm", tc.max_grad_norm},
                          {"seed", tc.seed}, {"max_length", a.max_length}, {"lora_r", lora.r},
                          {"lora_alpha", lora.alpha}, {"lora_dropout", lora.dropout}, {"full", a.full},
                          {"trainable_parameters", params.size()}, {"gradient_checkpointing", a.gradient_checkpointing},
                          {"group_by_length", tc.group_by_length},
                          {"sort_within_step", tc.sort_within_step}, {"examples", task.examples().size()}};
    AtomicFile f(a.output_dir + "/train_config.json");
    f.write(cfg.dump(1) + "\n");
    f.commit();
  }
  torch::manual_seed(tc.seed);
  TrainResult r;
  try {
    r = trainer.run();
  } catch (const Error&) {
    if (!task.counts().empty()) std::fprintf(stderr, "stic: data: %s\n", task.summary().c_str());
    throw;
  }
  if (!r.stopped_early) save(a.output_dir);  // the final weights beside the checkpoints
  std::fprintf(stderr, "stic: train-sft: %lld/%lld steps, last loss %.4f; %s\n", static_cast<long long>(r.steps),
               static_cast<long long>(r.total_steps), r.last_loss, task.summary().c_str());
  std::printf("%s\n", r.stopped_early ? r.last_checkpoint.c_str() : a.output_dir.c_str());
  return 0;
}

}  // namespace

void save_full_checkpoint(Llava& model, const std::string& dir) {
  const auto& cfg = model->cfg;
  if (cfg.layout == CheckpointLayout::Original) {  // vision tower folder etc.: the merge exporter knows them
    export_merged(model, dir);
    return;
  }
  std::map<std::string, torch::Tensor> w;
  for (auto& p : model->named_parameters()) {
    const std::string& n = p.key();
    if (n == "language_model.lm_head.weight" && cfg.text.tie_word_embeddings) continue;
    const auto dot = n.rfind('.');
    const std::string name =
        dot == std::string::npos ? n : peft_module_name(n.substr(0, dot), AdapterKeyStyle::HfV4) + n.substr(dot);
    w[name] = p.value().detach().to(torch::kCPU).contiguous();
  }
  save_safetensors(dir + "/model.safetensors", w, {{"format", "pt"}});
  for (const char* fn : kModelFiles) {
    const std::filesystem::path src = std::filesystem::path(cfg.dir) / fn;
    if (!std::filesystem::is_regular_file(src)) continue;
    std::error_code ec;
    std::filesystem::copy_file(src, std::filesystem::path(dir) / fn, std::filesystem::copy_options::overwrite_existing,
                               ec);
    if (ec) fail(dir, ": cannot copy ", src.string(), ": ", ec.message());
  }
}

void register_train_sft(CLI::App& app) {
  auto a = std::make_shared<SftArgs>();
  a->lora.r = 128;
  a->lora.alpha = 256;
  a->lora.dropout = 0.05;
  a->train.lr = 2e-5;
  auto* c = app.add_subcommand("train-sft", "supervised fine-tuning (LoRA) on LLaVA conversation data");
  c->add_option("--model", a->model, "model folder (llava-hf or original LLaVA layout)")->required();
  c->add_option("--adapter", a->adapter, "PEFT LoRA adapter to continue training");
  c->add_option("--data", a->data, "LLaVA JSON list or JSONL of {id, image, conversations}")->required();
  c->add_option("--image-dir", a->image_dir, "folder the records' image paths are relative to");
  c->add_option("--output-dir", a->output_dir, "adapter, checkpoints, metrics.jsonl, errors.jsonl")->required();
  c->add_option("--eval-data", a->eval_data,
                 "held-out LLaVA records: eval loss, loss with a mismatched image and their gap in metrics.jsonl");
  c->add_option("--eval-every", a->eval_every, "evaluate every N steps (default: total/10) and at the end");
  c->add_option("--eval-examples", a->eval_examples, "held-out examples per evaluation (0: all)");
  c->add_option("--template", a->tmpl, "auto|vicuna_v1|llava_v1|mistral_instruct|llava_llama_2")
      ->check(CLI::IsMember({"auto", "vicuna_v1", "v1", "llava_v1", "mistral_instruct", "llava_llama_2"}));
  c->add_option("--max-steps", a->train.max_steps, "optimizer steps (default: --epochs)");
  c->add_option("--epochs", a->train.epochs, "passes over the data")->check(CLI::PositiveNumber);
  c->add_option("--lr", a->train.lr, "peak learning rate")->check(CLI::NonNegativeNumber);
  c->add_option("--mm-projector-lr", a->mm_projector_lr,
                 "peak lr of the projector (LLaVA's mm_projector_lr; default: --lr)")->check(CLI::NonNegativeNumber);
  c->add_option("--mm-vision-tower-lr", a->mm_vision_tower_lr,
                 "peak lr of the vision tower (LLaVA's mm_vision_tower_lr; default: --lr)")->check(CLI::NonNegativeNumber);
  c->add_option("--schedule", a->schedule, "cosine|linear|constant")->check(CLI::IsMember({"cosine", "linear", "constant"}));
  c->add_option("--warmup-ratio", a->train.warmup_ratio, "warmup steps = ceil(ratio * total)")->check(CLI::Range(0.0, 1.0));
  c->add_option("--batch-size", a->train.batch_size, "examples per micro-batch")->check(CLI::PositiveNumber);
  c->add_option("--grad-accum", a->train.grad_accum, "micro-batches per optimizer step")->check(CLI::PositiveNumber);
  c->add_option("--weight-decay", a->train.adam.weight_decay, "AdamW decoupled weight decay");
  c->add_option("--max-grad-norm", a->train.max_grad_norm, "clip the global grad norm (0: off)");
  c->add_option("--image-marker", a->image_marker,
                 "where the image goes in its turn: front (LLaVA moves <image> to the start) or keep (where the text has it, as HF)")
      ->check(CLI::IsMember({"front", "keep"}));
  c->add_option("--max-length", a->max_length, "decoder positions per sample, image included")->check(CLI::PositiveNumber);
  c->add_option("--lora-r", a->lora.r, "LoRA rank")->check(CLI::PositiveNumber);
  c->add_option("--lora-alpha", a->lora.alpha, "LoRA alpha");
  c->add_option("--lora-dropout", a->lora.dropout, "LoRA dropout")->check(CLI::Range(0.0, 1.0));
  c->add_flag("--rslora", a->lora.rslora, "scale by alpha/sqrt(r)");
  c->add_option("--lora-targets", a->targets,
                "comma-separated suffixes (default q_proj,...,down_proj of the decoder) or a regex over module names");
  c->add_flag("--train-projector", a->train_projector, "also train the projector in full (modules_to_save)");
  c->add_flag("--full", a->full, "train every parameter (no LoRA; for small models)");
  c->add_option("--save-every", a->train.save_every, "checkpoint every N steps (0: at the end)");
  c->add_option("--keep-checkpoints", a->train.keep_checkpoints, "checkpoint folders kept");
  c->add_option("--log-every", a->train.log_every, "metrics.jsonl / progress every N steps");
  auto* group = c->add_flag("--group-by-length", a->train.group_by_length, "length-grouped batches (HF's sampler)");
  c->add_flag("--sort-within-step", a->train.sort_within_step,
              "sort each step's batch-size x grad-accum examples by length before cutting micro-batches (less padding with --grad-accum > 1)")
      ->excludes(group);
  c->add_flag("--resume", a->train.resume, "continue the run in --output-dir from its latest checkpoint");
  c->add_option("--stop-after", a->train.stop_after, "checkpoint and stop at this step (resume later)");
  c->add_option("--seed", a->train.seed, "data order, init and dropout seed");
  c->add_option("--peak-tflops", a->train.peak_tflops, "GPU peak for the mfu metric (H100 bf16 dense: 989)");
  c->add_option("--device", a->device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", a->dtype, "auto|fp32|bf16");
  c->add_option("--vision-tower", a->vision_tower, "CLIP folder for original-layout checkpoints");
  c->add_flag("--no-progress", a->no_progress, "no progress bar");
  c->add_flag("--gradient-checkpointing", a->gradient_checkpointing,
              "recompute each decoder layer in the backward instead of keeping its activations");
  verb_callbacks()[c] = [a] { return run_train_sft(*a); };
}

}  // namespace stic::app
