#pragma once
// Private seam between the codec files of the image component. Not installed.

#include <convirt/image/io.h>

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::image::detail {

/// Interleaved (HWC) samples as a codec produced them: 8-bit in u8, or 16-bit in u16.
struct RawImage {
  int64_t width = 0, height = 0, channels = 0;
  int bit_depth = 8;
  std::vector<uint8_t> u8;
  std::vector<uint16_t> u16;
};

/// HWC raw samples -> [C, H, W] in the options' dtype and channel count.
at::Tensor finish(const RawImage& raw, const ReadImageOptions& options);

/// [H, W] float intensities in [0, 1] (DICOM) -> [C, H, W] in the options' dtype and channel count.
at::Tensor finish_float(at::Tensor gray01, const ReadImageOptions& options);

/// Decoders; `where` is the path or "<memory>" for messages. Each throws c10::Error on bad input.
RawImage decode_jpeg(const uint8_t* data, size_t size, const ReadImageOptions& options,
                     const std::string& where);
RawImage decode_png(const uint8_t* data, size_t size, const ReadImageOptions& options,
                    const std::string& where);
at::Tensor decode_dicom(const uint8_t* data, size_t size, const ReadImageOptions& options,
                        const std::string& where);
ImageInfo dicom_info(const uint8_t* data, size_t size, const std::string& where);

/// Throws a ValueError when width x height x frames exceeds the options' pixel limit
/// (ReadImageOptions::max_pixels, else max_image_pixels()); `format` names the codec in the
/// message.
void check_pixel_limit(int64_t width, int64_t height, int64_t frames,
                       const ReadImageOptions& options, const char* format,
                       const std::string& where);

/// Encoders and header readers on raw samples (codecs.cpp).
std::string encode_png_raw(RawImage& raw);
std::string encode_jpeg_raw(const RawImage& raw, int quality);
ImageInfo jpeg_info(const uint8_t* data, size_t size, const std::string& where);
ImageInfo png_info(const uint8_t* data, size_t size, const std::string& where);

/// [C, H, W] / [H, W] float or uint8 -> HWC uint8 or uint16 samples, for the encoders.
RawImage to_raw(const at::Tensor& image, int bit_depth, const char* fn);

}  // namespace convirt::image::detail
