#pragma once
// Deterministic image ops, the building blocks of the random transforms (transforms.h). Every op
// works on float images [C, H, W] or batches [B, C, H, W] (uint8 input is scaled to [0, 1] first;
// the result is always float32, contiguous). Each op states the reference it matches (torchvision
// 0.14 tensor ops, see docs/image.md); the tests check those references pixel by pixel.

#include <torch/arg.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

namespace convirt::image {

/// A closed range {lo, hi} of a random parameter.
using Range = std::array<double, 2>;

/// Sampling rule for geometric ops.
enum class Interpolation { kNearest, kBilinear };

/// Options of resize().
struct ResizeOptions {
  TORCH_ARG(Interpolation, interpolation) = Interpolation::kBilinear;
  /// Bilinear only: widen the triangle filter by the downscale factor (PIL's and torchvision's
  /// antialias=True), so downscaling averages every source pixel instead of skipping some.
  TORCH_ARG(bool, antialias) = true;
};

/// Resizes to [.., height, width]. Bilinear with antialias matches
/// torchvision.transforms.functional.resize(t, [h, w], InterpolationMode.BILINEAR, antialias=True)
/// (= torch.nn.functional.interpolate(mode="bilinear", align_corners=False, antialias=True)) and
/// PIL's Image.resize(BILINEAR); without antialias it matches interpolate(mode="bilinear",
/// align_corners=False); nearest matches interpolate(mode="nearest").
/// Example: auto small = resize(img, 224, 224);
torch::Tensor resize(const torch::Tensor& image, int64_t height, int64_t width,
                     const ResizeOptions& options = {});

/// Crops the window (top, left, height, width), which must lie inside the image, and resizes it to
/// [out_height, out_width] in one pass (no intermediate copy). Matches
/// torchvision.transforms.functional.resized_crop(t, top, left, h, w, [oh, ow], BILINEAR,
/// antialias=True).
torch::Tensor resized_crop(const torch::Tensor& image, int64_t top, int64_t left, int64_t height,
                           int64_t width, int64_t out_height, int64_t out_width,
                           const ResizeOptions& options = {});

/// Mirrors left-right (torchvision's hflip).
torch::Tensor hflip(const torch::Tensor& image);

/// Affine warp about the image centre, same size out. `angle` in degrees (torchvision's sign
/// convention), `translate` {tx, ty} in pixels, `scale` > 0; pixels whose source falls outside take
/// `fill`. Matches torchvision.transforms.functional.affine(t, angle, [tx, ty], scale, shear=[0,
/// 0], interpolation, fill=[fill]) on tensors, sample for sample (grid_sample with
/// align_corners=False).
torch::Tensor affine(const torch::Tensor& image, double angle, std::array<double, 2> translate,
                     double scale, Interpolation interpolation = Interpolation::kBilinear,
                     double fill = 0.0);

/// clamp(factor * x, 0, 1): torchvision's adjust_brightness on float tensors.
torch::Tensor adjust_brightness(const torch::Tensor& image, double factor);

/// clamp(factor * x + (1 - factor) * m, 0, 1) with m the mean of the grayscale image (for 3
/// channels the luma 0.2989 R + 0.587 G + 0.114 B), per image: torchvision's adjust_contrast on
/// float tensors.
torch::Tensor adjust_contrast(const torch::Tensor& image, double factor);

/// The kernel size used when GaussianBlurOptions.kernel_size is 0: 2 * ceil(3 sigma) + 1, the
/// smallest odd size that covers +-3 sigma (99.7% of the mass), at least 3.
int64_t gaussian_kernel_size(double sigma);

/// Separable Gaussian blur with the normalised kernel exp(-x^2 / (2 sigma^2)) sampled at the
/// integer offsets -(k-1)/2 .. (k-1)/2, and reflect padding (edge pixel not repeated): matches
/// torchvision.transforms.functional.gaussian_blur(t, [k, k], [sigma, sigma]) on tensors.
/// kernel_size 0 uses gaussian_kernel_size(sigma).
torch::Tensor gaussian_blur(const torch::Tensor& image, double sigma, int64_t kernel_size = 0);

/// Pads to a square with `fill`, centring the image (the extra pixel, if odd, goes right/bottom).
torch::Tensor pad_to_square(const torch::Tensor& image, double fill = 0.0);

/// (x - mean[c]) / stddev[c] per channel; a single value applies to every channel.
torch::Tensor normalize(const torch::Tensor& image, const std::vector<double>& mean,
                        const std::vector<double>& stddev);

}  // namespace convirt::image
