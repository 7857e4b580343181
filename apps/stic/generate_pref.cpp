// stic generate-pref — self-constructed preference pairs (src/stic/method/prefgen.h);
// stic convert — pair files between JSONL and the JSON list layout, shards merged.
#include <cstdio>
#include <memory>

#include "flags.h"
#include "stic/io/pref_records.h"
#include "stic/method/pref_data.h"
#include "stic/method/prefgen.h"
#include "stic/util/error.h"
#include "stic/util/strings.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct PrefArgs {
  ModelFlags m;
  SamplingFlags s;
  PrefGenOptions o;
  std::string corruptions = "lowres,jitter", shard;
  bool quiet = false;
  PrefArgs() {  // the method's sampling defaults live in PrefGenOptions
    s.temperature = o.temperature;
    s.max_new_tokens = o.max_new_tokens;
  }
};

int run_generate_pref_verb(PrefArgs a) {
  PrefGenOptions& o = a.o;
  apply_generation_flags(a.m, a.s, o);
  o.corruptions.clear();
  for (const auto& c : split_nonempty(a.corruptions, ',')) o.corruptions.push_back(strip(c));
  if (!a.shard.empty()) o.shard = parse_shard(a.shard);
  o.progress = !a.quiet;
  const PrefGenResult r = run_generate_pref(o);
  std::fprintf(stderr,
               "stic generate-pref: %lld pairs written, %lld images skipped (%s.errors.jsonl), %lld resumed; %.1fs "
               "(%.2f images/s); %s has %lld pairs in all (summary: %s.summary.json)\n",
               static_cast<long long>(r.written), static_cast<long long>(r.skipped), o.out.c_str(),
               static_cast<long long>(r.resumed), r.seconds, r.seconds > 0 ? r.written / r.seconds : 0.0,
               o.out.c_str(), static_cast<long long>(r.summary.value("pairs", 0)), o.out.c_str());
  std::printf("%s\n", r.summary.dump(1).c_str());
  // nothing could be processed: every image of this run was skipped
  if (r.images > 0 && r.resumed == 0 && r.written == 0 && r.skipped > 0) fail(o.out, ": no image could be processed");
  return 0;
}

struct ConvertArgs {
  std::vector<std::string> inputs;
  std::string out;
};

}  // namespace

void register_generate_pref(CLI::App& app) {
  auto a = std::make_shared<PrefArgs>();
  auto* c = app.add_subcommand("generate-pref", "STIC stage-1 data: preference pairs from unlabeled images (resumable)");
  add_model_flags(c, a->m);
  c->add_option("--image-dir", a->o.image_dir, "folder of images (or the root of --image-list's paths)");
  c->add_option("--image-list", a->o.image_list, "file with one image path per line (ids = the lines)");
  c->add_option("--out", a->o.out, "pairs JSONL (appended; re-running resumes by image id)")->required();
  c->add_option("--prompts", a->o.prompts, "prompt file (default: the paper's sets, as recipes/prompts/stic.json)");
  c->add_option("--p-bad-prompt", a->o.p_bad_prompt, "probability of a hallucination prompt (else a corrupted image)")
      ->check(finite_number() & CLI::Range(0.0, 1.0));
  c->add_option("--corruptions", a->corruptions, "corrupted-image kinds, comma-separated: lowres,jitter");
  add_sampling_flags(c, a->s, "run seed: every random choice and sampling seed derives from (seed, image id)", true);
  c->add_option("--image-mode", a->o.image_mode, "pad|anyres|crop (default: the model's)")
      ->check(CLI::IsMember({"pad", "anyres", "crop"}));
  c->add_option("--batch-size", a->o.batch_size, "concurrent sequences (two per image)")->check(CLI::PositiveNumber);
  c->add_option("--shard", a->shard, "i/n: this process's part of the images (by a stable hash of the id)");
  c->add_option("--stats", a->o.stats, "write the engine's counters and timings as JSON (benchmarks)");
  c->add_option("--save-corrupted", a->o.save_corrupted, "also write the corrupted images as PNGs here");
  c->add_flag("--released-compat", a->o.released_compat,
              "the released code's data: no <image> in the stored prompts, corruption recorded but not applied");
  c->add_flag("--ignore-eos", a->o.ignore_eos, "always generate --max-new-tokens (benchmarks)");
  c->add_flag("--quiet", a->quiet, "no progress bar");
  verb_callbacks()[c] = [a] { return run_generate_pref_verb(*a); };

  auto v = std::make_shared<ConvertArgs>();
  auto* cv = app.add_subcommand("convert", "preference pairs: JSONL <-> JSON list (as stic-coco-preference-6k); merges shards");
  cv->add_option("inputs", v->inputs, "pair files (JSONL or JSON lists)")->required();
  cv->add_option("--out", v->out, "output: a JSON list if it ends in .json, else JSONL")->required();
  verb_callbacks()[cv] = [v] {
    const int64_t n = convert_pref_files(v->inputs, v->out);
    std::fprintf(stderr, "stic convert: %lld pairs -> %s\n", static_cast<long long>(n), v->out.c_str());
    return 0;
  };
}

}  // namespace stic::app
