// stic/io/distributed.cpp — see distributed.h.
#include "stic/io/distributed.h"

#if __has_include(<gloo/algorithm.h>)
#define STIC_WITH_GLOO 1
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <map>

#include "stic/util/error.h"

namespace stic {
namespace {

// an integer environment variable, or `fallback` when unset; a malformed value is an error naming it
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1000000) fail("environment: ", name, "='", v, "' is not a non-negative integer");
  return static_cast<int>(x);
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v && *v;
}

}  // namespace

DistEnv dist_env() {
  DistEnv e;
  if (env_set("WORLD_SIZE") || env_set("RANK")) {  // torchrun, stic launch
    e.source = "torchrun";
    e.rank = env_int("RANK", 0);
    e.world = env_int("WORLD_SIZE", 1);
    e.local_rank = env_int("LOCAL_RANK", e.rank);
  } else if (env_set("SLURM_STEP_ID") && env_set("SLURM_PROCID")) {  // inside an srun step (a batch
    // script's own shell has SLURM_PROCID and SLURM_NTASKS too, but is one process)
    e.source = "slurm";
    e.rank = env_int("SLURM_PROCID", 0);
    e.world = env_int(env_set("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS", 1);
    e.local_rank = env_int("SLURM_LOCALID", 0);
  } else if (env_set("OMPI_COMM_WORLD_RANK") && env_set("OMPI_COMM_WORLD_SIZE")) {
    e.source = "mpirun";
    e.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    e.world = env_int("OMPI_COMM_WORLD_SIZE", 1);
    e.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  }
  if (e.world < 1) fail("environment: a world size of ", e.world, " (", e.source, ")");
  if (e.rank >= e.world) fail("environment: rank ", e.rank, " is not below the world size ", e.world, " (", e.source, ")");
  if (env_set("MASTER_ADDR")) e.master_addr = std::getenv("MASTER_ADDR");
  const int port = env_int("MASTER_PORT", e.master_port);
  if (port < 1 || port > 65535) fail("environment: MASTER_PORT=", port, " is not a TCP port");
  e.master_port = port;
  return e;
}

#ifdef STIC_WITH_GLOO
// The process group. libtorch 1.13's ProcessGroupGloo is a c10d::ProcessGroup, 2.x's a
// c10d::Backend; both take (store, rank, size, options) and answer allreduce / barrier with a
// c10d::Work, which is all stic uses.
class ProcessGroupImpl {
 public:
  explicit ProcessGroupImpl(const DistEnv& e) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(e.master_port);
    // torchrun's agent already serves a store on MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE): every
    // rank is its client, under the prefix torch.distributed uses for this restart attempt
    const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
    const bool agent_store = agent && std::string(agent) == "True";
    so.isServer = e.rank == 0 && !agent_store;
    so.numWorkers = static_cast<std::size_t>(e.world);
    so.waitWorkers = true;
    so.timeout = std::chrono::milliseconds(static_cast<int64_t>(env_int("STIC_DIST_TIMEOUT_S", 600)) * 1000);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(e.master_addr, so);
      if (agent_store)
        store_ = c10::make_intrusive<c10d::PrefixStore>(
            "/worker/attempt_" + std::to_string(env_int("TORCHELASTIC_RESTART_COUNT", 0)), store_);
    } catch (const std::exception& ex) {
      fail("distributed: rank ", e.rank, " of ", e.world, ": no rendezvous at ", e.master_addr, ":", e.master_port,
           " (", ex.what(), ")");
    }
    auto opts = c10d::ProcessGroupGloo::Options::create(so.timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (e.master_addr == "127.0.0.1" || e.master_addr == "localhost")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    pg_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, e.rank, e.world, opts);
  }
  void allreduce(std::vector<torch::Tensor>& t) { pg_->allreduce(t)->wait(); }
  void barrier() { pg_->barrier()->wait(); }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
};

#else
class ProcessGroupImpl {  // built without Gloo's headers (scripts/setup.sh installs libgloo-dev)
 public:
  explicit ProcessGroupImpl(const DistEnv& e) {
    fail("distributed: rank ", e.rank, " of ", e.world, ": this stic was built without Gloo's headers (libgloo-dev), "
         "so it runs as one process only");
  }
  void allreduce(std::vector<torch::Tensor>&) {}
  void barrier() {}
};
#endif

Distributed::Distributed() : env_(dist_env()) {
  if (env_.world > 1) pg_ = std::make_unique<ProcessGroupImpl>(env_);
}
Distributed::~Distributed() = default;

Distributed& Distributed::get() {
  static Distributed d;
  return d;
}

void Distributed::allreduce_sum(std::vector<torch::Tensor>& tensors) {
  if (!active() || tensors.empty()) return;
  torch::NoGradGuard ng;
  // one flat buffer per (dtype, device), cut into buckets
  std::map<std::pair<int, std::string>, std::vector<size_t>> groups;
  for (size_t i = 0; i < tensors.size(); ++i)
    groups[{static_cast<int>(tensors[i].scalar_type()), tensors[i].device().str()}].push_back(i);
  constexpr int64_t kBucketBytes = 64LL << 20;
  for (auto& [key, idx] : groups) {
    size_t b = 0;
    while (b < idx.size()) {
      size_t e = b;
      int64_t bytes = 0;
      std::vector<torch::Tensor> flat;
      while (e < idx.size() && (e == b || bytes + tensors[idx[e]].nbytes() <= static_cast<size_t>(kBucketBytes))) {
        bytes += static_cast<int64_t>(tensors[idx[e]].nbytes());
        flat.push_back(tensors[idx[e]].reshape({-1}));
        ++e;
      }
      std::vector<torch::Tensor> buf = {torch::cat(flat)};
      pg_->allreduce(buf);
      int64_t off = 0;
      for (size_t k = b; k < e; ++k) {
        torch::Tensor& t = tensors[idx[k]];
        const int64_t n = t.numel();
        t.copy_(buf[0].narrow(0, off, n).view(t.sizes()));
        off += n;
      }
      b = e;
    }
  }
}

void Distributed::barrier() {
  if (active()) pg_->barrier();
}

}  // namespace stic
