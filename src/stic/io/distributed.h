// stic/io/distributed.h — several processes, one job: libtorch's own c10d process groups (Gloo
// on CPUs and for CPU or CUDA tensors; no home-made communication layer).
//
// A process learns its place from the environment the usual launchers set:
//   torchrun / `stic launch`: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
//   SLURM (srun):             SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID inside a step (+ MASTER_ADDR/PORT)
//   Open MPI (mpirun):        OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK
// Without any of them the world is one process and nothing here communicates. The rendezvous is
// c10d's TCPStore on MASTER_ADDR:MASTER_PORT (rank 0 serves it); GLOO_SOCKET_IFNAME picks the
// network interface across nodes. The differences between libtorch 1.13 (ProcessGroup) and 2.x
// (Backend) stay inside distributed.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace stic {

struct DistEnv {
  int rank = 0, world = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // which launcher's variables were read
};

// The environment's rank and world size (checked: 0 <= rank < world); throws stic::Error naming
// the variable on a malformed value.
DistEnv dist_env();

class ProcessGroupImpl;

// The job's process group, created on first use (get()) from dist_env(). With world 1 every call
// is a no-op.
class Distributed {
 public:
  static Distributed& get();
  int rank() const { return env_.rank; }
  int world() const { return env_.world; }
  bool active() const { return env_.world > 1; }
  const DistEnv& env() const { return env_; }
  // Sums each tensor across the processes, in place (one collective over their flat concatenation
  // per dtype and device, in buckets of at most 64 MiB).
  void allreduce_sum(std::vector<torch::Tensor>& tensors);
  // Every process waits here until all have arrived.
  void barrier();
  ~Distributed();

 private:
  Distributed();
  DistEnv env_;
  std::unique_ptr<ProcessGroupImpl> pg_;
};

}  // namespace stic
