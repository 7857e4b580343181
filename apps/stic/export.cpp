// stic export — a PEFT LoRA adapter merged into a full checkpoint folder that HF transformers and
// serving engines load (src/stic/model/lora.h, export_merged): the model's own layout and key
// names, config / tokenizer / preprocessor files, HF's sharded safetensors with an index above
// --max-shard-size; or, with --layout, the other checkpoint layout (llava-hf <-> original LLaVA,
// src/stic/model/convert.h). The merge runs in fp32; --dtype is what is stored.
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "stic/model/convert.h"
#include "stic/model/loaded_model.h"
#include "stic/model/lora.h"
#include "stic/util/error.h"
#include "stic/util/fs.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct ExportArgs {
  std::string model, adapter, out, dtype = "bf16", device = "cpu", vision_tower, max_shard = "5GB", layout;
};

// "5GB", "500MB", "2GiB", "123" (bytes); HF's units (GB = 10^9, GiB = 2^30)
int64_t parse_size(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  if (i == 0) fail("--max-shard-size '", s, "': expected a size such as 5GB, 500MB or 2GiB");
  const double x = std::stod(s.substr(0, i));
  const std::string u = s.substr(i);
  const double m = u.empty() || u == "B" ? 1 : u == "KB" ? 1e3 : u == "MB" ? 1e6 : u == "GB" ? 1e9
                   : u == "KiB" ? 1024.0 : u == "MiB" ? 1048576.0 : u == "GiB" ? 1073741824.0 : -1;
  if (m < 0 || x * m < 1) fail("--max-shard-size '", s, "': unknown unit '", u, "' (B, KB, MB, GB, KiB, MiB, GiB)");
  return static_cast<int64_t>(x * m);
}

int run_export(const ExportArgs& a) {
  namespace fs = std::filesystem;
  if (fs::weakly_canonical(a.out) == fs::weakly_canonical(a.model))
    fail("export: --out ", a.out, " is the model folder; give a new folder");
  ExportOptions eo;
  eo.max_shard_bytes = parse_size(a.max_shard);
  eo.dtype = a.dtype == "bf16" ? torch::kBFloat16 : a.dtype == "fp16" ? torch::kFloat16 : torch::kFloat32;
  if (!a.layout.empty()) eo.layout = parse_layout(a.layout);  // before the (long) load
  // fp32 for the merge: W + scale * B A in full precision, then one rounding to --dtype
  auto m = load_for_inference(a.model, load_options(a.device, "fp32", a.vision_tower), a.adapter, "export");
  export_merged(m->model(), a.out, eo);
  const char* from = layout_name(m->config().layout);
  const char* to = eo.layout ? layout_name(*eo.layout) : from;
  std::fprintf(stderr, "stic export: %s%s%s -> %s (%s, %s%s%s)\n", a.model.c_str(), a.adapter.empty() ? "" : " + ",
               a.adapter.c_str(), a.out.c_str(), a.dtype.c_str(), from, std::string(from) == to ? "" : " -> ",
               std::string(from) == to ? "" : to);
  std::printf("%s\n", a.out.c_str());
  return 0;
}

}  // namespace

void register_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* c = app.add_subcommand("export", "merge a LoRA adapter into a full checkpoint folder (for HF / serving), "
                                         "optionally converted to the other LLaVA checkpoint layout");
  c->add_option("--model", a->model, "model folder (llava-hf or original LLaVA layout)")->required();
  c->add_option("--adapter", a->adapter, "PEFT LoRA adapter to merge (none: the model re-saved in --dtype)");
  c->add_option("--out", a->out, "new folder: weights, config, tokenizer and preprocessor files")->required();
  c->add_option("--dtype", a->dtype, "stored dtype: bf16 (default) | fp16 | fp32")->check(CLI::IsMember({"bf16", "fp16", "fp32"}));
  c->add_option("--max-shard-size", a->max_shard, "largest shard (HF's sharded layout above it): 5GB, 500MB, 2GiB, ...");
  c->add_option("--device", a->device, "where to merge: cpu|cuda|cuda:N (fp32: 4 bytes per parameter)");
  c->add_option("--vision-tower", a->vision_tower, "CLIP folder for original-layout checkpoints");
  c->add_option("--layout", a->layout,
                "llava-hf | original: the layout to write (default: the model's own). llava-hf: "
                "Llava(Next)ForConditionalGeneration with preprocessor/processor configs; an <image> token is added "
                "to the tokenizer (vocabulary padded to a multiple of 64) when it has none. original: "
                "LlavaLlama/MistralForCausalLM with mm_* fields, the vision tower in the checkpoint and in "
                "OUT/vision_tower. A setting the target layout cannot express is an error (docs/models.md)");
  verb_callbacks()[c] = [a] { return run_export(*a); };
}

}  // namespace stic::app
