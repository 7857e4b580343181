// stic — one binary, one verb per step of the STIC method.
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <malloc.h>
#include <thread>

#include "stic/util/error.h"
#include "flags.h"
#include "verbs.h"

namespace stic::app {
std::map<CLI::App*, std::function<int()>>& verb_callbacks() {
  static std::map<CLI::App*, std::function<int()>> m;
  return m;
}
int run_selected(CLI::App& app) {
  for (auto* sub : app.get_subcommands()) {
    auto it = verb_callbacks().find(sub);
    if (it != verb_callbacks().end()) return it->second();
  }
  fail("no verb selected");
}
}  // namespace stic::app

int main(int argc, char** argv) {
  // glibc returns freed memory to the OS eagerly; libtorch's per-step tensors then page-fault
  // back in every step (CPU training measured 3-5x slower). Keep freed memory in the heap.
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 512 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  CLI::App app{"stic — self-training on image comprehension for LLaVA models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "stic 0.1.0");
  stic::app::register_chat(app);
  stic::app::register_generate(app);
  stic::app::register_generate_pref(app);
  stic::app::register_world(app);
  stic::app::register_describe(app);
  stic::app::register_export(app);
  stic::app::register_train_sft(app);
  stic::app::register_train_dpo(app);
  stic::app::register_train_vision(app);
  stic::app::register_eval(app);
  stic::app::register_pipeline(app);
  stic::app::register_launch(app);
  try {
    std::vector<std::string> args(argv, argv + argc);
    try {
      args = stic::app::expand_recipe_args(args);  // --recipe FILE of train-sft / train-dpo
    } catch (const stic::Error& e) {
      std::fprintf(stderr, "stic: %s\n", e.what());
      return 2;
    }
    std::reverse(args.begin(), args.end());
    args.pop_back();  // CLI11 takes the arguments without the program name, last first
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors: exit code 2
  }
  try {
    // libtorch defaults to 1 intra-op thread under some launchers; use the cores we have.
    if (const char* t = std::getenv("STIC_THREADS")) torch::set_num_threads(std::atoi(t));
    else torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    return stic::app::run_selected(app);
  } catch (const stic::Error& e) {
    std::fprintf(stderr, "stic: %s\n", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "stic: torch error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stic: %s\n", e.what());
    return 1;
  }
}
