// stic/util/launch.h — `stic launch`: N local processes of one command with the environment
// torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), so a
// verb runs data-parallel on one machine (io/distributed.h reads that environment). A rank that
// fails stops the others: the first non-zero exit (or signal) is reported with its rank, the
// rest get SIGTERM (SIGKILL after 10 s), and launch exits with that rank's code. A SIGTERM, SIGINT or
// SIGHUP sent to launch is passed on to every rank.
#pragma once

#include <string>
#include <vector>

namespace stic {

struct LaunchOptions {
  int nproc = 1;
  int master_port = 0;  // 0: a free port on 127.0.0.1
  std::vector<std::string> argv;  // the command; "stic" as its first word runs this binary
};

// Returns the exit code of the job (0 when every rank succeeded).
int launch_processes(const LaunchOptions& o);

}  // namespace stic
