// Public API of the InfoNCE loss and the composite op behind it: argument checks, normalisation,
// backend choice, the reference implementation, and the InfoNCELoss module.

#include <convirt/core/check.h>
#include <convirt/loss/infonce.h>

#include <cmath>

#include "infonce_internal.h"

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

namespace detail {
namespace {

using at::Tensor;

void check_embedding(const Tensor& t, const char* name) {
  CONVIRT_CHECK_VALUE(t.defined(), name, " must be a defined tensor");
  CONVIRT_CHECK_VALUE(t.dim() == 2, name, " must be 2-D [N, D], got ", shape_str(t.sizes()));
  CONVIRT_CHECK_TYPE(t.is_floating_point(), name,
                     " must be floating point (float32, float64, float16 or bfloat16), got ",
                     t.scalar_type());
}

void check_inputs(const Tensor& image, const Tensor& text, const Tensor& temperature, double weight,
                  double eps) {
  check_embedding(image, "image_emb");
  check_embedding(text, "text_emb");
  CONVIRT_CHECK_VALUE(image.size(0) >= 1, "image_emb must have at least one row (N >= 1), got ",
                      shape_str(image.sizes()));
  CONVIRT_CHECK_VALUE(image.size(0) == text.size(0),
                      "image_emb and text_emb must have the same number of rows N, got ",
                      image.size(0), " and ", text.size(0));
  CONVIRT_CHECK_VALUE(image.size(1) >= 1 && image.size(1) == text.size(1),
                      "image_emb and text_emb must have the same width D >= 1, got ",
                      shape_str(image.sizes()), " and ", shape_str(text.sizes()));
  CONVIRT_CHECK_TYPE(image.scalar_type() == text.scalar_type(),
                     "image_emb and text_emb must have the same dtype, got ", image.scalar_type(),
                     " and ", text.scalar_type());
  CONVIRT_CHECK_VALUE(image.device() == text.device(),
                      "image_emb and text_emb must be on the same device, got ", image.device(),
                      " and ", text.device());
  CONVIRT_CHECK_VALUE(temperature.defined() && temperature.numel() == 1,
                      "temperature must be a single value, got shape ",
                      temperature.defined() ? shape_str(temperature.sizes()) : "undefined");
  CONVIRT_CHECK_TYPE(temperature.is_floating_point(), "temperature must be floating point, got ",
                     temperature.scalar_type());
  const double tau = temperature.item<double>();
  CONVIRT_CHECK_VALUE(tau > 0, "temperature must be > 0, got ", tau);
  CONVIRT_CHECK_VALUE(weight >= 0 && weight <= 1, "image_to_text_weight must be in [0, 1], got ",
                      weight);
  CONVIRT_CHECK_VALUE(eps >= 0, "eps must be >= 0, got ", eps);
}

// Row-wise x / max(||x||, eps), as torch.nn.functional.normalize (differentiable through ATen).
Tensor l2_normalize(const Tensor& x, double eps) {
  return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(eps).expand_as(x);
}

bool has_fused_kernel(const Tensor& t) {
  if (t.device().is_cpu()) return true;
  if (!t.device().is_cuda()) return false;
  // The CUDA kernels register themselves only in builds where Torch has CUDA.
  const auto handle = c10::Dispatcher::singleton().findSchema({"convirt::infonce_forward", ""});
  return handle.has_value() && handle->hasKernelForDispatchKey(c10::DispatchKey::CUDA);
}

// The obviously-right formulation: materialised logits, two cross-entropies, autograd.
LossWithStats reference(const Tensor& a, const Tensor& b, const Tensor& tau, double weight) {
  const Tensor logits = at::mm(a, b.t()) / tau;
  const Tensor target = at::arange(a.size(0), a.options().dtype(at::kLong));
  const Tensor i2t = at::cross_entropy_loss(logits, target);
  const Tensor t2i = at::cross_entropy_loss(logits.t(), target);
  const Tensor loss = weight * i2t + (1.0 - weight) * t2i;
  const Tensor detached = logits.detach();
  const Tensor diag = detached.diagonal();
  const Tensor acc_i2t = (diag >= std::get<0>(detached.max(1))).to(a.scalar_type()).mean();
  const Tensor acc_t2i = (diag >= std::get<0>(detached.max(0))).to(a.scalar_type()).mean();
  return {loss, i2t.detach(), t2i.detach(), acc_i2t, acc_t2i};
}

LossWithStats fused(const Tensor& a, const Tensor& b, const Tensor& tau, double weight) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("convirt::infonce_fused", "")
          .typed<FusedForwardResult(const Tensor&, const Tensor&, const Tensor&, double)>();
  auto [loss, row_lse, col_lse, diag, row_max, col_max] = op.call(a, b, tau, weight);
  const Tensor i2t = (row_lse - diag).mean();
  const Tensor t2i = (col_lse - diag).mean();
  const Tensor acc_i2t = (diag >= row_max).to(loss.scalar_type()).mean();
  const Tensor acc_t2i = (diag >= col_max).to(loss.scalar_type()).mean();
  return {loss, i2t, t2i, acc_i2t, acc_t2i};
}

}  // namespace

LossWithStats infonce_loss_op(const Tensor& image, const Tensor& text, const Tensor& temperature,
                              double image_to_text_weight, bool normalize, double eps,
                              c10::string_view backend_name) {
  const InfoNCEBackend backend =
      parse_infonce_backend(std::string(backend_name.data(), backend_name.size()));
  check_inputs(image, text, temperature, image_to_text_weight, eps);

  // fp16/bf16 accumulate in fp32; fp64 stays fp64.
  const auto acc = image.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  Tensor tau = temperature.reshape({}).to(image.device(), acc);

  bool use_fused = backend == InfoNCEBackend::kFused;
  if (backend == InfoNCEBackend::kAuto) use_fused = has_fused_kernel(image);
  if (use_fused) {
    CONVIRT_CHECK_VALUE(has_fused_kernel(image), "backend 'fused' has no kernel for ",
                        image.device().type(),
                        " tensors in this build; use backend 'auto' or 'reference'");
    // Normalise in the accumulation precision (CPU half kernels lack some ops, and norms of
    // low-precision vectors lose bits), then hand the kernel the caller's dtype so CUDA can use
    // tensor cores on it.
    Tensor a = normalize ? l2_normalize(image.to(acc), eps).to(image.scalar_type()) : image;
    Tensor b = normalize ? l2_normalize(text.to(acc), eps).to(text.scalar_type()) : text;
    return fused(a, b, tau, image_to_text_weight);
  }
  Tensor a = image.to(acc);
  Tensor b = text.to(acc);
  if (normalize) {
    a = l2_normalize(a, eps);
    b = l2_normalize(b, eps);
  }
  return reference(a, b, tau, image_to_text_weight);
}

}  // namespace detail

namespace {

detail::LossWithStats call_loss_op(const torch::Tensor& image, const torch::Tensor& text,
                                   const InfoNCEOptions& o) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("convirt::infonce_loss", "")
          .typed<detail::LossWithStats(const at::Tensor&, const at::Tensor&, const at::Tensor&,
                                       double, bool, double, c10::string_view)>();
  torch::Tensor tau = o.learnable_temperature().defined()
                          ? o.learnable_temperature()
                          : torch::scalar_tensor(o.temperature(), torch::kDouble);
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
