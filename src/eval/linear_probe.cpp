#include <convirt/eval/linear_probe.h>

#include <algorithm>

#include "classifier_loop.h"

namespace convirt::eval {

ClassifierResult train_linear_probe(const LabeledSet& train, const LabeledSet& val,
                                    const LabeledSet& test, const ClassifierOptions& options) {
  CONVIRT_CHECK_VALUE(train.inputs.defined(), "train.inputs must be a defined tensor");
  detail::ThreadScope threads(options.num_threads());
  return detail::run_classifier_loop(nullptr, train, val, test, options, train.inputs.device(),
                                     nullptr, {}, /*warmup_steps=*/0, /*warmup_lr=*/0.0);
}

torch::Tensor extract_features(const Encoder& encoder, const torch::Tensor& images,
                               int64_t batch_size) {
  CONVIRT_CHECK_VALUE(static_cast<bool>(encoder.forward), "encoder.forward must be set");
  CONVIRT_CHECK_VALUE(images.defined() && images.dim() >= 1, "images must be a tensor [N, ...]");
  CONVIRT_CHECK_VALUE(batch_size > 0, "batch_size must be > 0, got ", batch_size);
  const bool was_training = encoder.is_training ? encoder.is_training() : false;
  if (encoder.set_training) encoder.set_training(false);
  at::NoGradGuard no_grad;
  // The encoder's device is that of its first parameter (CPU for a parameterless encoder).
  auto device = encoder.parameters.empty() ? images.device() : encoder.parameters.front().device();
  std::vector<torch::Tensor> out;
  const int64_t n = images.size(0);
  for (int64_t s = 0; s < n; s += batch_size) {
    const int64_t len = std::min(batch_size, n - s);
    auto f = encoder.forward(images.narrow(0, s, len).to(device));
    CONVIRT_CHECK_VALUE(f.dim() == 2 && f.size(0) == len,
                        "encoder.forward must return features [B, D] for a batch of ", len,
                        ", got ", detail::shape_str(f.sizes()));
    out.push_back(f.to(at::kCPU).to(at::kFloat));
  }
  if (encoder.set_training) encoder.set_training(was_training);
  if (out.empty()) {
    return at::empty({0, std::max<int64_t>(encoder.output_dim, 0)},
                     at::TensorOptions().dtype(at::kFloat));
  }
  return at::cat(out, 0);
}

}  // namespace convirt::eval
