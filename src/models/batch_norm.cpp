#include <convirt/models/batch_norm.h>

#include <ios>

namespace {

// torch::nn::BatchNorm2d's printout: "torch::nn::BatchNorm2d(64, eps=1e-05, momentum=0.1,
// affine=true, track_running_stats=true)".
void print_batch_norm(std::ostream& stream, const torch::nn::BatchNormOptions& options) {
  stream << std::boolalpha << "torch::nn::BatchNorm2d(" << options.num_features()
         << ", eps=" << options.eps() << ", momentum=";
  if (options.momentum().has_value()) {
    stream << *options.momentum();
  } else {
    stream << "None";
  }
  stream << ", affine=" << options.affine()
         << ", track_running_stats=" << options.track_running_stats() << ")";
}

}  // namespace

namespace torch::nn {
template <>
void BatchNormImplBase<2, BatchNorm2dImpl>::pretty_print(std::ostream& stream) const {
  print_batch_norm(stream, this->options);
}
}  // namespace torch::nn

namespace convirt::models {

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& input) {
  if (statistics_ && is_training()) return statistics_->forward(*this, input);
  return torch::nn::BatchNorm2dImpl::forward(input);
}

std::shared_ptr<torch::nn::Module> BatchNorm2dImpl::clone(
    const c10::optional<torch::Device>& device) const {
  // torch's deep copy, then a layer of this type sharing the copy's fresh tensors.
  const auto copy = torch::nn::BatchNorm2dImpl::clone(device);
  return std::make_shared<BatchNorm2dImpl>(dynamic_cast<const torch::nn::BatchNorm2dImpl&>(*copy));
}

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  print_batch_norm(stream, options);
  if (statistics_) stream << " [" << statistics_->describe() << "]";
}

}  // namespace convirt::models
