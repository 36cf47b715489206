#pragma once
// Fused CPU kernels of the bidirectional InfoNCE loss (not API: reached through the dispatcher as
// the CPU implementations of convirt::infonce_forward / convirt::infonce_backward).

#include <ATen/ATen.h>

#include <tuple>

namespace convirt::detail {

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
infonce_forward_cpu(const at::Tensor& image, const at::Tensor& text, const at::Tensor& temperature,
                    double image_to_text_weight);

std::tuple<at::Tensor, at::Tensor, at::Tensor> infonce_backward_cpu(
    const at::Tensor& grad_loss, const at::Tensor& image, const at::Tensor& text,
    const at::Tensor& temperature, double image_to_text_weight, const at::Tensor& row_lse,
    const at::Tensor& col_lse);

/// While alive on a thread, tells the CPU forward whether a backward of the same call will follow
/// (the autograd kernel knows; the forward kernel alone does not). Where one will and the N x N
/// logits fit in 64 MiB, the forward keeps them and the backward skips its recompute GEMM.
class ExpectBackward {
 public:
  explicit ExpectBackward(bool expected);
  ~ExpectBackward();
  ExpectBackward(const ExpectBackward&) = delete;
  ExpectBackward& operator=(const ExpectBackward&) = delete;

 private:
  bool previous_;
};

/// Rows of the logit panel the fused CPU path materialises at once: the largest count whose
/// rows x n panel fits in `budget_bytes` (at least 1, at most n).
int64_t infonce_panel_rows(int64_t n, int64_t element_size, int64_t budget_bytes);

}  // namespace convirt::detail
