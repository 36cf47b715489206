#pragma once
// The small interface through which the evaluation protocols use an image encoder, so that they
// work with any module (a convirt model, a torchvision-style ResNet, a user's own) without
// depending on the models area: a forward function, the parameters to train, the buffers to
// checkpoint, a mode switch.

#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace convirt::eval {

/// A type-erased image encoder: images [B, ...] -> features [B, output_dim].
///
/// Requirements: `forward` is set; `parameters` are the tensors fine-tuning may update (only those
/// with requires_grad are trained, so layers the user froze stay frozen); `buffers` are the other
/// tensors that define the encoder's output (BatchNorm running statistics) and are saved and
/// restored with the best-validation checkpoint; `set_training` (optional) switches
/// dropout/BatchNorm mode.
struct Encoder {
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  std::vector<torch::Tensor> parameters;
  std::vector<torch::Tensor> buffers;
  std::function<void(bool)> set_training;
  /// Width of the features; 0 = unknown (found from a first forward pass when needed).
  int64_t output_dim = 0;
  /// The current training flag, reported by `is_training` when set.
  std::function<bool()> is_training;
};

/// An Encoder over a torch::nn::Module and a forward function (for modules whose forward takes more
/// than one argument, or a submodule of a bigger model).
///
/// Example:
///   auto enc = convirt::eval::make_encoder(model.ptr(), [model](const torch::Tensor& x) {
///     return model->encode_image(x);
///   }, 2048);
inline Encoder make_encoder(std::shared_ptr<torch::nn::Module> module,
                            std::function<torch::Tensor(const torch::Tensor&)> forward,
                            int64_t output_dim = 0) {
  Encoder e;
  e.forward = std::move(forward);
  e.parameters = module->parameters();
  e.buffers = module->buffers();
  e.set_training = [module](bool on) { module->train(on); };
  e.is_training = [module]() { return module->is_training(); };
  e.output_dim = output_dim;
  return e;
}

/// An Encoder over a TORCH_MODULE holder (or shared_ptr) whose forward(images) returns features.
///
/// Example:
///   torch::nn::Sequential net(torch::nn::Flatten(), torch::nn::Linear(3 * 32 * 32, 64));
///   auto enc = convirt::eval::make_encoder(net, 64);
template <typename ModuleHolder>
Encoder make_encoder(ModuleHolder module, int64_t output_dim = 0) {
  auto ptr = module.ptr();
  return make_encoder(
      ptr, [module](const torch::Tensor& x) mutable { return module->forward(x); }, output_dim);
}

}  // namespace convirt::eval
