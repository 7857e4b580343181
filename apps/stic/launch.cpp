// stic launch — N local processes of a verb with torchrun's environment (src/stic/util/launch.h):
//   stic launch --nproc 2 -- stic train-dpo --model M --data P --output-dir OUT ...
// The training verbs then run data-parallel (src/stic/io/distributed.h; docs/training.md).
#include <memory>

#include "stic/util/launch.h"
#include "verbs.h"

namespace stic::app {

void register_launch(CLI::App& app) {
  auto o = std::make_shared<LaunchOptions>();
  auto* c = app.add_subcommand("launch", "run a command as N local processes (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set as torchrun does)");
  c->add_option("--nproc", o->nproc, "processes (ranks 0..N-1)")->required()->check(CLI::Range(1, 1024));
  c->add_option("--master-port", o->master_port, "rendezvous port on 127.0.0.1 (default: a free one)")
      ->check(CLI::Range(1, 65535));
  c->add_option("command", o->argv, "the command after --, e.g. -- stic train-sft ...")->required();
  verb_callbacks()[c] = [o] { return launch_processes(*o); };
}

}  // namespace stic::app
