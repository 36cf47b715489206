// Format detection, dispatch to the codecs, and the conversion between codec samples and tensors.
#include "io_internal.h"

#include <convirt/core/check.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <iterator>

namespace convirt::image {

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
      return "jpeg";
    case ImageFormat::kPng:
      return "png";
    case ImageFormat::kDicom:
      return "dicom";
    default:
      return "unknown";
  }
}

ImageFormat detect_format(const uint8_t* data, size_t size) {
  static const uint8_t kPngMagic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (data == nullptr) return ImageFormat::kUnknown;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::kJpeg;
  if (size >= 8 && std::memcmp(data, kPngMagic, 8) == 0) return ImageFormat::kPng;
  if (size >= 132 && std::memcmp(data + 128, "DICM", 4) == 0) return ImageFormat::kDicom;
  return ImageFormat::kUnknown;
}

bool codec_available(ImageFormat format) {
  switch (format) {
    case ImageFormat::kJpeg:
#ifdef CONVIRT_IMAGE_WITH_TURBOJPEG
      return true;
#else
      return false;
#endif
    case ImageFormat::kPng:
#ifdef CONVIRT_IMAGE_WITH_PNG
      return true;
#else
      return false;
#endif
    case ImageFormat::kDicom:
#ifdef CONVIRT_IMAGE_WITH_DCMTK
      return true;
#else
      return false;
#endif
    default:
      return false;
  }
}

namespace {
std::atomic<int64_t> g_max_image_pixels{kDefaultMaxImagePixels};
}  // namespace

int64_t max_image_pixels() {
  return g_max_image_pixels.load(std::memory_order_relaxed);
}

void set_max_image_pixels(int64_t pixels) {
  CONVIRT_CHECK_VALUE(pixels > 0, "set_max_image_pixels: pixels must be > 0, got ", pixels);
  g_max_image_pixels.store(pixels, std::memory_order_relaxed);
}

namespace detail {
void check_pixel_limit(int64_t width, int64_t height, int64_t frames,
                       const ReadImageOptions& options, const char* format,
                       const std::string& where) {
  const int64_t limit = options.max_pixels() > 0 ? options.max_pixels() : max_image_pixels();
  // Each factor is below 2^32 (codec headers), so the product is computed in floating point to
  // stay exact enough for the comparison without overflowing int64.
  const double pixels = static_cast<double>(width) * static_cast<double>(height) *
                        static_cast<double>(std::max<int64_t>(frames, 1));
  CONVIRT_CHECK_VALUE(pixels <= static_cast<double>(limit), "cannot decode ", format, " ", where,
                      ": its header declares ", width, "x", height,
                      frames > 1 ? " x " + std::to_string(frames) + " frames" : std::string(),
                      " = ", static_cast<uint64_t>(pixels), " pixels, more than the limit of ",
                      limit,
                      " (raise it with ReadImageOptions::max_pixels or "
                      "convirt::image::set_max_image_pixels)");
}
}  // namespace detail

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK(in.good(), "cannot open image file ", path, ": ", std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CONVIRT_CHECK(!in.bad(), "cannot read image file ", path);
  return bytes;
}

namespace {

void check_options(const ReadImageOptions& o) {
  CONVIRT_CHECK_VALUE(o.channels() == 0 || o.channels() == 1 || o.channels() == 3,
                      "ReadImageOptions.channels must be 0, 1 or 3, got ", o.channels());
  CONVIRT_CHECK_TYPE(o.dtype() == at::kFloat || o.dtype() == at::kByte,
                     "ReadImageOptions.dtype must be float32 or uint8, got ", o.dtype());
  CONVIRT_CHECK_VALUE(o.draft_longer_side() >= 0,
                      "ReadImageOptions.draft_longer_side must be >= 0, got ",
                      o.draft_longer_side());
}

at::Tensor decode_impl(const uint8_t* data, size_t size, const ReadImageOptions& options,
                       const std::string& where) {
  check_options(options);
  CONVIRT_CHECK(data != nullptr && size > 0, "cannot decode ", where, ": empty file");
  const ImageFormat format = detect_format(data, size);
  switch (format) {
    case ImageFormat::kJpeg:
      return detail::finish(detail::decode_jpeg(data, size, options, where), options);
    case ImageFormat::kPng:
      return detail::finish(detail::decode_png(data, size, options, where), options);
    case ImageFormat::kDicom:
      return detail::decode_dicom(data, size, options, where);
    default: {
      std::ostringstream head;
      for (size_t i = 0; i < std::min<size_t>(size, 4); ++i) {
        head << (i ? " " : "") << std::hex << static_cast<int>(data[i]);
      }
      CONVIRT_CHECK(false, "cannot decode ", where,
                    ": unsupported format (not JPEG, PNG or DICOM by content; first bytes ",
                    head.str(), ")");
    }
  }
  return {};
}

}  // namespace

torch::Tensor decode_image(const uint8_t* data, size_t size, const ReadImageOptions& options) {
  return decode_impl(data, size, options, "<memory>");
}

torch::Tensor read_image(const std::string& path, const ReadImageOptions& options) {
  const std::string bytes = read_file_bytes(path);
  return decode_impl(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), options, path);
}

namespace {
ImageInfo info_impl(const uint8_t* data, size_t size, const std::string& where) {
  CONVIRT_CHECK(data != nullptr && size > 0, "cannot read ", where, ": empty file");
  switch (detect_format(data, size)) {
    case ImageFormat::kJpeg:
      return detail::jpeg_info(data, size, where);
    case ImageFormat::kPng:
      return detail::png_info(data, size, where);
    case ImageFormat::kDicom:
      return detail::dicom_info(data, size, where);
    default:
      CONVIRT_CHECK(false, "cannot read ", where, ": unsupported format (not JPEG, PNG or DICOM)");
  }
  return {};
}
}  // namespace

ImageInfo image_info(const std::string& path) {
  const std::string bytes = read_file_bytes(path);
  return info_impl(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

ImageInfo image_info(const uint8_t* data, size_t size) {
  return info_impl(data, size, "<memory>");
}

namespace detail {
namespace {

// PIL's convert("L") weights (ITU-R 601-2 luma), in its 16-bit fixed point for the uint8 path.
constexpr float kLumaR = 0.299f, kLumaG = 0.587f, kLumaB = 0.114f;

template <typename Sample>
at::Tensor hwc_to_chw(const Sample* src, int64_t h, int64_t w, int64_t c, int64_t out_c,
                      at::ScalarType dtype, float max_value) {
  const int64_t plane = h * w;
  at::Tensor out = at::empty({out_c, h, w}, at::TensorOptions().dtype(dtype));
  if (dtype == at::kFloat) {
    float* dst = out.data_ptr<float>();
    const float scale = 1.0f / max_value;
    if (c == out_c) {
      for (int64_t p = 0; p < plane; ++p) {
        for (int64_t k = 0; k < c; ++k) dst[k * plane + p] = src[p * c + k] * scale;
      }
    } else if (c == 3 && out_c == 1) {
      for (int64_t p = 0; p < plane; ++p) {
        dst[p] = (kLumaR * src[3 * p] + kLumaG * src[3 * p + 1] + kLumaB * src[3 * p + 2]) * scale;
      }
    } else {  // 1 -> 3
      for (int64_t p = 0; p < plane; ++p) dst[p] = src[p] * scale;
      std::memcpy(dst + plane, dst, plane * sizeof(float));
      std::memcpy(dst + 2 * plane, dst, plane * sizeof(float));
    }
    return out;
  }
  uint8_t* dst = out.data_ptr<uint8_t>();
  auto to8 = [&](uint32_t v) -> uint8_t {
    if (max_value <= 255.0f) return static_cast<uint8_t>(v);
    return static_cast<uint8_t>((v * 255u + 32767u) / 65535u);
  };
  if (c == out_c) {
    for (int64_t p = 0; p < plane; ++p) {
      for (int64_t k = 0; k < c; ++k) dst[k * plane + p] = to8(src[p * c + k]);
    }
  } else if (c == 3 && out_c == 1) {
    for (int64_t p = 0; p < plane; ++p) {
      const uint32_t r = to8(src[3 * p]), g = to8(src[3 * p + 1]), b = to8(src[3 * p + 2]);
      dst[p] = static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
    }
  } else {
    for (int64_t p = 0; p < plane; ++p) dst[p] = to8(src[p]);
    std::memcpy(dst + plane, dst, plane);
    std::memcpy(dst + 2 * plane, dst, plane);
  }
  return out;
}

}  // namespace

at::Tensor finish(const RawImage& raw, const ReadImageOptions& options) {
  const int64_t out_c = options.channels() == 0 ? raw.channels : options.channels();
  if (raw.bit_depth == 16) {
    return hwc_to_chw(raw.u16.data(), raw.height, raw.width, raw.channels, out_c, options.dtype(),
                      65535.0f);
  }
  return hwc_to_chw(raw.u8.data(), raw.height, raw.width, raw.channels, out_c, options.dtype(),
                    255.0f);
}

at::Tensor finish_float(at::Tensor gray01, const ReadImageOptions& options) {
  at::Tensor img = gray01.to(at::kFloat).clamp(0.0, 1.0).unsqueeze(0);
  if (options.channels() == 3) img = img.expand({3, -1, -1});
  if (options.dtype() == at::kByte) return img.mul(255.0).round().to(at::kByte).contiguous();
  return img.contiguous();
}

RawImage to_raw(const at::Tensor& image, int bit_depth, const char* fn) {
  CONVIRT_CHECK_VALUE(image.defined(), fn, ": image is undefined");
  CONVIRT_CHECK_VALUE(image.dim() == 2 || image.dim() == 3, fn,
                      ": image must be [C, H, W] or [H, W], got ",
                      convirt::detail::shape_str(image.sizes()));
  at::Tensor chw = image.dim() == 2 ? image.unsqueeze(0) : image;
  const int64_t c = chw.size(0), h = chw.size(1), w = chw.size(2);
  CONVIRT_CHECK_VALUE(c == 1 || c == 3 || c == 4, fn, ": image must have 1, 3 or 4 channels, got ",
                      c, " (shape ", convirt::detail::shape_str(image.sizes()), ")");
  CONVIRT_CHECK_VALUE(h > 0 && w > 0, fn, ": image must not be empty, got ",
                      convirt::detail::shape_str(image.sizes()));
  CONVIRT_CHECK_VALUE(bit_depth == 8 || bit_depth == 16, fn, ": bit_depth must be 8 or 16, got ",
                      bit_depth);
  const auto dtype = chw.scalar_type();
  CONVIRT_CHECK_TYPE(dtype == at::kByte || at::isFloatingType(dtype), fn,
                     ": image must be floating point in [0, 1] or uint8, got ", dtype);
  CONVIRT_CHECK_VALUE(!(dtype == at::kByte && bit_depth == 16), fn,
                      ": a uint8 image is written with bit_depth 8, got ", bit_depth);
  at::Tensor hwc = chw.to(at::kCPU).permute({1, 2, 0});
  RawImage raw;
  raw.width = w;
  raw.height = h;
  raw.channels = c;
  raw.bit_depth = bit_depth;
  if (dtype == at::kByte) {
    hwc = hwc.contiguous();
    raw.u8.assign(hwc.data_ptr<uint8_t>(), hwc.data_ptr<uint8_t>() + hwc.numel());
    return raw;
  }
  const double max_value = bit_depth == 16 ? 65535.0 : 255.0;
  at::Tensor q = hwc.to(at::kFloat).nan_to_num(0.0).clamp(0.0, 1.0).mul(max_value).round();
  if (bit_depth == 16) {
    q = q.to(at::kInt).contiguous();
    const int32_t* p = q.data_ptr<int32_t>();
    raw.u16.assign(p, p + q.numel());
  } else {
    q = q.to(at::kByte).contiguous();
    raw.u8.assign(q.data_ptr<uint8_t>(), q.data_ptr<uint8_t>() + q.numel());
  }
  return raw;
}

}  // namespace detail

namespace {

void write_bytes(const std::string& path, const std::string& bytes, const char* what) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  CONVIRT_CHECK(out.good(), "cannot write ", what, " ", path, ": ", std::strerror(errno));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  CONVIRT_CHECK(out.good(), "cannot write ", what, " ", path, ": write failed");
}

}  // namespace

std::string encode_png(const torch::Tensor& image, int bit_depth) {
  detail::RawImage raw = detail::to_raw(image, bit_depth, "encode_png");
  return detail::encode_png_raw(raw);
}

std::string encode_jpeg(const torch::Tensor& image, int quality) {
  CONVIRT_CHECK_VALUE(quality >= 1 && quality <= 100,
                      "encode_jpeg: quality must be in [1, 100], got ", quality);
  detail::RawImage raw = detail::to_raw(image, 8, "encode_jpeg");
  CONVIRT_CHECK_VALUE(raw.channels != 4, "encode_jpeg: JPEG has no alpha; image must have 1 or 3 ",
                      "channels, got 4");
  return detail::encode_jpeg_raw(raw, quality);
}

void write_png(const std::string& path, const torch::Tensor& image, int bit_depth) {
  write_bytes(path, encode_png(image, bit_depth), "PNG");
}

void write_jpeg(const std::string& path, const torch::Tensor& image, int quality) {
  write_bytes(path, encode_jpeg(image, quality), "JPEG");
}

}  // namespace convirt::image
