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

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  print_batch_norm(stream, options);
  if (statistics_) stream << " [" << statistics_->describe() << "]";
}

}  // namespace convirt::models
