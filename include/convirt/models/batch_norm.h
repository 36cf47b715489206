#pragma once
// The BatchNorm layer of convirt's models: torch::nn::BatchNorm2d (same options, parameters,
// buffers, names and results) whose training-mode forward can be handed to another computation of
// the statistics, such as convirt::dist's synchronised BatchNorm, without replacing the layer.
// LibTorch modules call their layers through member handles, which no function can re-point after
// construction; a layer whose behaviour can be switched in place keeps every handle valid.

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <memory>
#include <ostream>
#include <string>

// LibTorch defines BatchNormImplBase<2, BatchNorm2dImpl>::pretty_print in its own library without
// exporting it, yet a class derived from torch::nn::BatchNorm2dImpl needs it (the construction
// vtables of its bases name it): convirt provides it (batch_norm.cpp), in torch's format.
namespace torch::nn {
template <>
void BatchNormImplBase<2, BatchNorm2dImpl>::pretty_print(std::ostream& stream) const;
}  // namespace torch::nn

namespace convirt::models {

/// A training-mode BatchNorm forward computed from other statistics than the layer's own batch
/// (convirt::dist::SyncBatchNormStatistics: the statistics of every rank's rows). It returns the
/// layer's output for `input` and updates the layer's running statistics and batch counter as
/// torch::nn::BatchNorm2d would.
class BatchNormStatistics {
 public:
  virtual ~BatchNormStatistics() = default;
  virtual torch::Tensor forward(torch::nn::BatchNorm2dImpl& layer, const torch::Tensor& input) = 0;
  /// A few words for the layer's printout ("synchronised over 4 ranks").
  virtual std::string describe() const = 0;
};

/// torch::nn::BatchNorm2d, plus set_statistics(): with statistics set, the training-mode forward
/// is theirs; evaluation mode always uses the running statistics (no communication). Without
/// statistics it is torch::nn::BatchNorm2d exactly. clone() gives a convirt::models::BatchNorm2d
/// without statistics (they may hold a process group, which a copy must not share by accident).
///
/// Example:
///   convirt::models::BatchNorm2d bn(64);                 // as torch::nn::BatchNorm2d(64)
///   convirt::dist::convert_sync_batch_norm(*net, ctx);   // sets the statistics of every layer
class BatchNorm2dImpl : public torch::nn::BatchNorm2dImpl {
 public:
  explicit BatchNorm2dImpl(const torch::nn::BatchNorm2dOptions& options)
      : torch::nn::BatchNorm2dImpl(options) {}
  /// A layer sharing `other`'s options, parameter and buffer tensors and mode (nothing is copied):
  /// what replaces a torch::nn::BatchNorm2d in a module tree.
  /// (Module is a virtual base: this class initialises it, from `other`'s registry.)
  explicit BatchNorm2dImpl(const torch::nn::BatchNorm2dImpl& other)
      : torch::nn::Module(other), torch::nn::BatchNorm2dImpl(other) {}

  torch::Tensor forward(const torch::Tensor& input);
  /// A deep copy of this type (so that a Sequential's clone keeps calling it), without statistics.
  std::shared_ptr<torch::nn::Module> clone(
      const c10::optional<torch::Device>& device = c10::nullopt) const override;
  /// Hands the training-mode forward to `statistics`; nullptr restores the layer's own.
  void set_statistics(std::shared_ptr<BatchNormStatistics> statistics) {
    statistics_ = std::move(statistics);
  }
  const std::shared_ptr<BatchNormStatistics>& statistics() const { return statistics_; }
  void pretty_print(std::ostream& stream) const override;

 private:
  std::shared_ptr<BatchNormStatistics> statistics_;
};
TORCH_MODULE(BatchNorm2d);

}  // namespace convirt::models
