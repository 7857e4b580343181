// stic world — the built-in synthetic world (scenes, text, eval sets, tokenizer, a random-init
// tiny LLaVA in the llava-hf layout); stic world-score — its ground-truth metrics.
#include <cstdio>
#include <memory>

#include "stic/method/world_model.h"
#include "flags.h"
#include "stic/world/metrics.h"
#include "verbs.h"

namespace stic::app {
namespace {

struct WorldArgs {
  std::string out, preset = "world-tiny";
  uint64_t seed = 0;
  int threads = 0;
  bool quiet = false;
};

int run_world(const WorldArgs& a) {
  world::WorldOptions o;
  o.out = a.out;
  o.preset = a.preset;
  o.seed = a.seed;
  o.progress = !a.quiet;
  o.threads = a.threads;
  const WorldModelSummary r = build_world_and_model(o);
  const auto& s = r.world;
  std::fprintf(stderr, "world: %s (%s, seed %llu): %d images (%d rendered, %d already there)%s%s in %.1fs\n",
               s.out.c_str(), a.preset.c_str(), static_cast<unsigned long long>(a.seed), s.images_total,
               s.images_rendered, s.images_skipped, s.tokenizer_trained ? ", tokenizer trained" : "",
               r.wrote_weights ? ", model initialised" : "", s.seconds);
  std::printf("%s\n", s.model_dir.c_str());
  return 0;
}

struct ScoreArgs {
  std::string world, predictions, out;
};

int run_world_score(const ScoreArgs& a) {
  world::ScoreOptions o;
  o.out_dir = a.out;
  const auto w = world::score_world(a.world, a.predictions, o);
  std::printf("%s", w.markdown().c_str());
  return 0;
}

}  // namespace

void register_world(CLI::App& app) {
  auto a = std::make_shared<WorldArgs>();
  auto* c = app.add_subcommand("world", "build the built-in synthetic world (images, text, eval sets, tiny model)");
  c->add_option("--out", a->out, "output folder (re-running completes a half-written world)")->required();
  c->add_option("--preset", a->preset, "world-smoke | world-tiny | world-small (default world-tiny)");
  c->add_option("--seed", a->seed, "world seed (same seed, same bytes)")->check(non_negative_integer());
  c->add_option("--threads", a->threads, "rendering threads (default: one per core; the bytes do not depend on it)")
      ->check(CLI::NonNegativeNumber);
  c->add_flag("--quiet", a->quiet, "no progress bar");
  verb_callbacks()[c] = [a] { return run_world(*a); };

  auto s = std::make_shared<ScoreArgs>();
  auto* sc = app.add_subcommand("world-score", "score predictions on the world's eval requests against ground truth");
  sc->add_option("--world", s->world, "world folder (from stic world)")->required();
  sc->add_option("--predictions", s->predictions, "JSONL {\"id\", \"text\"} (stic generate's output)")->required();
  sc->add_option("--out", s->out, "folder for per_item.jsonl, summary.json, summary.md");
  verb_callbacks()[sc] = [s] { return run_world_score(*s); };
}

}  // namespace stic::app
