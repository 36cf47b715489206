#pragma once
// The paper's image augmentation (section 4) as composable transforms over the functional ops of
// functional.h. Every transform works on float images [C, H, W] or batches [B, C, H, W] (uint8
// input is scaled to [0, 1] first; the result is always float32, contiguous).
//
// Randomness: a transform never touches a global generator. It draws its parameters from a
// convirt::image::Rng that the caller owns (or from a seed: `t(img, seed)` is `Rng rng(seed);
// t(img, rng)`), so the same seed gives the same pixels on every platform, thread count and run.
// For a batch, one 64-bit seed per image is drawn from the caller's Rng first, in order, and each
// image is then transformed with its own Rng(seed_b), in parallel: the result does not depend on
// the thread count.

#include <convirt/image/functional.h>
#include <convirt/image/rng.h>

#include <torch/arg.h>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace convirt::image {

/// The interface of every transform. Subclasses implement apply_one() for one contiguous float
/// [C, H, W] image; this class handles dtype, batches and seeding.
class Transform {
 public:
  virtual ~Transform() = default;
  /// Transforms one image [C, H, W] or a batch [B, C, H, W], drawing parameters from `rng`.
  torch::Tensor operator()(const torch::Tensor& image, Rng& rng) const;
  /// Same as operator()(image, Rng(seed)).
  torch::Tensor operator()(const torch::Tensor& image, uint64_t seed) const;
  /// A one-line description with the options, e.g. "RandomHorizontalFlip(p=0.5)".
  virtual std::string repr() const = 0;
  /// One contiguous float [C, H, W] image in, float [C', H', W'] out.
  virtual torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const = 0;
};

using TransformPtr = std::shared_ptr<const Transform>;

/// Options of Resize.
/// Example: Resize t(ResizeTransformOptions(224, 224));
struct ResizeTransformOptions {
  ResizeTransformOptions(int64_t height, int64_t width) : height_(height), width_(width) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  TORCH_ARG(ResizeOptions, resize) = {};
};

/// Deterministic resize to a fixed size (see resize()).
class Resize : public Transform {
 public:
  explicit Resize(ResizeTransformOptions options);
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;
  const ResizeTransformOptions& options() const { return options_; }

 private:
  ResizeTransformOptions options_;
};

/// Options of RandomResizedCrop. The paper's "random crop with ratio [0.6, 1.0]" is read, as the
/// public reproductions do, as torchvision's RandomResizedCrop(scale=(0.6, 1.0)) with the default
/// aspect-ratio range; the other reading (aspect ratio in [0.6, 1.0] at full area fraction range)
/// is
/// `.scale({0.08, 1.0}).ratio({0.6, 1.0})`.
/// Example: RandomResizedCrop crop(RandomResizedCropOptions(224).scale({0.6, 1.0}));
struct RandomResizedCropOptions {
  /* implicit */ RandomResizedCropOptions(int64_t size) : height_(size), width_(size) {}
  RandomResizedCropOptions(int64_t height, int64_t width) : height_(height), width_(width) {}
  TORCH_ARG(int64_t, height);
  TORCH_ARG(int64_t, width);
  /// Range of the crop's area as a fraction of the image's.
  TORCH_ARG(Range, scale) = {{0.6, 1.0}};
  /// Range of the crop's aspect ratio (width / height), sampled log-uniformly.
  TORCH_ARG(Range, ratio) = {{3.0 / 4.0, 4.0 / 3.0}};
  TORCH_ARG(ResizeOptions, resize) = {};
};

/// A crop window: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};

/// Random crop with random area fraction and aspect ratio, resized to a fixed size: torchvision's
/// RandomResizedCrop algorithm (10 tries of area and log-ratio, then a centre crop clamped to the
/// ratio range).
class RandomResizedCrop : public Transform {
 public:
  explicit RandomResizedCrop(RandomResizedCropOptions options);
  /// The crop window for an image of the given size.
  CropBox sample(int64_t height, int64_t width, Rng& rng) const;
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;
  const RandomResizedCropOptions& options() const { return options_; }

 private:
  RandomResizedCropOptions options_;
};

/// Options of RandomHorizontalFlip.
struct RandomHorizontalFlipOptions {
  TORCH_ARG(double, p) = 0.5;
};

/// Mirrors left-right with probability p (one draw per image, always made so that the stream of
/// draws does not depend on the outcome).
class RandomHorizontalFlip : public Transform {
 public:
  explicit RandomHorizontalFlip(RandomHorizontalFlipOptions options = {});
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;

 private:
  RandomHorizontalFlipOptions options_;
};

/// Options of RandomAffine (defaults: the paper's). Interpolation defaults to bilinear
/// (torchvision's RandomAffine defaults to nearest; bilinear avoids jagged edges on fine lung
/// texture). Example: RandomAffine aff(RandomAffineOptions().degrees(10));
struct RandomAffineOptions {
  /// Rotation angle drawn uniformly from [-degrees, degrees].
  TORCH_ARG(double, degrees) = 20.0;
  /// Maximum translation as a fraction of width (x) and height (y); the pixel shift is drawn
  /// uniformly in [-t W, t W] and rounded to an integer, as torchvision does.
  TORCH_ARG(Range, translate) = {{0.1, 0.1}};
  /// Scale drawn uniformly from this range.
  TORCH_ARG(Range, scale) = {{0.95, 1.05}};
  TORCH_ARG(Interpolation, interpolation) = Interpolation::kBilinear;
  TORCH_ARG(double, fill) = 0.0;
};

/// The parameters RandomAffine drew for one image.
struct AffineParams {
  double angle = 0.0;
  std::array<double, 2> translate{{0.0, 0.0}};
  double scale = 1.0;
};

/// Random rotation, translation and scale about the centre (see affine()).
class RandomAffine : public Transform {
 public:
  explicit RandomAffine(RandomAffineOptions options = {});
  AffineParams sample(int64_t height, int64_t width, Rng& rng) const;
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;

 private:
  RandomAffineOptions options_;
};

/// Options of ColorJitter (brightness and contrast only: the images are monochrome). A range {1, 1}
/// disables that adjustment.
struct ColorJitterOptions {
  TORCH_ARG(Range, brightness) = {{0.6, 1.4}};
  TORCH_ARG(Range, contrast) = {{0.6, 1.4}};
  /// Apply the two in random order, as torchvision's ColorJitter does; false: brightness first.
  TORCH_ARG(bool, random_order) = true;
};

/// Random brightness and contrast factors (see adjust_brightness, adjust_contrast).
class ColorJitter : public Transform {
 public:
  explicit ColorJitter(ColorJitterOptions options = {});
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;

 private:
  ColorJitterOptions options_;
};

/// Options of GaussianBlur.
struct GaussianBlurOptions {
  /// sigma drawn uniformly from this range.
  TORCH_ARG(Range, sigma) = {{0.1, 3.0}};
  /// Odd kernel size; 0 (default) makes it a function of the drawn sigma:
  /// gaussian_kernel_size(sigma).
  TORCH_ARG(int64_t, kernel_size) = 0;
};

/// Gaussian blur with a random sigma (see gaussian_blur()).
class GaussianBlur : public Transform {
 public:
  explicit GaussianBlur(GaussianBlurOptions options = {});
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;

 private:
  GaussianBlurOptions options_;
};

/// Options of Normalize.
struct NormalizeOptions {
  NormalizeOptions(std::vector<double> mean, std::vector<double> stddev)
      : mean_(std::move(mean)), stddev_(std::move(stddev)) {}
  TORCH_ARG(std::vector<double>, mean);
  TORCH_ARG(std::vector<double>, stddev);
};

/// Per-channel standardisation (see normalize()).
class Normalize : public Transform {
 public:
  explicit Normalize(NormalizeOptions options);
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;

 private:
  NormalizeOptions options_;
};

/// Applies transforms in order, all drawing from the same Rng.
/// Example:
///   Compose t({std::make_shared<RandomHorizontalFlip>(), std::make_shared<GaussianBlur>()});
///   auto out = t(img, /*seed=*/7);
class Compose : public Transform {
 public:
  explicit Compose(std::vector<TransformPtr> transforms);
  torch::Tensor apply_one(const torch::Tensor& image, Rng& rng) const override;
  std::string repr() const override;
  const std::vector<TransformPtr>& transforms() const { return transforms_; }

 private:
  std::vector<TransformPtr> transforms_;
};

/// Options of the paper's augmentation pipeline.
struct PaperAugmentationOptions {
  /// Output side (the paper: 224).
  TORCH_ARG(int64_t, size) = 224;
  TORCH_ARG(Range, crop_scale) = {{0.6, 1.0}};
  TORCH_ARG(Range, crop_ratio) = {{3.0 / 4.0, 4.0 / 3.0}};
  TORCH_ARG(double, flip_p) = 0.5;
  TORCH_ARG(RandomAffineOptions, affine) = {};
  TORCH_ARG(ColorJitterOptions, jitter) = {};
  TORCH_ARG(GaussianBlurOptions, blur) = {};
};

/// The paper's t_v, in its order: RandomResizedCrop(size, scale [0.6, 1]) ->
/// RandomHorizontalFlip(0.5)
/// -> RandomAffine(+-20 deg, 0.1, [0.95, 1.05]) -> ColorJitter(brightness, contrast [0.6, 1.4]) ->
/// GaussianBlur(sigma [0.1, 3]). The crop resizes straight to `size`, so the final "resize to 224"
/// is part of the first step.
/// Example: auto aug = paper_augmentation(); torch::Tensor v = (*aug)(img, rng);
std::shared_ptr<Compose> paper_augmentation(const PaperAugmentationOptions& options = {});

}  // namespace convirt::image
