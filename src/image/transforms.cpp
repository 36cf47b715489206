// The random transforms of the paper's augmentation: each draws its parameters from the caller's
// Rng and applies the functional ops (functional.cpp) with them.
#include <convirt/image/transforms.h>

#include "float_image.h"

#include <convirt/core/check.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <sstream>

namespace convirt::image {

namespace {

using convirt::detail::shape_str;
using detail::as_float_image;

std::string range_str(const Range& r) {
  std::ostringstream os;
  os << "(" << r[0] << ", " << r[1] << ")";
  return os.str();
}

void check_range(const Range& r, double lo, const char* what) {
  CONVIRT_CHECK_VALUE(std::isfinite(r[0]) && std::isfinite(r[1]) && r[0] <= r[1] && r[0] >= lo,
                      what, " must be a range (lo <= hi) with lo >= ", lo, ", got ", range_str(r));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Transform base

torch::Tensor Transform::operator()(const torch::Tensor& image, Rng& rng) const {
  at::Tensor x = as_float_image(image, repr().c_str());
  if (x.dim() == 3) return apply_one(x, rng);
  const int64_t B = x.size(0);
  std::vector<uint64_t> seeds(B);
  for (auto& s : seeds) s = rng.next_u64();
  std::vector<at::Tensor> outs(B);
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      Rng r(seeds[b]);
      outs[b] = apply_one(x[b], r);
    }
  });
  for (int64_t b = 1; b < B; ++b) {
    CONVIRT_CHECK(outs[b].sizes() == outs[0].sizes(), repr(),
                  ": the images of a batch came out with different sizes (",
                  shape_str(outs[0].sizes()), " and ", shape_str(outs[b].sizes()),
                  "); transform them one by one");
  }
  return at::stack(outs);
}

torch::Tensor Transform::operator()(const torch::Tensor& image, uint64_t seed) const {
  Rng rng(seed);
  return (*this)(image, rng);
}

// ---------------------------------------------------------------------------------------------------
// Transforms

Resize::Resize(ResizeTransformOptions options) : options_(std::move(options)) {
  CONVIRT_CHECK_VALUE(options_.height() > 0 && options_.width() > 0,
                      "Resize: height and width must be > 0, got ", options_.height(), "x",
                      options_.width());
}

torch::Tensor Resize::apply_one(const torch::Tensor& image, Rng&) const {
  return resize(image, options_.height(), options_.width(), options_.resize());
}

std::string Resize::repr() const {
  std::ostringstream os;
  os << "Resize(" << options_.height() << ", " << options_.width()
     << ", antialias=" << options_.resize().antialias() << ")";
  return os.str();
}

RandomResizedCrop::RandomResizedCrop(RandomResizedCropOptions options)
    : options_(std::move(options)) {
  CONVIRT_CHECK_VALUE(options_.height() > 0 && options_.width() > 0,
                      "RandomResizedCrop: size must be > 0, got ", options_.height(), "x",
                      options_.width());
  check_range(options_.scale(), 0.0, "RandomResizedCrop: scale");
  CONVIRT_CHECK_VALUE(options_.scale()[1] > 0 && options_.scale()[1] <= 1.0,
                      "RandomResizedCrop: scale must lie in (0, 1], got ",
                      range_str(options_.scale()));
  check_range(options_.ratio(), 0.0, "RandomResizedCrop: ratio");
  CONVIRT_CHECK_VALUE(options_.ratio()[0] > 0, "RandomResizedCrop: ratio must be > 0, got ",
                      range_str(options_.ratio()));
}

CropBox RandomResizedCrop::sample(int64_t height, int64_t width, Rng& rng) const {
  const double area = static_cast<double>(height) * width;
  const double log_lo = std::log(options_.ratio()[0]), log_hi = std::log(options_.ratio()[1]);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * rng.uniform(options_.scale()[0], options_.scale()[1]);
    const double aspect = std::exp(rng.uniform(log_lo, log_hi));
    const int64_t w = static_cast<int64_t>(std::nearbyint(std::sqrt(target * aspect)));
    const int64_t h = static_cast<int64_t>(std::nearbyint(std::sqrt(target / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      CropBox box;
      box.top = rng.randint(0, height - h + 1);
      box.left = rng.randint(0, width - w + 1);
      box.height = h;
      box.width = w;
      return box;
    }
  }
  // Fallback, as torchvision: the whole image, cut to the nearest allowed aspect ratio.
  const double in_ratio = static_cast<double>(width) / height;
  int64_t w = width, h = height;
  if (in_ratio < options_.ratio()[0]) {
    h = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(w / options_.ratio()[0])));
  } else if (in_ratio > options_.ratio()[1]) {
    w = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(h * options_.ratio()[1])));
  }
  h = std::min(h, height);
  w = std::min(w, width);
  return CropBox{(height - h) / 2, (width - w) / 2, h, w};
}

torch::Tensor RandomResizedCrop::apply_one(const torch::Tensor& image, Rng& rng) const {
  const CropBox box = sample(image.size(-2), image.size(-1), rng);
  return resized_crop(image, box.top, box.left, box.height, box.width, options_.height(),
                      options_.width(), options_.resize());
}

std::string RandomResizedCrop::repr() const {
  std::ostringstream os;
  os << "RandomResizedCrop(" << options_.height() << ", " << options_.width()
     << ", scale=" << range_str(options_.scale()) << ", ratio=" << range_str(options_.ratio())
     << ")";
  return os.str();
}

RandomHorizontalFlip::RandomHorizontalFlip(RandomHorizontalFlipOptions options)
    : options_(options) {
  CONVIRT_CHECK_VALUE(options_.p() >= 0 && options_.p() <= 1,
                      "RandomHorizontalFlip: p must be in [0, 1], got ", options_.p());
}

torch::Tensor RandomHorizontalFlip::apply_one(const torch::Tensor& image, Rng& rng) const {
  return rng.bernoulli(options_.p()) ? hflip(image) : image;
}

std::string RandomHorizontalFlip::repr() const {
  std::ostringstream os;
  os << "RandomHorizontalFlip(p=" << options_.p() << ")";
  return os.str();
}

RandomAffine::RandomAffine(RandomAffineOptions options) : options_(options) {
  CONVIRT_CHECK_VALUE(std::isfinite(options_.degrees()) && options_.degrees() >= 0,
                      "RandomAffine: degrees must be >= 0, got ", options_.degrees());
  check_range(options_.translate(), 0.0, "RandomAffine: translate (as {tx, ty})");
  CONVIRT_CHECK_VALUE(options_.translate()[0] <= 1 && options_.translate()[1] <= 1,
                      "RandomAffine: translate must be in [0, 1], got ",
                      range_str(options_.translate()));
  check_range(options_.scale(), 0.0, "RandomAffine: scale");
  CONVIRT_CHECK_VALUE(options_.scale()[0] > 0, "RandomAffine: scale must be > 0, got ",
                      range_str(options_.scale()));
}

AffineParams RandomAffine::sample(int64_t height, int64_t width, Rng& rng) const {
  AffineParams p;
  p.angle = rng.uniform(-options_.degrees(), options_.degrees());
  const double max_dx = options_.translate()[0] * width, max_dy = options_.translate()[1] * height;
  p.translate[0] = std::nearbyint(rng.uniform(-max_dx, max_dx));
  p.translate[1] = std::nearbyint(rng.uniform(-max_dy, max_dy));
  p.scale = rng.uniform(options_.scale()[0], options_.scale()[1]);
  return p;
}

torch::Tensor RandomAffine::apply_one(const torch::Tensor& image, Rng& rng) const {
  const AffineParams p = sample(image.size(-2), image.size(-1), rng);
  return affine(image, p.angle, p.translate, p.scale, options_.interpolation(), options_.fill());
}

std::string RandomAffine::repr() const {
  std::ostringstream os;
  os << "RandomAffine(degrees=" << options_.degrees()
     << ", translate=" << range_str(options_.translate())
     << ", scale=" << range_str(options_.scale()) << ", interpolation="
     << (options_.interpolation() == Interpolation::kBilinear ? "bilinear" : "nearest") << ")";
  return os.str();
}

ColorJitter::ColorJitter(ColorJitterOptions options) : options_(options) {
  check_range(options_.brightness(), 0.0, "ColorJitter: brightness");
  check_range(options_.contrast(), 0.0, "ColorJitter: contrast");
}

torch::Tensor ColorJitter::apply_one(const torch::Tensor& image, Rng& rng) const {
  // Every draw is made whatever the options, so that the stream stays aligned across settings.
  const bool contrast_first = rng.bernoulli(0.5) && options_.random_order();
  const double b = rng.uniform(options_.brightness()[0], options_.brightness()[1]);
  const double c = rng.uniform(options_.contrast()[0], options_.contrast()[1]);
  const bool do_b = options_.brightness()[0] != 1.0 || options_.brightness()[1] != 1.0;
  const bool do_c = options_.contrast()[0] != 1.0 || options_.contrast()[1] != 1.0;
  at::Tensor x = image;
  if (contrast_first) {
    if (do_c) x = adjust_contrast(x, c);
    if (do_b) x = adjust_brightness(x, b);
  } else {
    if (do_b) x = adjust_brightness(x, b);
    if (do_c) x = adjust_contrast(x, c);
  }
  return x;
}

std::string ColorJitter::repr() const {
  std::ostringstream os;
  os << "ColorJitter(brightness=" << range_str(options_.brightness())
     << ", contrast=" << range_str(options_.contrast())
     << ", random_order=" << options_.random_order() << ")";
  return os.str();
}

GaussianBlur::GaussianBlur(GaussianBlurOptions options) : options_(options) {
  check_range(options_.sigma(), 0.0, "GaussianBlur: sigma");
  CONVIRT_CHECK_VALUE(options_.sigma()[0] > 0, "GaussianBlur: sigma must be > 0, got ",
                      range_str(options_.sigma()));
  CONVIRT_CHECK_VALUE(options_.kernel_size() == 0 ||
                          (options_.kernel_size() > 0 && options_.kernel_size() % 2 == 1),
                      "GaussianBlur: kernel_size must be odd or 0 (automatic), got ",
                      options_.kernel_size());
}

torch::Tensor GaussianBlur::apply_one(const torch::Tensor& image, Rng& rng) const {
  const double sigma = rng.uniform(options_.sigma()[0], options_.sigma()[1]);
  return gaussian_blur(image, sigma, options_.kernel_size());
}

std::string GaussianBlur::repr() const {
  std::ostringstream os;
  os << "GaussianBlur(sigma=" << range_str(options_.sigma())
     << ", kernel_size=" << options_.kernel_size() << ")";
  return os.str();
}

Normalize::Normalize(NormalizeOptions options) : options_(std::move(options)) {
  CONVIRT_CHECK_VALUE(!options_.mean().empty() && !options_.stddev().empty(),
                      "Normalize: mean and stddev must not be empty");
}

torch::Tensor Normalize::apply_one(const torch::Tensor& image, Rng&) const {
  return normalize(image, options_.mean(), options_.stddev());
}

std::string Normalize::repr() const {
  std::ostringstream os;
  os << "Normalize(mean=[";
  for (size_t i = 0; i < options_.mean().size(); ++i) os << (i ? ", " : "") << options_.mean()[i];
  os << "], stddev=[";
  for (size_t i = 0; i < options_.stddev().size(); ++i) {
    os << (i ? ", " : "") << options_.stddev()[i];
  }
  os << "])";
  return os.str();
}

Compose::Compose(std::vector<TransformPtr> transforms) : transforms_(std::move(transforms)) {
  for (size_t i = 0; i < transforms_.size(); ++i) {
    CONVIRT_CHECK_VALUE(transforms_[i] != nullptr, "Compose: transform ", i, " is null");
  }
}

torch::Tensor Compose::apply_one(const torch::Tensor& image, Rng& rng) const {
  at::Tensor x = image;
  for (const auto& t : transforms_) x = t->apply_one(x, rng);
  return x;
}

std::string Compose::repr() const {
  std::ostringstream os;
  os << "Compose(";
  for (size_t i = 0; i < transforms_.size(); ++i) os << (i ? ", " : "") << transforms_[i]->repr();
  os << ")";
  return os.str();
}

std::shared_ptr<Compose> paper_augmentation(const PaperAugmentationOptions& options) {
  return std::make_shared<Compose>(std::vector<TransformPtr>{
      std::make_shared<RandomResizedCrop>(RandomResizedCropOptions(options.size())
                                              .scale(options.crop_scale())
                                              .ratio(options.crop_ratio())),
      std::make_shared<RandomHorizontalFlip>(RandomHorizontalFlipOptions().p(options.flip_p())),
      std::make_shared<RandomAffine>(options.affine()),
      std::make_shared<ColorJitter>(options.jitter()),
      std::make_shared<GaussianBlur>(options.blur()),
  });
}

}  // namespace convirt::image
