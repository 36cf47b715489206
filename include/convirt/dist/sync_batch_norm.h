#pragma once
// Synchronised BatchNorm: in training mode every rank normalises with the statistics of the whole
// global batch (all ranks' rows), so W ranks with b rows each compute what one process computes on
// W*b rows: the same outputs, the same running statistics and the same gradients. Without it each
// rank normalises with its own b rows, and data-parallel training is only close to one process.

#include <convirt/dist/process_group.h>
#include <convirt/models/batch_norm.h>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace convirt::dist {

/// Training-mode batch normalisation of `input` [n, C, ...] over every rank's rows (n may differ
/// between ranks and be 0 on some; the global count must be > 1). Per channel, each rank computes
/// the count, mean and sum of squared deviations of its rows; the ranks' values are all-gathered in
/// float64 and combined in rank order (Chan's pairwise formula), so the result is the same on
/// every rank and does not depend on the order messages arrive in. The output uses the global mean
/// and biased variance; `running_mean` and `running_var` (may be undefined: not tracked) are
/// updated in place with `momentum` and the unbiased variance of the global count, as BatchNorm
/// does. Backward all-gathers each rank's per-channel sums of grad_output and grad_output * x_hat
/// and combines them in rank order, so the input gradient is the one-process gradient of the sum
/// of the ranks' losses; the weight and bias gradients are this rank's share (sum them over ranks,
/// as GradientSynchronizer does). Every rank must call it (and its backward) in the same order.
/// With world_size 1 the collectives are the identity. fp16/bf16 inputs are normalised in fp32.
///
/// Example:
///   auto y = convirt::dist::sync_batch_norm(x, bn->weight, bn->bias, bn->running_mean,
///                                           bn->running_var, 0.1, 1e-5, ctx);
torch::Tensor sync_batch_norm(const torch::Tensor& input, const torch::Tensor& weight,
                              const torch::Tensor& bias, torch::Tensor running_mean,
                              torch::Tensor running_var, double momentum, double eps,
                              const DistributedContext& ctx);

/// The statistics a convirt::models::BatchNorm2d gets from convert_sync_batch_norm: its
/// training-mode forward becomes sync_batch_norm over `ctx`, with the layer's momentum (or its
/// cumulative average when momentum is unset), eps, affine and track_running_stats options.
class SyncBatchNormStatistics : public models::BatchNormStatistics {
 public:
  explicit SyncBatchNormStatistics(DistributedContext ctx) : ctx_(std::move(ctx)) {}
  torch::Tensor forward(torch::nn::BatchNorm2dImpl& layer, const torch::Tensor& input) override;
  std::string describe() const override;
  const DistributedContext& context() const { return ctx_; }

 private:
  DistributedContext ctx_;
};

/// A BatchNorm2d synchronised over `ctx` from the start (parameters and buffers named as
/// torch::nn::BatchNorm2d's). Evaluation mode uses the running statistics, without communication.
///
/// Example:
///   convirt::dist::SyncBatchNorm bn(torch::nn::BatchNorm2dOptions(64), ctx);
class SyncBatchNormImpl : public models::BatchNorm2dImpl {
 public:
  SyncBatchNormImpl(const torch::nn::BatchNorm2dOptions& options, const DistributedContext& ctx);
};
TORCH_MODULE(SyncBatchNorm);

/// Synchronises every BatchNorm2d of `module` (itself included) over `ctx`; returns how many.
/// Names, parameters and buffers stay as they were, so state_dicts, checkpoints and saved models
/// do not change, and the parameter tensors are the same objects (an optimiser built before still
/// updates them). convirt::models::BatchNorm2d layers (convirt's ResNet) are switched in place; a
/// plain torch::nn::BatchNorm2d child is replaced under its name by a convirt::models::BatchNorm2d
/// sharing its tensors, also inside Sequential and ModuleList. A torch::nn::BatchNorm2d that is
/// also held elsewhere (typically a member handle its parent calls in forward(), which a function
/// cannot re-point) is refused with a ValueError naming it, before anything is changed: build such
/// a module with convirt::models::BatchNorm2d. Call it on every rank, before broadcasting the
/// weights and before building the optimiser; then call forward and backward on every rank for
/// every step (the layers' training forward and backward are collectives). With world_size 1 the
/// layers compute BatchNorm2d (to rounding).
///
/// Example:
///   auto ctx = convirt::dist::DistributedContext::from_environment();
///   convirt::dist::convert_sync_batch_norm(*model, ctx);
///   convirt::dist::broadcast_module_state(*model, ctx);
///   convirt::dist::GradientSynchronizer sync(model->parameters(), ctx);
int64_t convert_sync_batch_norm(torch::nn::Module& module, const DistributedContext& ctx);

/// Undoes convert_sync_batch_norm: every convirt::models::BatchNorm2d of `module` computes its own
/// batch's statistics again (a replaced layer stays a convirt::models::BatchNorm2d, which is then
/// torch::nn::BatchNorm2d). Returns how many layers were synchronised.
int64_t revert_sync_batch_norm(torch::nn::Module& module);

/// Number of BatchNorm2d layers (torch's or convirt's) in `module`, itself included.
int64_t count_batch_norm(const torch::nn::Module& module);

}  // namespace convirt::dist
