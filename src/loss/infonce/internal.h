#pragma once
// Pieces shared between the op registrations and the public API of the loss (not API).

#include <ATen/ATen.h>
#include <c10/util/string_view.h>

#include <tuple>

namespace convirt::detail {

/// (loss, row_lse, col_lse, diag, row_max, col_max), as returned by convirt::infonce_forward.
using FusedForwardResult =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

/// (loss, image_to_text, text_to_image, image_to_text_accuracy, text_to_image_accuracy).
using LossWithStats = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

/// The CompositeImplicitAutograd kernel of convirt::infonce_loss: validates, normalises and runs
/// the chosen backend.
LossWithStats infonce_loss_op(const at::Tensor& image, const at::Tensor& text,
                              const at::Tensor& temperature, double image_to_text_weight,
                              bool normalize, double eps, c10::string_view backend);

}  // namespace convirt::detail
