// JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libpng) codecs on plain buffers. No ATen here: the
// conversion to tensors lives in io.cpp, so this file compiles quickly.
#include "io_internal.h"

#include <convirt/core/check.h>

#ifdef CONVIRT_IMAGE_WITH_PNG
#include <png.h>
#endif
#ifdef CONVIRT_IMAGE_WITH_TURBOJPEG
#include <turbojpeg.h>
#endif

#include <algorithm>
#include <cstring>
#include <memory>

namespace convirt::image::detail {

#ifdef CONVIRT_IMAGE_WITH_TURBOJPEG
namespace {

// One TurboJPEG handle per thread: creating one costs more than decoding a small image, and a
// handle must not be shared between threads.
struct TjHandle {
  tjhandle h = nullptr;
  explicit TjHandle(bool compress) : h(compress ? tjInitCompress() : tjInitDecompress()) {}
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
};

tjhandle decompressor() {
  thread_local TjHandle handle(false);
  CONVIRT_CHECK(handle.h != nullptr, "libjpeg-turbo: tjInitDecompress failed");
  return handle.h;
}

tjhandle compressor() {
  thread_local TjHandle handle(true);
  CONVIRT_CHECK(handle.h != nullptr, "libjpeg-turbo: tjInitCompress failed");
  return handle.h;
}

}  // namespace

RawImage decode_jpeg(const uint8_t* data, size_t size, const ReadImageOptions& options,
                     const std::string& where) {
  tjhandle tj = decompressor();
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, data, static_cast<unsigned long>(size), &width, &height, &subsamp,
                          &colorspace) != 0) {
    CONVIRT_CHECK(false, "cannot decode JPEG ", where, ": ", tjGetErrorStr2(tj));
  }
  CONVIRT_CHECK(width > 0 && height > 0, "cannot decode JPEG ", where, ": invalid size ", width,
                "x", height);
  CONVIRT_CHECK(colorspace != TJCS_CMYK && colorspace != TJCS_YCCK, "cannot decode JPEG ", where,
                ": CMYK/YCCK JPEGs are not supported");
  // Checked on the declared size, not the drafted one: libjpeg-turbo allocates whole-image
  // coefficient buffers for progressive files before any scaling.
  check_pixel_limit(width, height, 1, options, "JPEG", where);

  int out_w = width, out_h = height;
  if (options.draft_longer_side() > 0) {
    // Scaling factors come sorted from largest to smallest; keep the smallest that still leaves the
    // longer side at least the requested size.
    int n = 0;
    tjscalingfactor* factors = tjGetScalingFactors(&n);
    for (int i = 0; i < n; ++i) {
      const auto& f = factors[i];
      if (f.num > f.denom) continue;
      int sw = TJSCALED(width, f), sh = TJSCALED(height, f);
      if (std::max(sw, sh) >= options.draft_longer_side() &&
          static_cast<int64_t>(sw) * sh < static_cast<int64_t>(out_w) * out_h) {
        out_w = sw;
        out_h = sh;
      }
    }
  }

  RawImage raw;
  raw.width = out_w;
  raw.height = out_h;
  raw.channels = colorspace == TJCS_GRAY ? 1 : 3;
  raw.bit_depth = 8;
  raw.u8.resize(static_cast<size_t>(out_w) * out_h * raw.channels);
  const int pixel_format = raw.channels == 1 ? TJPF_GRAY : TJPF_RGB;
  // Warnings (a truncated stream among them) are errors here: a half-grey image must not pass as
  // data.
  const int flags = TJFLAG_STOPONWARNING;
  if (tjDecompress2(tj, data, static_cast<unsigned long>(size), raw.u8.data(), out_w, 0, out_h,
                    pixel_format, flags) != 0) {
    CONVIRT_CHECK(false, "cannot decode JPEG ", where, ": ", tjGetErrorStr2(tj));
  }
  return raw;
}

#endif  // CONVIRT_IMAGE_WITH_TURBOJPEG

#ifdef CONVIRT_IMAGE_WITH_PNG
namespace {

struct PngMemReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

struct PngError {
  char message[256];
};

[[noreturn]] void png_error_fn(png_structp png, png_const_charp msg) {
  auto* err = static_cast<PngError*>(png_get_error_ptr(png));
  std::snprintf(err->message, sizeof(err->message), "%s", msg);
  png_longjmp(png, 1);
}

void png_warning_fn(png_structp, png_const_charp) {}

void png_read_fn(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngMemReader*>(png_get_io_ptr(png));
  if (r->size - r->pos < n) png_error(png, "truncated file (unexpected end of data)");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

// Everything touched after setjmp lives in this struct, so that longjmp leaves no object whose
// destructor would be skipped and no local whose value would be indeterminate.
struct PngReadState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngError err{};
  PngMemReader reader{};
  RawImage raw;
  std::vector<png_bytep> rows;
  ~PngReadState() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

bool png_read_all(PngReadState& s, const ReadImageOptions& options, const std::string& where) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_read_fn(s.png, &s.reader, png_read_fn);
  png_read_info(s.png, s.info);
  png_uint_32 w = 0, h = 0;
  int depth = 0, color = 0;
  png_get_IHDR(s.png, s.info, &w, &h, &depth, &color, nullptr, nullptr, nullptr);
  // Thrown outside any libpng call (png_read_info has returned), so no C frame is unwound.
  check_pixel_limit(w, h, 1, options, "PNG", where);
  // Palette -> RGB, gray < 8 bit -> 8 bit, tRNS -> alpha (then dropped), 16-bit samples kept.
  png_set_expand(s.png);
  png_set_strip_alpha(s.png);
  if (depth == 16) png_set_swap(s.png);  // PNG stores big-endian samples
  png_set_interlace_handling(s.png);
  png_read_update_info(s.png, s.info);
  const int channels = png_get_channels(s.png, s.info);
  const int out_depth = png_get_bit_depth(s.png, s.info);
  if (channels != 1 && channels != 3) png_error(s.png, "unexpected channel count after expansion");
  s.raw.width = w;
  s.raw.height = h;
  s.raw.channels = channels;
  s.raw.bit_depth = out_depth;
  const size_t row_bytes = png_get_rowbytes(s.png, s.info);
  s.rows.resize(h);
  uint8_t* base = nullptr;
  if (out_depth == 16) {
    s.raw.u16.resize(static_cast<size_t>(w) * h * channels);
    base = reinterpret_cast<uint8_t*>(s.raw.u16.data());
  } else {
    s.raw.u8.resize(static_cast<size_t>(w) * h * channels);
    base = s.raw.u8.data();
  }
  for (png_uint_32 y = 0; y < h; ++y) s.rows[y] = base + y * row_bytes;
  png_read_image(s.png, s.rows.data());
  png_read_end(s.png, nullptr);
  return true;
}

}  // namespace

RawImage decode_png(const uint8_t* data, size_t size, const ReadImageOptions& options,
                    const std::string& where) {
  PngReadState s;
  s.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &s.err, png_error_fn, png_warning_fn);
  CONVIRT_CHECK(s.png != nullptr, "libpng: png_create_read_struct failed");
  s.info = png_create_info_struct(s.png);
  CONVIRT_CHECK(s.info != nullptr, "libpng: png_create_info_struct failed");
  // Refuse absurd dimensions before allocating (a corrupt header must not exhaust memory).
  png_set_user_limits(s.png, 1u << 16, 1u << 16);
  s.reader = PngMemReader{data, size, 0};
  if (!png_read_all(s, options, where)) {
    CONVIRT_CHECK(false, "cannot decode PNG ", where, ": ", s.err.message);
  }
  return std::move(s.raw);
}

namespace {

void png_write_fn(png_structp png, png_bytep in, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<const char*>(in), n);
}
void png_flush_fn(png_structp) {}

struct PngWriteState {
  png_structp png = nullptr;
  png_infop info = nullptr;
  PngError err{};
  std::string out;
  std::vector<png_bytep> rows;
  ~PngWriteState() { png_destroy_write_struct(&png, info ? &info : nullptr); }
};

bool png_write_all(PngWriteState& s, RawImage& raw) {
  if (setjmp(png_jmpbuf(s.png))) return false;
  png_set_write_fn(s.png, &s.out, png_write_fn, png_flush_fn);
  const int color = raw.channels == 1   ? PNG_COLOR_TYPE_GRAY
                    : raw.channels == 3 ? PNG_COLOR_TYPE_RGB
                                        : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(s.png, s.info, static_cast<png_uint_32>(raw.width),
               static_cast<png_uint_32>(raw.height), raw.bit_depth, color, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  // Level 6 is zlib's default trade-off; the datasets write thousands of files.
  png_set_compression_level(s.png, 6);
  png_write_info(s.png, s.info);
  if (raw.bit_depth == 16) png_set_swap(s.png);
  const size_t row_samples = static_cast<size_t>(raw.width) * raw.channels;
  s.rows.resize(raw.height);
  for (int64_t y = 0; y < raw.height; ++y) {
    s.rows[y] = raw.bit_depth == 16 ? reinterpret_cast<png_bytep>(raw.u16.data() + y * row_samples)
                                    : raw.u8.data() + y * row_samples;
  }
  png_write_image(s.png, s.rows.data());
  png_write_end(s.png, nullptr);
  return true;
}

}  // namespace

std::string encode_png_raw(RawImage& raw) {
  PngWriteState s;
  s.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &s.err, png_error_fn, png_warning_fn);
  CONVIRT_CHECK(s.png != nullptr, "libpng: png_create_write_struct failed");
  s.info = png_create_info_struct(s.png);
  CONVIRT_CHECK(s.info != nullptr, "libpng: png_create_info_struct failed");
  if (!png_write_all(s, raw)) CONVIRT_CHECK(false, "cannot encode PNG: ", s.err.message);
  return std::move(s.out);
}

#endif  // CONVIRT_IMAGE_WITH_PNG

#ifdef CONVIRT_IMAGE_WITH_TURBOJPEG
std::string encode_jpeg_raw(const RawImage& raw, int quality) {
  tjhandle tj = compressor();
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  const int pixel_format = raw.channels == 1 ? TJPF_GRAY : TJPF_RGB;
  const int subsamp = raw.channels == 1 ? TJSAMP_GRAY : TJSAMP_420;
  int rc = tjCompress2(tj, raw.u8.data(), static_cast<int>(raw.width), 0,
                       static_cast<int>(raw.height), pixel_format, &buf, &len, subsamp, quality, 0);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> guard(buf, tjFree);
  CONVIRT_CHECK(rc == 0, "cannot encode JPEG: ", tjGetErrorStr2(tj));
  return std::string(reinterpret_cast<const char*>(buf), len);
}

ImageInfo jpeg_info(const uint8_t* data, size_t size, const std::string& where) {
  tjhandle tj = decompressor();
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, data, static_cast<unsigned long>(size), &width, &height, &subsamp,
                          &colorspace) != 0) {
    CONVIRT_CHECK(false, "cannot read JPEG header of ", where, ": ", tjGetErrorStr2(tj));
  }
  ImageInfo info;
  info.format = ImageFormat::kJpeg;
  info.width = width;
  info.height = height;
  info.channels = colorspace == TJCS_GRAY ? 1 : 3;
  info.bit_depth = 8;
  return info;
}

#endif  // CONVIRT_IMAGE_WITH_TURBOJPEG

ImageInfo png_info(const uint8_t* data, size_t size, const std::string& where) {
  // IHDR is the first chunk: 8-byte signature, 4-byte length, "IHDR", width, height, depth, color.
  CONVIRT_CHECK(size >= 29 && std::memcmp(data + 12, "IHDR", 4) == 0, "cannot read PNG header of ",
                where, ": missing IHDR chunk");
  auto be32 = [&](size_t o) {
    return (int64_t(data[o]) << 24) | (int64_t(data[o + 1]) << 16) | (int64_t(data[o + 2]) << 8) |
           int64_t(data[o + 3]);
  };
  ImageInfo info;
  info.format = ImageFormat::kPng;
  info.width = be32(16);
  info.height = be32(20);
  info.bit_depth = data[24];
  const int color = data[25];
  info.channels = (color == 0 || color == 4) ? 1 : 3;
  return info;
}

#ifndef CONVIRT_IMAGE_WITH_TURBOJPEG
RawImage decode_jpeg(const uint8_t*, size_t, const ReadImageOptions&, const std::string& where) {
  CONVIRT_CHECK(false, "cannot decode JPEG ", where, ": convirt was built without libturbojpeg");
  return {};
}
std::string encode_jpeg_raw(const RawImage&, int) {
  CONVIRT_CHECK(false, "cannot encode JPEG: convirt was built without libturbojpeg");
  return {};
}
ImageInfo jpeg_info(const uint8_t*, size_t, const std::string& where) {
  CONVIRT_CHECK(false, "cannot read JPEG ", where, ": convirt was built without libturbojpeg");
  return {};
}
#endif
#ifndef CONVIRT_IMAGE_WITH_PNG
RawImage decode_png(const uint8_t*, size_t, const ReadImageOptions&, const std::string& where) {
  CONVIRT_CHECK(false, "cannot decode PNG ", where, ": convirt was built without libpng");
  return {};
}
std::string encode_png_raw(RawImage&) {
  CONVIRT_CHECK(false, "cannot encode PNG: convirt was built without libpng");
  return {};
}
#endif

}  // namespace convirt::image::detail
