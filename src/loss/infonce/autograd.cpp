// The autograd kernel of the fused op convirt::infonce_fused: its forward and backward call the
// device kernels (cpu/, cuda/) registered for convirt::infonce_forward / infonce_backward. The
// schemas and the composite entry point are in op.cpp.

#include "cpu/kernels.h"  // ExpectBackward
#include "internal.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace convirt::detail {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The fused op's forward/backward kernels for the current device, called below the autograd key.
const auto& forward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("convirt::infonce_forward", "")
                       .typed<FusedForwardResult(const at::Tensor&, const at::Tensor&,
                                                 const at::Tensor&, double)>();
  return op;
}

const auto& backward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("convirt::infonce_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(
                           const at::Tensor&, const at::Tensor&, const at::Tensor&,
                           const at::Tensor&, double, const at::Tensor&, const at::Tensor&)>();
  return op;
}

class InfoNCEFusedFunction : public torch::autograd::Function<InfoNCEFusedFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& image,
                               const at::Tensor& text, const at::Tensor& temperature,
                               double image_to_text_weight) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [loss, row_lse, col_lse, diag, row_max, col_max] =
        forward_op().call(image, text, temperature, image_to_text_weight);
    ctx->save_for_backward({image, text, temperature, row_lse, col_lse});
    ctx->saved_data["image_to_text_weight"] = image_to_text_weight;
    ctx->mark_non_differentiable({row_lse, col_lse, diag, row_max, col_max});
    return {loss, row_lse, col_lse, diag, row_max, col_max};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor& grad_loss = grad_outputs[0];
    if (!grad_loss.defined()) return {at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    auto saved = ctx->get_saved_variables();
    const double weight = ctx->saved_data["image_to_text_weight"].toDouble();
    auto [grad_image, grad_text, grad_temperature] =
        backward_op().call(grad_loss.to(saved[3].scalar_type()), saved[0], saved[1], saved[2],
                           weight, saved[3], saved[4]);
    return {grad_image, grad_text, grad_temperature, at::Tensor()};
  }
};

FusedForwardResult infonce_fused_autograd(const at::Tensor& image, const at::Tensor& text,
                                          const at::Tensor& temperature,
                                          double image_to_text_weight) {
  // The CPU forward keeps its logits for the backward only when one can follow (grad mode is off
  // inside the Function's forward, so it is read here).
  ExpectBackward expect(
      at::GradMode::is_enabled() &&
      (image.requires_grad() || text.requires_grad() || temperature.requires_grad()));
  auto out = InfoNCEFusedFunction::apply(image, text, temperature, image_to_text_weight);
  return {out[0], out[1], out[2], out[3], out[4], out[5]};
}

// Without autograd (inference mode, or below the autograd key) the fused op is just its forward.
FusedForwardResult infonce_fused_no_grad(const at::Tensor& image, const at::Tensor& text,
                                         const at::Tensor& temperature,
                                         double image_to_text_weight) {
  return forward_op().call(image, text, temperature, image_to_text_weight);
}

}  // namespace
}  // namespace convirt::detail

TORCH_LIBRARY_IMPL(convirt, Autograd, m) {
  m.impl("infonce_fused", &convirt::detail::infonce_fused_autograd);
}

TORCH_LIBRARY_IMPL(convirt, CompositeExplicitAutograd, m) {
  m.impl("infonce_fused", &convirt::detail::infonce_fused_no_grad);
}
