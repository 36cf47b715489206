#pragma once
// A distributed job as convirt sees it: this process's rank, the world size and a c10d process
// group (Gloo) reached through the torchrun environment. The c10d types stay behind this header
// (their API differs between LibTorch 1.13 and 2.x); what callers get is a cheap, copyable handle.

#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace convirt::dist {

/// How a collective combines the ranks' tensors.
enum class ReduceOp { kSum, kMax, kMin };

/// The communication engine of the process group.
enum class CommBackend {
  kAuto,  ///< Gloo: it handles CPU tensors and (staged through the host) CUDA tensors
  kGloo,  ///< c10d::ProcessGroupGloo
};

/// Whether this build can run multi-process jobs (it was compiled with c10d's Gloo backend).
/// Without it, only world_size 1 contexts can be created.
bool gloo_available();

/// "auto" or "gloo"; anything else is a ValueError naming the accepted values.
CommBackend parse_comm_backend(const std::string& name);
std::string to_string(CommBackend backend);

/// How to join a job. Usually read from the environment that `torchrun`, `convirt launch` or a
/// Slurm wrapper sets (see DistributedOptions::from_environment).
///
/// Example:
///   auto opts = convirt::dist::DistributedOptions().rank(1).world_size(2).master_port(29501);
///   convirt::dist::DistributedContext ctx(opts);
struct DistributedOptions {
  /// Options from RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun's names), with
  /// CONVIRT_DIST_TIMEOUT (seconds), CONVIRT_DIST_BACKEND and GLOO_SOCKET_IFNAME when set. Missing
  /// RANK/WORLD_SIZE mean a single process. Malformed values are a ValueError naming the variable.
  static DistributedOptions from_environment();
  /// This process's global rank in [0, world_size).
  TORCH_ARG(int64_t, rank) = 0;
  /// Number of processes in the job. 1 means no communication at all (no store, no sockets).
  TORCH_ARG(int64_t, world_size) = 1;
  /// Rank on this machine (picks the GPU); informational for CPU jobs.
  TORCH_ARG(int64_t, local_rank) = 0;
  /// Host of rank 0's TCPStore, reachable from every rank.
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  /// Port of rank 0's TCPStore, in [1, 65535].
  TORCH_ARG(int64_t, master_port) = 29500;
  /// Seconds a rendezvous or a collective may wait for the other ranks before it fails with an
  /// error naming the operation; this is what turns a dead or hung rank into an error instead of
  /// a hang. Must be > 0.
  TORCH_ARG(double, timeout_seconds) = 600.0;
  TORCH_ARG(CommBackend, backend) = CommBackend::kAuto;
  /// Network interface Gloo binds to (GLOO_SOCKET_IFNAME); empty: the one master_addr routes
  /// through on a single machine, the host name's address otherwise.
  TORCH_ARG(std::string, gloo_interface) = "";
  /// Threads Gloo runs collectives on.
  TORCH_ARG(int64_t, gloo_threads) = 2;
};

namespace detail {
struct ContextImpl;
struct WorkImpl;
}  // namespace detail

/// A collective launched without waiting (see DistributedContext::all_reduce_async).
class PendingWork {
 public:
  PendingWork() = default;
  /// Blocks until done; throws the collective's error (timeout, dead peer) as a c10::Error.
  void wait();
  bool defined() const { return impl_ != nullptr; }

 private:
  friend struct detail::ContextImpl;
  friend class DistributedContext;
  std::shared_ptr<detail::WorkImpl> impl_;
};

/// This process's place in a distributed job, and the collectives over it. Copies share one
/// process group. With world_size 1 every collective is the identity and nothing touches the
/// network, so code written for a job runs unchanged in one process.
///
/// Every rank must call the same collectives in the same order. A collective that cannot finish
/// within options().timeout_seconds (a rank died, hung or called something else) throws a
/// c10::Error saying which operation, which rank and the timeout.
///
/// Example:
///   auto ctx = convirt::dist::DistributedContext::from_environment();
///   auto t = torch::ones({3});
///   ctx.all_reduce_(t);  // every rank now holds world_size * ones
///   if (ctx.is_main()) std::cout << t << "\n";
class DistributedContext {
 public:
  /// A single-process context (rank 0 of 1).
  DistributedContext();
  /// Joins the job described by `options` (rendezvous through rank 0's TCPStore); blocks until all
  /// world_size ranks arrived or the timeout passed.
  explicit DistributedContext(const DistributedOptions& options);
  /// DistributedContext(DistributedOptions::from_environment()).
  static DistributedContext from_environment();

  int64_t rank() const;
  int64_t world_size() const;
  int64_t local_rank() const;
  /// Rank 0: the one that logs and writes checkpoints.
  bool is_main() const { return rank() == 0; }
  /// More than one process.
  bool is_distributed() const { return world_size() > 1; }
  const DistributedOptions& options() const;

  /// In-place reduction of each tensor across ranks (same shapes and dtypes on every rank).
  void all_reduce_(torch::Tensor& tensor, ReduceOp op = ReduceOp::kSum) const;
  void all_reduce_(std::vector<torch::Tensor>& tensors, ReduceOp op = ReduceOp::kSum) const;
  /// As all_reduce_, returning at once; the tensors hold the result after wait().
  PendingWork all_reduce_async(std::vector<torch::Tensor>& tensors,
                               ReduceOp op = ReduceOp::kSum) const;
  /// Every rank's `tensor`, in rank order. Shapes and dtypes must agree across ranks.
  std::vector<torch::Tensor> all_gather(const torch::Tensor& tensor) const;
  /// Every rank's `tensor` concatenated along dim 0, in rank order; the ranks may hold different
  /// numbers of rows (trailing dims and dtype must agree). No gradient: see gather_with_grad.
  torch::Tensor all_gather_rows(const torch::Tensor& tensor) const;
  /// As above, with every rank's row count already known (from all_gather_sizes), saving that
  /// collective.
  torch::Tensor all_gather_rows(const torch::Tensor& tensor,
                                const std::vector<int64_t>& sizes) const;
  /// Number of rows (dim 0) each rank holds, in rank order (a collective).
  std::vector<int64_t> all_gather_sizes(int64_t rows) const;
  /// Replaces `tensor` on every rank with root's (in place).
  void broadcast_(torch::Tensor& tensor, int64_t root = 0) const;
  /// Returns when every rank reached it, or throws after the timeout.
  void barrier() const;

 private:
  std::shared_ptr<detail::ContextImpl> impl_;
};

/// Runs `fn` on rank 0 only (logging, writing a checkpoint), then lets every rank continue
/// together: if `fn` throws on rank 0, rank 0 rethrows and every other rank throws an error naming
/// `what`, instead of the others waiting forever at the next collective.
///
/// Example:
///   convirt::dist::run_on_main(ctx, [&] { save_checkpoint(path); }, "writing the checkpoint");
void run_on_main(const DistributedContext& ctx, const std::function<void()>& fn,
                 const std::string& what = "rank-0 work");

/// Resume guard: a checkpoint written by a job of `saved_world_size` ranks continues exactly only
/// with as many ranks (the shards of each global batch and the per-rank random streams depend on
/// it). Throws a ValueError naming both sizes otherwise.
///
/// Example:
///   convirt::dist::check_resume_world_size(state.world_size, ctx);
void check_resume_world_size(int64_t saved_world_size, const DistributedContext& ctx);

}  // namespace convirt::dist
