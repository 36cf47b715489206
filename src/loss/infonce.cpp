// Public API of the InfoNCE loss: the functions that call the op convirt::infonce_loss (schema and
// composite kernel in infonce/op.cpp), the backend names, and the InfoNCELoss module.

#include <convirt/core/check.h>
#include <convirt/loss/infonce.h>

#include <cmath>

#include "infonce/internal.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/nn/functional/loss.h>

#include <sstream>

namespace convirt {

InfoNCEBackend parse_infonce_backend(const std::string& name) {
  if (name == "auto") return InfoNCEBackend::kAuto;
  if (name == "reference") return InfoNCEBackend::kReference;
  if (name == "fused") return InfoNCEBackend::kFused;
  CONVIRT_CHECK_VALUE(false, "backend must be one of 'auto', 'reference', 'fused', got '", name,
                      "'");
  return InfoNCEBackend::kAuto;
}

std::string to_string(InfoNCEBackend backend) {
  switch (backend) {
    case InfoNCEBackend::kAuto:
      return "auto";
    case InfoNCEBackend::kReference:
      return "reference";
    case InfoNCEBackend::kFused:
      return "fused";
  }
  return "auto";
}

namespace {

// A fixed temperature as a 0-dim tensor where the op will use it: checked here, on the host, and
// written by a fill on the embeddings' device (a kernel argument on CUDA), so no call copies tau
// from host memory or waits for the device.
torch::Tensor fixed_temperature(double tau, const torch::Tensor& image) {
  CONVIRT_CHECK_VALUE(tau > 0, "temperature must be > 0, got ", tau);
  // Anything else is refused by the op's checks, with the message naming the embedding.
  if (!image.defined() || !image.is_floating_point())
    return torch::scalar_tensor(tau, torch::kDouble);
  const auto acc = image.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
  return torch::full({}, tau, image.options().dtype(acc));
}

detail::LossWithStats call_loss_op(const torch::Tensor& image, const torch::Tensor& text,
                                   const InfoNCEOptions& o) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("convirt::infonce_loss", "")
          .typed<detail::LossWithStats(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       double, bool, double, c10::string_view)>();
  torch::Tensor tau = o.learnable_temperature().defined()
                          ? o.learnable_temperature()
                          : fixed_temperature(o.temperature(), image);
  const std::string backend = to_string(o.backend());
  return op.call(image, text, tau, o.image_to_text_weight(), o.normalize(), o.eps(), backend);
}

}  // namespace

torch::Tensor infonce_loss(const torch::Tensor& image_emb, const torch::Tensor& text_emb,
                           const InfoNCEOptions& options) {
  return std::get<0>(call_loss_op(image_emb, text_emb, options));
}

InfoNCEOutput infonce_loss_with_stats(const torch::Tensor& image_emb, const torch::Tensor& text_emb,
                                      const InfoNCEOptions& options) {
  auto [loss, i2t, t2i, acc_i2t, acc_t2i] = call_loss_op(image_emb, text_emb, options);
  return {loss, i2t, t2i, acc_i2t, acc_t2i};
}

InfoNCELossImpl::InfoNCELossImpl(InfoNCEOptions options_,
                                 std::shared_ptr<const GlobalBatch> global_batch_)
    : options(std::move(options_)), global_batch(std::move(global_batch_)) {
  reset();
}

torch::Tensor temperature_from_log(const torch::Tensor& log_temperature) {
  return log_temperature.clamp(std::log(kMinLearnedTemperature), std::log(kMaxLearnedTemperature))
      .exp();
}

torch::Tensor initial_log_temperature(const torch::Tensor& initial) {
  CONVIRT_CHECK_VALUE(initial.defined() && initial.numel() == 1 && initial.is_floating_point(),
                      "a learnable temperature must be a floating tensor with one value");
  const double tau = initial.detach().to(torch::kCPU).item<double>();
  CONVIRT_CHECK_VALUE(tau >= kMinLearnedTemperature && tau <= kMaxLearnedTemperature,
                      "a learnable temperature must start in [", kMinLearnedTemperature, ", ",
                      kMaxLearnedTemperature, "], got ", tau);
  return initial.detach().reshape({}).log().clone().requires_grad_(true);
}

void InfoNCELossImpl::reset() {
  if (options.learnable_temperature().defined()) {
    log_temperature = register_parameter("log_temperature",
                                         initial_log_temperature(options.learnable_temperature()));
  }
}

torch::Tensor InfoNCELossImpl::temperature() const {
  if (log_temperature.defined()) return temperature_from_log(log_temperature);
  return torch::scalar_tensor(options.temperature(), torch::kDouble);
}

InfoNCEOptions InfoNCELossImpl::effective_options() const {
  InfoNCEOptions o = options;
  if (log_temperature.defined()) o.learnable_temperature(temperature_from_log(log_temperature));
  return o;
}

bool InfoNCELossImpl::spans_processes() const {
  return global_batch != nullptr && global_batch->world_size() > 1;
}

torch::Tensor InfoNCELossImpl::forward(const torch::Tensor& image_emb,
                                       const torch::Tensor& text_emb) {
  if (spans_processes()) {
    return global_batch->infonce(image_emb, text_emb, effective_options(), false).loss;
  }
  return infonce_loss(image_emb, text_emb, effective_options());
}

InfoNCEOutput InfoNCELossImpl::forward_with_stats(const torch::Tensor& image_emb,
                                                  const torch::Tensor& text_emb) {
  if (spans_processes()) {
    return global_batch->infonce(image_emb, text_emb, effective_options(), true);
  }
  return infonce_loss_with_stats(image_emb, text_emb, effective_options());
}

void InfoNCELossImpl::pretty_print(std::ostream& stream) const {
  stream << "convirt::InfoNCELoss(temperature=";
  if (log_temperature.defined()) {
    stream << temperature().item<double>() << " (learnable)";
  } else {
    stream << options.temperature();
  }
  stream << ", image_to_text_weight=" << options.image_to_text_weight()
         << ", normalize=" << (options.normalize() ? "true" : "false")
         << ", backend=" << to_string(options.backend());
  if (global_batch) {
    stream << ", rank=" << global_batch->rank() << ", world_size=" << global_batch->world_size();
  }
  stream << ")";
}

}  // namespace convirt
