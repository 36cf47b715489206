#include <convirt/models/batch_norm.h>

namespace convirt::models {

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& input) {
  if (statistics_ && is_training()) return statistics_->forward(*this, input);
  return torch::nn::BatchNorm2dImpl::forward(input);
}

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  torch::nn::BatchNorm2dImpl::pretty_print(stream);
  if (statistics_) stream << " [" << statistics_->describe() << "]";
}

}  // namespace convirt::models
