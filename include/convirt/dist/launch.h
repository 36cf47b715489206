#pragma once
// A single-machine launcher with torchrun's conventions: it starts nproc copies of a command with
// RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and MASTER_PORT set, and
// supervises them: when one exits with an error or is killed, the others are stopped, so a job
// never outlives a failed rank.

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::dist {

/// Options for launch().
///
/// Example:
///   auto opts = convirt::dist::LaunchOptions().nproc(2);
///   int rc = convirt::dist::launch(opts, {"convirt", "pretrain", "--config", "run.json"});
struct LaunchOptions {
  /// Processes on this machine. >= 1.
  TORCH_ARG(int64_t, nproc) = 1;
  /// Machines in the job (one launcher runs on each). >= 1.
  TORCH_ARG(int64_t, nnodes) = 1;
  /// This machine's index in [0, nnodes); global rank = node_rank * nproc + local rank.
  TORCH_ARG(int64_t, node_rank) = 0;
  /// Address of the machine that runs global rank 0.
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  /// Rendezvous port; 0 picks a free one (single machine only: every node must agree on it).
  TORCH_ARG(int64_t, master_port) = 0;
  /// After a rank fails, seconds the others get between SIGTERM and SIGKILL. >= 0.
  TORCH_ARG(double, kill_grace_seconds) = 5.0;
};

/// Runs `argv` (argv[0] looked up on PATH) as options.nproc() processes and waits for them.
/// Returns 0 when all exit with 0; otherwise the status of the first rank to fail (its exit code,
/// or 128 + signal number when a signal killed it) after stopping the others. A message naming the
/// failed rank goes to stderr. Throws (ValueError) for invalid options or an empty argv, and
/// (RuntimeError) when a process cannot be started.
int launch(const LaunchOptions& options, const std::vector<std::string>& argv);

/// launch(LaunchOptions().nproc(nproc), argv): `convirt launch --nproc N -- <command...>`.
///
/// Example:
///   return convirt::dist::launch_local(2, {"./train", "--steps", "100"});
int launch_local(int64_t nproc, const std::vector<std::string>& argv);

/// A TCP port on `host` that was free a moment ago (the OS's pick for port 0).
int find_free_port(const std::string& host = "127.0.0.1");

}  // namespace convirt::dist
