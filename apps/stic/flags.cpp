#include "flags.h"

#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "stic/util/strings.h"


namespace stic::app {

void add_model_flags(CLI::App* c, ModelFlags& f) {
  c->add_option("--model", f.model, "model folder (llava-hf or original LLaVA layout)")->required();
  c->add_option("--adapter", f.adapter, "PEFT LoRA adapter folder (merged into the weights)");
  c->add_option("--device", f.device, "cpu|cuda|cuda:N");
  c->add_option("--dtype", f.dtype, "auto|fp32|bf16|fp16");
  c->add_option("--vision-tower", f.vision_tower, "CLIP folder for original-layout checkpoints");
  add_image_backend_flag(c, f.image_backend);
}

void add_image_backend_flag(CLI::App* c, std::string& backend) {
  c->add_option("--image-backend", backend,
                "pil | torchvision: reproduce transformers' PIL image processors (v4 default, v5 ...ImageProcessorPil) "
                "or its torchvision ones (v5 default, v4 ...Fast; uint8 antialiased resize as ATen does it). "
                "Default: the checkpoint's (torchvision if preprocessor_config.json names a ...Fast class, else pil)")
      ->check(CLI::IsMember({"pil", "torchvision"}));
}

std::unique_ptr<LoadedModel> load_for_inference(const ModelFlags& f, const std::string& verb) {
  return stic::load_for_inference(f.model, load_options(f.device, f.dtype, f.vision_tower, f.image_backend), f.adapter, verb);
}

void add_sampling_flags(CLI::App* c, SamplingFlags& s, const std::string& seed_help, bool with_top_k) {
  c->add_option("--template", s.tmpl, "auto|raw|vicuna_v1|llava_v1|mistral_instruct")
      ->check(CLI::IsMember({"auto", "raw", "vicuna_v1", "llava_v1", "mistral_instruct"}));
  c->add_option("--max-new-tokens", s.max_new_tokens, "tokens to generate at most")->check(CLI::PositiveNumber);
  c->add_option("--temperature", s.temperature, "0 = greedy")->check(finite_number() & CLI::NonNegativeNumber);
  c->add_option("--top-p", s.top_p, "nucleus sampling mass, in (0, 1]")->check(probability_mass());
  if (with_top_k) c->add_option("--top-k", s.top_k, "0 = off")->check(CLI::NonNegativeNumber);
  c->add_option("--seed", s.seed, seed_help)->check(non_negative_integer());
}

void add_train_flags(CLI::App* c, TrainConfig& t, TrainSetupOptions& s) {
  c->add_option("--max-steps", t.max_steps, "optimizer steps (default: --epochs)")->check(CLI::PositiveNumber);
  c->add_option("--epochs", t.epochs, "passes over the data")->check(CLI::PositiveNumber);
  c->add_option("--lr", t.lr, "peak learning rate")->check(finite_number() & CLI::NonNegativeNumber);
  c->add_option("--schedule", t.schedule, "cosine|linear|constant")->check(CLI::IsMember({"cosine", "linear", "constant"}));
  c->add_option("--warmup-ratio", t.warmup_ratio, "warmup steps = ceil(ratio * total)")->check(finite_number() & CLI::Range(0.0, 1.0));
  c->add_option("--batch-size", t.batch_size, "examples per micro-batch")->check(CLI::PositiveNumber);
  c->add_option("--grad-accum", t.grad_accum, "micro-batches per optimizer step")->check(CLI::PositiveNumber);
  c->add_option("--weight-decay", t.adam.weight_decay, "AdamW decoupled weight decay")->check(finite_number() & CLI::NonNegativeNumber);
  c->add_option("--max-grad-norm", t.max_grad_norm, "clip the global grad norm (0: off)")->check(finite_number() & CLI::NonNegativeNumber);
  c->add_option("--lora-r", s.lora.r, "LoRA rank")->check(CLI::PositiveNumber);
  c->add_option("--lora-alpha", s.lora.alpha, "LoRA alpha")->check(finite_number());
  c->add_option("--lora-dropout", s.lora.dropout, "LoRA dropout")->check(finite_number() & CLI::Range(0.0, 1.0));
  c->add_flag("--rslora", s.lora.rslora, "scale by alpha/sqrt(r)");
  c->add_option("--lora-targets", s.targets,
                "comma-separated suffixes (default q_proj,...,down_proj of the decoder) or a regex over module names");
  c->add_option("--save-every", t.save_every, "checkpoint every N steps (0: at the end)");
  c->add_option("--keep-checkpoints", t.keep_checkpoints, "checkpoint folders kept");
  c->add_option("--log-every", t.log_every, "metrics.jsonl / progress every N steps");
  auto* group = c->add_flag("--group-by-length", t.group_by_length, "length-grouped batches (HF's sampler)");
  c->add_flag("--sort-within-step", t.sort_within_step,
              "sort each step's batch-size x grad-accum examples by length before cutting micro-batches (less padding with --grad-accum > 1)")
      ->excludes(group);
  c->add_flag("--resume", t.resume, "continue the run in --output-dir from its latest checkpoint");
  c->add_option("--stop-after", t.stop_after, "checkpoint and stop at this step (resume later)");
  c->add_option("--seed", t.seed, "data order, init and dropout seed")->check(non_negative_integer());
  c->add_option("--peak-tflops", t.peak_tflops, "GPU peak for the mfu metric (H100/H200 bf16 dense: 989)")->check(finite_number());
  c->add_flag("--gradient-checkpointing", s.gradient_checkpointing,
              "recompute each decoder layer in the backward instead of keeping its activations");
  c->add_option("--lora-compute", s.lora_compute,
                "bf16 models: input (adapter GEMMs in bf16 from fp32 master weights, as autocast) | fp32 (PEFT without autocast)")
      ->check(CLI::IsMember({"input", "fp32"}));
}

void add_recipe_flag(CLI::App* c) {
  c->add_option("--recipe", "flat YAML file of `flag: value` defaults (recipes/stic-stage1.yaml; command-line flags win)");
}

std::vector<std::string> expand_recipe_args(const std::vector<std::string>& args) {
  // the verbs whose --recipe is a flag file (pipeline's --recipe is its own YAML recipe)
  if (args.size() < 2 || (args[1] != "train-dpo" && args[1] != "train-sft")) return args;
  std::string file;
  std::vector<std::string> rest;
  std::set<std::string> given;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--recipe" && i + 1 < args.size()) {
      file = args[++i];
      continue;
    }
    if (starts_with(a, "--recipe=")) {
      file = a.substr(9);
      continue;
    }
    if (starts_with(a, "--")) given.insert(a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2));
    rest.push_back(a);
  }
  if (file.empty()) return args;
  std::istringstream in(read_text_file(file));
  std::vector<std::string> out(rest.begin(), rest.begin() + 2);  // program, verb
  std::map<std::string, int> seen;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const size_t hash = line.find(" #");
    if (hash != std::string::npos) line.resize(hash);
    line = strip(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      fail(file, ": line ", n, ": expected `flag: value` (e.g. `lr: 1.0e-7`), got '", line, "'");
    const std::string key = strip(line.substr(0, colon));
    std::string value = strip(line.substr(colon + 1));
    if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'') && value.back() == value[0])
      value = value.substr(1, value.size() - 2);
    auto [it, fresh] = seen.emplace(key, n);
    if (!fresh) fail(file, ": line ", n, ": '", key, "' is set twice (first on line ", it->second, ")");
    if (given.count(key)) continue;  // the command line wins
    if (value == "true") out.push_back("--" + key);
    else if (value != "false") {
      out.push_back("--" + key);
      out.push_back(value);
    }
  }
  out.insert(out.end(), rest.begin() + 2, rest.end());
  return out;
}

}  // namespace stic::app
