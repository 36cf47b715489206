// The paper's deterministic preprocessing (section 5): longer side 256 for pretraining, padded
// square resized to 224 for evaluation.
#include <convirt/image/preprocess.h>

#include "float_image.h"

#include <convirt/core/check.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

namespace convirt::image {

using detail::as_float_image;

// Preprocessing

torch::Tensor resize_longer_side(const torch::Tensor& image, int64_t longer_side,
                                 const ResizeOptions& options) {
  CONVIRT_CHECK_VALUE(longer_side > 0, "resize_longer_side: longer_side must be > 0, got ",
                      longer_side);
  at::Tensor x = as_float_image(image, "resize_longer_side");
  const int64_t H = x.size(-2), W = x.size(-1);
  if (std::max(H, W) == longer_side) return x;
  int64_t h = longer_side, w = longer_side;
  if (H > W) {
    w = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(double(W) * longer_side / H)));
  } else if (W > H) {
    h = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(double(H) * longer_side / W)));
  }
  return resize(x, h, w, options);
}

torch::Tensor pretrain_preprocess(const torch::Tensor& image, int64_t longer_side) {
  return resize_longer_side(image, longer_side);
}

torch::Tensor eval_preprocess(const torch::Tensor& image, int64_t size) {
  CONVIRT_CHECK_VALUE(size > 0, "eval_preprocess: size must be > 0, got ", size);
  return resize(pad_to_square(image, 0.0), size, size);
}

}  // namespace convirt::image
