// The InfoNCE ops' schemas, and the composite kernel of convirt::infonce_loss that C++
// (convirt::infonce_loss) and Python (torch.ops.convirt.infonce_loss) both call, so the two share
// one code path: argument checks, normalisation, the backend choice and the reference
// implementation. The fused op's autograd kernel is in autograd.cpp, its device kernels in cpu/
// and cuda/ (each registered for its dispatch key where it is defined).

#include <convirt/core/check.h>
#include <convirt/loss/infonce.h>

#include "internal.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <string>

namespace convirt {
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
  CONVIRT_CHECK_VALUE(weight >= 0 && weight <= 1, "image_to_text_weight must be in [0, 1], got ",
                      weight);
  CONVIRT_CHECK_VALUE(eps >= 0, "eps must be >= 0, got ", eps);
}

// tau on the embeddings' device in the accumulation type. Its value is checked where reading it is
// free: on the host for a CPU tensor. On a device, reading it would synchronise every call with the
// host (and forbid CUDA graph capture), so a non-positive or NaN tau there becomes NaN instead,
// on the device, and every output (loss, statistics, gradients) is NaN: training's non-finite-loss
// check reports it. A fixed temperature (a double) was checked on the host before it became a
// tensor (infonce.cpp), and a learned one is exp() of a clamped parameter, so only a tau tensor a
// caller built on the device by hand can take that path.
Tensor checked_temperature(const Tensor& temperature, const Tensor& image, at::ScalarType acc) {
  const Tensor tau = temperature.reshape({}).to(image.device(), acc);
  if (tau.device().is_cpu()) {
    const double value = tau.item<double>();
    CONVIRT_CHECK_VALUE(value > 0, "temperature must be > 0, got ", value);
    return tau;
  }
  // tau * (m / m) with m = [tau > 0]: tau itself (times exactly 1, gradient 1) where valid, NaN
  // (0 / 0) where not. Plain arithmetic rather than where(), which has no kernel for every device
  // (the meta device that tests this path without a GPU).
  const Tensor valid = (tau > 0).to(acc);
  return tau * (valid / valid);
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
  Tensor tau = checked_temperature(temperature, image, acc);

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

}  // namespace convirt

TORCH_LIBRARY(convirt, m) {
  m.def(
      "infonce_forward(Tensor image, Tensor text, Tensor temperature, float image_to_text_weight) "
      "-> (Tensor loss, Tensor row_lse, Tensor col_lse, Tensor diag, Tensor row_max, "
      "Tensor col_max)");
  m.def(
      "infonce_backward(Tensor grad_loss, Tensor image, Tensor text, Tensor temperature, "
      "float image_to_text_weight, Tensor row_lse, Tensor col_lse) "
      "-> (Tensor grad_image, Tensor grad_text, Tensor grad_temperature)");
  m.def(
      "infonce_fused(Tensor image, Tensor text, Tensor temperature, float image_to_text_weight) "
      "-> (Tensor loss, Tensor row_lse, Tensor col_lse, Tensor diag, Tensor row_max, "
      "Tensor col_max)");
  m.def(
      "infonce_loss(Tensor image, Tensor text, Tensor temperature, float "
      "image_to_text_weight=0.75, "
      "bool normalize=True, float eps=1e-12, str backend=\"auto\") "
      "-> (Tensor loss, Tensor image_to_text, Tensor text_to_image, Tensor image_to_text_accuracy, "
      "Tensor text_to_image_accuracy)");
}

TORCH_LIBRARY_IMPL(convirt, CompositeImplicitAutograd, m) {
  m.impl("infonce_loss", &convirt::detail::infonce_loss_op);
}
