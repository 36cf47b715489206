#pragma once
// The paper's two deterministic preprocessing steps (section 5): the pretraining images are stored
// with the longer side 256; the evaluation images are zero-padded to a square and resized to 224.

#include <convirt/image/transforms.h>

#include <torch/types.h>

#include <cstdint>

namespace convirt::image {

/// Resizes so that the longer side is `longer_side`, keeping the aspect ratio (the shorter side is
/// rounded to the nearest integer, at least 1); antialiased bilinear by default. An image whose
/// longer side already has that size is returned unchanged (as contiguous float). Example: auto x =
/// resize_longer_side(read_image("cxr.jpg"), 256);  // [1, 256, 209]
torch::Tensor resize_longer_side(const torch::Tensor& image, int64_t longer_side = 256,
                                 const ResizeOptions& options = {});

/// Pretraining preprocessing: resize_longer_side(image, 256).
torch::Tensor pretrain_preprocess(const torch::Tensor& image, int64_t longer_side = 256);

/// Evaluation preprocessing: pad_to_square(image, 0) then resize to size x size (antialiased
/// bilinear). Example: auto x = eval_preprocess(read_image("cxr.png"));  // [C, 224, 224]
torch::Tensor eval_preprocess(const torch::Tensor& image, int64_t size = 224);

}  // namespace convirt::image
