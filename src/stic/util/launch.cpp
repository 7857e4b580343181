// stic/util/launch.cpp — see launch.h.
#include "stic/util/launch.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "stic/util/error.h"

namespace stic {
namespace {

// the ranks, for the signal handler: a SIGTERM / SIGINT / SIGHUP to launch goes to every rank
constexpr int kMaxRanks = 1024;
volatile sig_atomic_t g_nranks = 0;
pid_t g_ranks[kMaxRanks];
void forward_signal(int sig) {
  for (int i = 0; i < g_nranks; ++i)
    if (g_ranks[i] > 0) kill(g_ranks[i], sig);
}

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("launch: cannot open a socket to find a free port: ", std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    fail("launch: cannot find a free port: ", std::strerror(errno));
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
                                  strsignal(WTERMSIG(status)) + ")";
  return "stopped";
}

}  // namespace

int launch_processes(const LaunchOptions& o) {
  if (o.nproc < 1) fail("launch: --nproc must be >= 1");
  if (o.argv.empty()) fail("launch: give the command after --, e.g. stic launch --nproc 2 -- stic train-sft ...");
  const int port = o.master_port > 0 ? o.master_port : free_port();
  std::string exe = o.argv[0];
  if (exe == "stic") {  // this binary
    char buf[4096];
    const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) exe.assign(buf, static_cast<size_t>(n));
  }
  std::vector<pid_t> pids;
  for (int r = 0; r < o.nproc; ++r) {
    const pid_t pid = fork();
    if (pid < 0) fail("launch: fork failed: ", std::strerror(errno));
    if (pid == 0) {
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> args;
      args.push_back(const_cast<char*>(exe.c_str()));
      for (size_t i = 1; i < o.argv.size(); ++i) args.push_back(const_cast<char*>(o.argv[i].c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      std::fprintf(stderr, "stic launch: rank %d: cannot run %s: %s\n", r, args[0], std::strerror(errno));
      _exit(127);
    }
    pids.push_back(pid);
  }
  for (size_t i = 0; i < pids.size() && i < static_cast<size_t>(kMaxRanks); ++i) g_ranks[i] = pids[i];
  g_nranks = static_cast<int>(std::min<size_t>(pids.size(), kMaxRanks));
  struct sigaction sa {};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);
  std::fprintf(stderr, "stic launch: %d processes (ranks 0-%d), rendezvous 127.0.0.1:%d\n", o.nproc, o.nproc - 1, port);
  int code = 0, left = o.nproc;
  bool stopping = false;
  auto rank_of = [&](pid_t p) {
    for (size_t i = 0; i < pids.size(); ++i)
      if (pids[i] == p) return static_cast<int>(i);
    return -1;
  };
  auto stop_others = [&](int sig) {
    for (pid_t p : pids)
      if (p > 0) kill(p, sig);
  };
  auto deadline = std::chrono::steady_clock::now();
  while (left > 0) {
    int status = 0;
    const pid_t p = waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (p < 0 && errno == EINTR) continue;  // a forwarded signal
    if (p < 0) break;
    if (p == 0) {  // stopping: the others have until the deadline to exit on SIGTERM
      if (std::chrono::steady_clock::now() > deadline) stop_others(SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    const int r = rank_of(p);
    if (r < 0) continue;
    pids[static_cast<size_t>(r)] = -1;
    if (r < kMaxRanks) g_ranks[r] = -1;
    --left;
    const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (failed && !stopping) {
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      std::fprintf(stderr, "stic launch: rank %d %s; stopping the other %d rank(s)\n", r, describe_status(status).c_str(), left);
      stopping = true;
      stop_others(SIGTERM);
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    }
  }
  return code;
}

}  // namespace stic
