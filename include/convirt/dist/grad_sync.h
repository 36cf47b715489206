#pragma once
// Data-parallel gradient exchange: parameters' gradients are packed into buckets of about
// bucket_cap_mb and all-reduced, each bucket as soon as backward has produced all of its gradients
// (overlapping communication with the rest of backward), in the same order on every rank.

#include <convirt/dist/process_group.h>

#include <torch/arg.h>
#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <vector>

namespace convirt::dist {

/// Options for GradientSynchronizer.
///
/// Example:
///   auto opts = convirt::dist::GradientSynchronizerOptions().bucket_cap_mb(4).overlap(false);
struct GradientSynchronizerOptions {
  /// Target bucket size in MiB (a parameter larger than this gets a bucket of its own). > 0.
  TORCH_ARG(double, bucket_cap_mb) = 25.0;
  /// Launch each bucket's all-reduce from autograd hooks while backward is still running. Off:
  /// synchronize() packs and reduces everything after backward.
  TORCH_ARG(bool, overlap) = true;
  /// Divide the summed gradients by world_size. Off (the default) is right for
  /// infonce_loss_distributed, whose per-rank gradients add up to the global gradient; on is right
  /// for a loss that is each rank's mean over an equal share of the batch (DDP's convention).
  TORCH_ARG(bool, average) = false;
};

namespace detail {
struct SyncState;
}

/// Keeps the gradients of `parameters` identical on every rank after each backward.
///
/// Contract: construct it on every rank with the same parameters in the same order (shapes and
/// dtypes must agree); after each loss.backward(), call synchronize() on every rank before the
/// optimiser step. Parameters that do not require grad are ignored; one that got no gradient in a
/// step contributes zeros. Gradient accumulation over several backward passes before one
/// synchronize() is supported. Dense gradients only.
///
/// Example:
///   convirt::dist::GradientSynchronizer sync(model->parameters(), ctx);
///   loss.backward();
///   sync.synchronize();
///   optimizer.step();
class GradientSynchronizer {
 public:
  GradientSynchronizer(std::vector<torch::Tensor> parameters, DistributedContext ctx,
                       GradientSynchronizerOptions options = {});
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  /// Finishes the exchange of this step's gradients: waits for the buckets already launched,
  /// reduces the rest, and writes the results into each parameter's .grad().
  void synchronize();

  int64_t num_buckets() const;
  /// Indices (into the parameters that require grad, in the order given) of each bucket's members.
  std::vector<std::vector<int64_t>> bucket_members() const;
  const GradientSynchronizerOptions& options() const;

 private:
  std::shared_ptr<detail::SyncState> state_;
};

/// Replaces every parameter and buffer of `module` with rank `root`'s, so that all ranks start (or
/// resume) from identical weights. The module must have the same structure on every rank.
///
/// Example:
///   convirt::dist::broadcast_module_state(*model, ctx);
void broadcast_module_state(torch::nn::Module& module, const DistributedContext& ctx,
                            int64_t root = 0);

}  // namespace convirt::dist
