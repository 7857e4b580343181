// stic describe — STIC stage 2's image descriptions (src/stic/method/describe.h);
// stic infuse — the descriptions infused into an instruction set (src/stic/method/infuse.h).
#include <cstdio>
#include <memory>

#include "flags.h"
#include "stic/method/describe.h"
#include "stic/method/infuse.h"
#include "stic/util/error.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct DescribeArgs {
  ModelFlags m;
  SamplingFlags s;
  DescribeOptions o;
  std::string shard;
  bool quiet = false;
  DescribeArgs() {  // the method's sampling defaults live in DescribeOptions
    s.temperature = o.temperature;
    s.max_new_tokens = o.max_new_tokens;
  }
};

int run_describe_verb(DescribeArgs a) {
  DescribeOptions& o = a.o;
  apply_generation_flags(a.m, a.s, o);
  if (!a.shard.empty()) o.shard = parse_shard(a.shard);
  o.progress = !a.quiet;
  const DescribeResult r = run_describe(o);
  std::fprintf(stderr,
               "stic describe: %lld images described, %lld unreadable, %lld records resumed, %lld skipped; %.1fs "
               "(%.2f images/s); summary: %s.summary.json\n",
               static_cast<long long>(r.described), static_cast<long long>(r.failed), static_cast<long long>(r.resumed),
               static_cast<long long>(r.skipped), r.seconds, r.seconds > 0 ? r.described / r.seconds : 0.0,
               o.out.c_str());
  std::printf("%s\n", r.summary.dump(1).c_str());
  if (r.images > 0 && r.resumed == 0 && r.described == 0) fail(o.out, ": no image could be described");
  return 0;
}

}  // namespace

void register_describe(CLI::App& app) {
  auto a = std::make_shared<DescribeArgs>();
  auto* c = app.add_subcommand("describe", "STIC stage 2: describe the images of an instruction set (resumable)");
  add_model_flags(c, a->m);
  c->add_option("--data", a->o.data, "LLaVA JSON list / JSONL of {id, image, ...}, or a file of image paths")->required();
  c->add_option("--image-dir", a->o.image_dir, "folder the records' image paths are relative to");
  c->add_option("--out", a->o.out, "descriptions JSONL (appended; re-running resumes by record id)")->required();
  c->add_option("--prompts", a->o.prompts, "prompt file whose \"normal\" set is drawn from (default: the paper's)");
  c->add_option("--prompt", a->o.prompt, "one prompt for every image instead of a drawn one");
  add_sampling_flags(c, a->s, "run seed: the prompt drawn and the sampling seed derive from (seed, image)", true);
  c->add_option("--image-mode", a->o.image_mode, "pad|anyres|crop (default: the model's)")
      ->check(CLI::IsMember({"pad", "anyres", "crop"}));
  c->add_option("--batch-size", a->o.batch_size, "concurrent sequences")->check(CLI::PositiveNumber);
  c->add_option("--shard", a->shard, "i/n: this process's part of the images (by a stable hash of the image)");
  c->add_option("--stats", a->o.stats, "write the engine's counters and timings as JSON (benchmarks)");
  c->add_flag("--ignore-eos", a->o.ignore_eos, "always generate --max-new-tokens (benchmarks)");
  c->add_flag("--quiet", a->quiet, "no progress bar");
  verb_callbacks()[c] = [a] { return run_describe_verb(*a); };

  auto io = std::make_shared<InfuseOptions>();
  auto* ci = app.add_subcommand("infuse", "STIC stage 2: infuse descriptions into the first human turn of each record");
  ci->add_option("--data", io->data, "LLaVA JSON list or JSONL")->required();
  ci->add_option("--descriptions", io->descriptions, "stic describe's JSONL (matched by record id)")->required();
  ci->add_option("--out", io->out, "output, in the layout of --data (written atomically)")->required();
  ci->add_option("--summary", io->summary, "summary JSON (default: OUT.summary.json)");
  verb_callbacks()[ci] = [io] {
    const InfuseResult r = run_infuse(*io);
    std::fprintf(stderr,
                 "stic infuse: %lld records, %lld infused, %lld without a description (%lld failed in describe), %lld "
                 "bad, %lld of another image; %lld descriptions named no record, %lld description lines bad -> %s\n",
                 static_cast<long long>(r.records), static_cast<long long>(r.infused),
                 static_cast<long long>(r.without_description), static_cast<long long>(r.describe_failed),
                 static_cast<long long>(r.bad_records), static_cast<long long>(r.image_mismatch),
                 static_cast<long long>(r.unused_descriptions), static_cast<long long>(r.bad_description_lines),
                 io->out.c_str());
    if (r.records > 0 && r.infused == 0) fail(io->out, ": no record could be infused (see the summary)");
    return 0;
  };
}

}  // namespace stic::app
