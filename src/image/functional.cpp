// Functional image ops as plain loops over float planes (one plane = one channel of one image).
// Each op is single-threaded per plane and parallel over planes; the data loader's workers and
// Transform's batch path supply the outer parallelism.
#include <convirt/image/functional.h>

#include "float_image.h"

#include <convirt/core/check.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace convirt::image {

// ---------------------------------------------------------------------------------------------------
// Helpers

namespace {

using detail::as_float_image;

int64_t num_planes(const at::Tensor& x) {
  return x.numel() / (x.size(-1) * x.size(-2));
}

std::vector<int64_t> with_hw(const at::Tensor& x, int64_t h, int64_t w) {
  std::vector<int64_t> s(x.sizes().begin(), x.sizes().end());
  s[s.size() - 2] = h;
  s[s.size() - 1] = w;
  return s;
}

// Runs fn(plane_index) over all planes, in parallel when the work is large enough.
template <typename F>
void for_planes(int64_t planes, int64_t plane_work, const F& fn) {
  const int64_t grain = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(plane_work, 1));
  at::parallel_for(0, planes, grain, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) fn(p);
  });
}

// Per-output-index taps of a 1-D resampling: out[i] = sum_k w[i][k] * in[start[i] + k].
struct Taps {
  int64_t width = 0;  // taps per output index (padded with zero weights)
  std::vector<int64_t> start;
  std::vector<float> weights;
};

Taps make_taps(int64_t in, int64_t out, int64_t offset, const ResizeOptions& options) {
  Taps t;
  t.start.resize(out);
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  if (options.interpolation() == Interpolation::kNearest) {
    // torch.nn.functional.interpolate(mode="nearest"): floor(i * scale), computed in float as ATen
    // does.
    t.width = 1;
    t.weights.assign(out, 1.0f);
    const float fscale = static_cast<float>(scale);
    for (int64_t i = 0; i < out; ++i) {
      t.start[i] = offset + std::min(static_cast<int64_t>(std::floor(i * fscale)), in - 1);
    }
    return t;
  }
  if (!options.antialias() || scale <= 1.0) {
    // Bilinear, align_corners=False, source index clamped at 0 (ATen's
    // area_pixel_compute_source_index). For upsampling this is also exactly what the antialiased
    // filter gives.
    t.width = 2;
    t.weights.resize(2 * out);
    for (int64_t i = 0; i < out; ++i) {
      double src = scale * (i + 0.5) - 0.5;
      if (src < 0) src = 0;
      int64_t x0 = std::min(static_cast<int64_t>(src), in - 1);
      const double l1 = std::min(src - x0, 1.0);
      if (x0 == in - 1) {
        t.start[i] = offset + x0;
        t.weights[2 * i] = 1.0f;
        t.weights[2 * i + 1] = 0.0f;
        // Keep start + 1 inside the plane: shift left, with the weight on the second tap.
        if (in > 1) {
          t.start[i] = offset + x0 - 1;
          t.weights[2 * i] = 0.0f;
          t.weights[2 * i + 1] = 1.0f;
        }
        continue;
      }
      t.start[i] = offset + x0;
      t.weights[2 * i] = static_cast<float>(1.0 - l1);
      t.weights[2 * i + 1] = static_cast<float>(l1);
    }
    if (in == 1) {
      t.width = 1;
      t.weights.assign(out, 1.0f);
    }
    return t;
  }
  // Antialiased bilinear (PIL / ATen _upsample_bilinear2d_aa): a triangle filter stretched by
  // `scale`.
  const double support = scale;
  const double invscale = 1.0 / scale;
  t.width = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.weights.assign(out * t.width, 0.0f);
  std::vector<double> w(t.width);
  for (int64_t i = 0; i < out; ++i) {
    const double center = scale * (i + 0.5);
    const int64_t xmin = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5), 0);
    const int64_t xsize =
        std::min<int64_t>(static_cast<int64_t>(center + support + 0.5), in) - xmin;
    double total = 0.0;
    const int64_t n = std::min(xsize, t.width);
    for (int64_t j = 0; j < n; ++j) {
      const double x = (j + xmin - center + 0.5) * invscale;
      w[j] = std::max(0.0, 1.0 - std::abs(x));
      total += w[j];
    }
    // Keep the window inside the plane so that the kernel can read t.width samples unconditionally.
    int64_t start = std::min(xmin, std::max<int64_t>(in - t.width, 0));
    const int64_t shift = xmin - start;
    t.start[i] = offset + start;
    for (int64_t j = 0; j < n; ++j) {
      if (shift + j < t.width)
        t.weights[i * t.width + shift + j] = static_cast<float>(w[j] / total);
    }
  }
  if (t.width > in) {
    // Narrow planes: fewer real samples than taps. Rebuild with width = in and start = offset.
    Taps narrow;
    narrow.width = in;
    narrow.start.assign(out, offset);
    narrow.weights.assign(out * in, 0.0f);
    for (int64_t i = 0; i < out; ++i) {
      for (int64_t k = 0; k < t.width; ++k) {
        const int64_t src = t.start[i] - offset + k;
        if (src >= 0 && src < in) narrow.weights[i * in + src] += t.weights[i * t.width + k];
      }
    }
    return narrow;
  }
  return t;
}

// Resamples one plane window [top, top + in_h) x [left, left + in_w) of a plane with row stride
// `stride` into out_h x out_w. `tmp` holds in_h x out_w floats.
void resample_plane(const float* src, int64_t stride, const Taps& tx, const Taps& ty, int64_t in_h,
                    int64_t top, int64_t out_h, int64_t out_w, float* tmp, float* dst) {
  // Horizontal pass over the rows of the window (rows top .. top + in_h).
  for (int64_t y = 0; y < in_h; ++y) {
    const float* row = src + (top + y) * stride;
    float* o = tmp + y * out_w;
    for (int64_t x = 0; x < out_w; ++x) {
      const float* s = row + tx.start[x];
      const float* w = tx.weights.data() + x * tx.width;
      float acc = 0.0f;
      for (int64_t k = 0; k < tx.width; ++k) acc += w[k] * s[k];
      o[x] = acc;
    }
  }
  // Vertical pass: whole rows at a time, which vectorises.
  for (int64_t y = 0; y < out_h; ++y) {
    float* o = dst + y * out_w;
    const float* w = ty.weights.data() + y * ty.width;
    const int64_t s0 = ty.start[y] - top;
    std::fill(o, o + out_w, 0.0f);
    for (int64_t k = 0; k < ty.width; ++k) {
      const float wk = w[k];
      if (wk == 0.0f) continue;
      const float* r = tmp + (s0 + k) * out_w;
      for (int64_t x = 0; x < out_w; ++x) o[x] += wk * r[x];
    }
  }
}

at::Tensor resized_crop_impl(const at::Tensor& x, int64_t top, int64_t left, int64_t h, int64_t w,
                             int64_t out_h, int64_t out_w, const ResizeOptions& options) {
  const int64_t H = x.size(-2), W = x.size(-1);
  at::Tensor out = at::empty(with_hw(x, out_h, out_w), x.options());
  if (h == out_h && w == out_w) {
    // Same size: a plain copy of the window (the filters would be the identity).
    out.copy_(x.narrow(-2, top, h).narrow(-1, left, w));
    return out;
  }
  const Taps tx = make_taps(w, out_w, left, options);
  const Taps ty = make_taps(h, out_h, top, options);
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for_planes(num_planes(x), (h + out_h) * out_w * 4, [&](int64_t p) {
    std::vector<float> tmp(static_cast<size_t>(h) * out_w);
    // The horizontal pass reads rows top .. top + h of the plane; ty.start is absolute.
    resample_plane(src + p * H * W, W, tx, ty, h, top, out_h, out_w, tmp.data(),
                   dst + p * out_h * out_w);
  });
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Functional ops

torch::Tensor resize(const torch::Tensor& image, int64_t height, int64_t width,
                     const ResizeOptions& options) {
  at::Tensor x = as_float_image(image, "resize");
  CONVIRT_CHECK_VALUE(height > 0 && width > 0, "resize: height and width must be > 0, got ", height,
                      "x", width);
  return resized_crop_impl(x, 0, 0, x.size(-2), x.size(-1), height, width, options);
}

torch::Tensor resized_crop(const torch::Tensor& image, int64_t top, int64_t left, int64_t height,
                           int64_t width, int64_t out_height, int64_t out_width,
                           const ResizeOptions& options) {
  at::Tensor x = as_float_image(image, "resized_crop");
  const int64_t H = x.size(-2), W = x.size(-1);
  CONVIRT_CHECK_VALUE(
      height > 0 && width > 0 && top >= 0 && left >= 0 && top + height <= H && left + width <= W,
      "resized_crop: the window (top ", top, ", left ", left, ", height ", height, ", width ",
      width, ") must lie inside the ", H, "x", W, " image");
  CONVIRT_CHECK_VALUE(out_height > 0 && out_width > 0,
                      "resized_crop: out_height and out_width must be > 0, got ", out_height, "x",
                      out_width);
  return resized_crop_impl(x, top, left, height, width, out_height, out_width, options);
}

torch::Tensor hflip(const torch::Tensor& image) {
  at::Tensor x = as_float_image(image, "hflip");
  const int64_t W = x.size(-1), rows = x.numel() / W;
  at::Tensor out = at::empty_like(x);
  const float* s = x.data_ptr<float>();
  float* d = out.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) std::reverse_copy(s + r * W, s + (r + 1) * W, d + r * W);
  return out;
}

torch::Tensor affine(const torch::Tensor& image, double angle, std::array<double, 2> translate,
                     double scale, Interpolation interpolation, double fill) {
  at::Tensor x = as_float_image(image, "affine");
  CONVIRT_CHECK_VALUE(std::isfinite(scale) && scale > 0, "affine: scale must be > 0, got ", scale);
  CONVIRT_CHECK_VALUE(std::isfinite(angle) && std::isfinite(translate[0]) &&
                          std::isfinite(translate[1]) && std::isfinite(fill),
                      "affine: angle, translate and fill must be finite");
  const int64_t H = x.size(-2), W = x.size(-1);
  // torchvision's _get_inverse_affine_matrix with centre (0, 0) in centred coordinates and no
  // shear.
  const double rot = angle * M_PI / 180.0;
  const double a = std::cos(rot), b = -std::sin(rot), c = std::sin(rot), d = std::cos(rot);
  double m[6] = {d / scale, -b / scale, 0.0, -c / scale, a / scale, 0.0};
  m[2] += m[0] * -translate[0] + m[1] * -translate[1];
  m[5] += m[3] * -translate[0] + m[4] * -translate[1];
  const double cx = (W - 1) * 0.5, cy = (H - 1) * 0.5;
  at::Tensor out = at::empty_like(x);
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const float ffill = static_cast<float>(fill);
  for_planes(num_planes(x), H * W * 8, [&](int64_t p) {
    const float* s = src + p * H * W;
    float* o = dst + p * H * W;
    for (int64_t i = 0; i < H; ++i) {
      const double y = i - cy;
      // Source coordinates move linearly along a row; step them instead of recomputing.
      const double sx0 = m[0] * -cx + m[1] * y + m[2] + cx;
      const double sy0 = m[3] * -cx + m[4] * y + m[5] + cy;
      if (interpolation == Interpolation::kNearest) {
        for (int64_t j = 0; j < W; ++j) {
          const int64_t ix = static_cast<int64_t>(std::nearbyint(sx0 + m[0] * j));
          const int64_t iy = static_cast<int64_t>(std::nearbyint(sy0 + m[3] * j));
          o[i * W + j] = (ix >= 0 && ix < W && iy >= 0 && iy < H) ? s[iy * W + ix] : ffill;
        }
        continue;
      }
      for (int64_t j = 0; j < W; ++j) {
        // float, like torchvision's float32 grid; truncation fixed up to a floor without a libm
        // call.
        const float sx = static_cast<float>(sx0 + m[0] * j);
        const float sy = static_cast<float>(sy0 + m[3] * j);
        int64_t x0 = static_cast<int64_t>(sx), y0 = static_cast<int64_t>(sy);
        x0 -= sx < static_cast<float>(x0);
        y0 -= sy < static_cast<float>(y0);
        const float wx1 = sx - static_cast<float>(x0), wy1 = sy - static_cast<float>(y0);
        const float wx0 = 1.0f - wx1, wy0 = 1.0f - wy1;
        if (x0 >= 0 && x0 + 1 < W && y0 >= 0 && y0 + 1 < H) {
          // Interior: all four taps exist (the common case), no bounds logic.
          const float* r0 = s + y0 * W + x0;
          const float* r1 = r0 + W;
          o[i * W + j] = wy0 * (wx0 * r0[0] + wx1 * r0[1]) + wy1 * (wx0 * r1[0] + wx1 * r1[1]);
          continue;
        }
        float v = 0.0f, mass = 0.0f;
        const bool x0in = x0 >= 0 && x0 < W, x1in = x0 + 1 >= 0 && x0 + 1 < W;
        if (y0 >= 0 && y0 < H) {
          const float* r = s + y0 * W;
          if (x0in) v += wy0 * wx0 * r[x0], mass += wy0 * wx0;
          if (x1in) v += wy0 * wx1 * r[x0 + 1], mass += wy0 * wx1;
        }
        if (y0 + 1 >= 0 && y0 + 1 < H) {
          const float* r = s + (y0 + 1) * W;
          if (x0in) v += wy1 * wx0 * r[x0], mass += wy1 * wx0;
          if (x1in) v += wy1 * wx1 * r[x0 + 1], mass += wy1 * wx1;
        }
        o[i * W + j] = ffill == 0.0f ? v : v + (1.0f - mass) * ffill;
      }
    }
  });
  return out;
}

torch::Tensor adjust_brightness(const torch::Tensor& image, double factor) {
  CONVIRT_CHECK_VALUE(std::isfinite(factor) && factor >= 0,
                      "adjust_brightness: factor must be >= 0, got ", factor);
  at::Tensor x = as_float_image(image, "adjust_brightness");
  at::Tensor out = at::empty_like(x);
  const float f = static_cast<float>(factor);
  const float* s = x.data_ptr<float>();
  float* d = out.data_ptr<float>();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) d[i] = std::min(std::max(f * s[i], 0.0f), 1.0f);
  return out;
}

torch::Tensor adjust_contrast(const torch::Tensor& image, double factor) {
  CONVIRT_CHECK_VALUE(std::isfinite(factor) && factor >= 0,
                      "adjust_contrast: factor must be >= 0, got ", factor);
  at::Tensor x = as_float_image(image, "adjust_contrast");
  const int64_t C = x.size(-3), HW = x.size(-1) * x.size(-2);
  CONVIRT_CHECK_VALUE(C == 1 || C == 3, "adjust_contrast: image must have 1 or 3 channels, got ",
                      C);
  const int64_t images = x.numel() / (C * HW);
  at::Tensor out = at::empty_like(x);
  const float f = static_cast<float>(factor);
  for (int64_t b = 0; b < images; ++b) {
    const float* s = x.data_ptr<float>() + b * C * HW;
    float* d = out.data_ptr<float>() + b * C * HW;
    double sum = 0.0;
    if (C == 1) {
      for (int64_t i = 0; i < HW; ++i) sum += s[i];
    } else {
      for (int64_t i = 0; i < HW; ++i) {
        sum += 0.2989f * s[i] + 0.587f * s[HW + i] + 0.114f * s[2 * HW + i];
      }
    }
    const float offset = (1.0f - f) * static_cast<float>(sum / HW);
    for (int64_t i = 0; i < C * HW; ++i) d[i] = std::min(std::max(f * s[i] + offset, 0.0f), 1.0f);
  }
  return out;
}

int64_t gaussian_kernel_size(double sigma) {
  CONVIRT_CHECK_VALUE(std::isfinite(sigma) && sigma > 0,
                      "gaussian_kernel_size: sigma must be > 0, got ", sigma);
  return std::max<int64_t>(3, 2 * static_cast<int64_t>(std::ceil(3.0 * sigma)) + 1);
}

torch::Tensor gaussian_blur(const torch::Tensor& image, double sigma, int64_t kernel_size) {
  CONVIRT_CHECK_VALUE(std::isfinite(sigma) && sigma > 0, "gaussian_blur: sigma must be > 0, got ",
                      sigma);
  if (kernel_size == 0) kernel_size = gaussian_kernel_size(sigma);
  CONVIRT_CHECK_VALUE(kernel_size > 0 && kernel_size % 2 == 1,
                      "gaussian_blur: kernel_size must be odd and > 0 (or 0 for automatic), got ",
                      kernel_size);
  at::Tensor x = as_float_image(image, "gaussian_blur");
  const int64_t H = x.size(-2), W = x.size(-1), r = kernel_size / 2;
  // torchvision's _get_gaussian_kernel1d, in float as there.
  std::vector<float> k(kernel_size);
  float total = 0.0f;
  for (int64_t i = 0; i < kernel_size; ++i) {
    const float t = static_cast<float>(i - r) / static_cast<float>(sigma);
    k[i] = std::exp(-0.5f * t * t);
    total += k[i];
  }
  for (auto& v : k) v /= total;
  // Reflect padding without repeating the edge ("reflect" in torch.nn.functional.pad), extended to
  // radii larger than the image by reflecting again.
  auto reflect = [](int64_t i, int64_t n) {
    if (n == 1) return int64_t{0};
    const int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0) i += period;
    return i < n ? i : period - i;
  };
  std::vector<int64_t> xi(W + 2 * r), yi(H + 2 * r);
  for (int64_t i = 0; i < W + 2 * r; ++i) xi[i] = reflect(i - r, W);
  for (int64_t i = 0; i < H + 2 * r; ++i) yi[i] = reflect(i - r, H);
  at::Tensor out = at::empty_like(x);
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for_planes(num_planes(x), H * W * kernel_size * 2, [&](int64_t p) {
    const float* s = src + p * H * W;
    float* o = dst + p * H * W;
    std::vector<float> tmp(H * W), padded(W + 2 * r);
    for (int64_t y = 0; y < H; ++y) {
      const float* row = s + y * W;
      for (int64_t i = 0; i < W + 2 * r; ++i) padded[i] = row[xi[i]];
      float* t = tmp.data() + y * W;
      // Tap-outer order: the inner loop runs along the row and vectorises.
      std::fill(t, t + W, 0.0f);
      for (int64_t q = 0; q < kernel_size; ++q) {
        const float kq = k[q];
        const float* pq = padded.data() + q;
        for (int64_t xx = 0; xx < W; ++xx) t[xx] += kq * pq[xx];
      }
    }
    for (int64_t y = 0; y < H; ++y) {
      float* orow = o + y * W;
      std::fill(orow, orow + W, 0.0f);
      for (int64_t q = 0; q < kernel_size; ++q) {
        const float kq = k[q];
        const float* trow = tmp.data() + yi[y + q] * W;
        for (int64_t xx = 0; xx < W; ++xx) orow[xx] += kq * trow[xx];
      }
    }
  });
  return out;
}

torch::Tensor pad_to_square(const torch::Tensor& image, double fill) {
  at::Tensor x = as_float_image(image, "pad_to_square");
  const int64_t H = x.size(-2), W = x.size(-1), S = std::max(H, W);
  if (H == W) return x;
  at::Tensor out = at::full(with_hw(x, S, S), fill, x.options());
  out.narrow(-2, (S - H) / 2, H).narrow(-1, (S - W) / 2, W).copy_(x);
  return out;
}

torch::Tensor normalize(const torch::Tensor& image, const std::vector<double>& mean,
                        const std::vector<double>& stddev) {
  at::Tensor x = as_float_image(image, "normalize");
  const int64_t C = x.size(-3);
  CONVIRT_CHECK_VALUE(mean.size() == 1 || static_cast<int64_t>(mean.size()) == C,
                      "normalize: mean must have 1 or ", C, " values, got ", mean.size());
  CONVIRT_CHECK_VALUE(stddev.size() == 1 || static_cast<int64_t>(stddev.size()) == C,
                      "normalize: stddev must have 1 or ", C, " values, got ", stddev.size());
  for (double s : stddev) {
    CONVIRT_CHECK_VALUE(s > 0 && std::isfinite(s), "normalize: stddev must be > 0, got ", s);
  }
  at::Tensor out = at::empty_like(x);
  const int64_t HW = x.size(-1) * x.size(-2), planes = num_planes(x);
  for (int64_t p = 0; p < planes; ++p) {
    const int64_t c = p % C;
    const float m = static_cast<float>(mean.size() == 1 ? mean[0] : mean[c]);
    const float inv = static_cast<float>(1.0 / (stddev.size() == 1 ? stddev[0] : stddev[c]));
    const float* s = x.data_ptr<float>() + p * HW;
    float* d = out.data_ptr<float>() + p * HW;
    for (int64_t i = 0; i < HW; ++i) d[i] = (s[i] - m) * inv;
  }
  return out;
}

}  // namespace convirt::image
