#pragma once
// Image decoding and encoding: JPEG (libjpeg-turbo), PNG (libpng, 8/16-bit, gray/RGB/RGBA/palette)
// and DICOM (DCMTK) into [C, H, W] tensors. The format is taken from the content (magic bytes),
// never from the file name, so a mislabelled file still decodes and a non-image file fails with a
// clear message.

#include <torch/arg.h>
#include <torch/types.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace convirt::image {

/// What a byte buffer holds, by its magic bytes.
enum class ImageFormat { kUnknown, kJpeg, kPng, kDicom };

/// "jpeg", "png", "dicom" or "unknown".
const char* format_name(ImageFormat format);

/// Detects the format from the first bytes: JPEG (FF D8 FF), PNG (89 'PNG' 0D 0A 1A 0A), DICOM
/// ('DICM' at offset 128, the Part 10 preamble). Never throws.
/// Example: if (detect_format(buf.data(), buf.size()) == ImageFormat::kPng) { ... }
ImageFormat detect_format(const uint8_t* data, size_t size);

/// Whether this build can decode a format (each codec library is optional at build time; JPEG and
/// PNG are always present in a default build, DICOM needs DCMTK).
bool codec_available(ImageFormat format);

/// How DICOM pixel values (after the rescale slope/intercept, i.e. in modality units) become [0,
/// 1].
enum class DicomIntensity {
  /// The window (center/width) given in the options, else the file's first
  /// WindowCenter/WindowWidth,
  /// else kMinMax. The linear window function of DICOM PS3.3 C.11.2.1.2.
  kWindow,
  /// (v - min) / (max - min) over the image.
  kMinMax,
  /// The stored range: v / (2^BitsStored - 1) for unsigned pixels, shifted for signed ones; no
  /// rescale.
  kBitDepth,
};

/// Default of the largest image the decoders accept, in pixels (width x height x frames): 2^27 =
/// 134,217,728 (e.g. 16384 x 8192; chest X-rays are below 2^25). A header declaring more is refused
/// before any pixel memory is allocated, so a "decompression bomb" (a small file declaring huge
/// dimensions) cannot exhaust memory.
constexpr int64_t kDefaultMaxImagePixels = int64_t{1} << 27;

/// The process-wide pixel limit that ReadImageOptions::max_pixels == 0 stands for (initially
/// kDefaultMaxImagePixels). Thread-safe.
int64_t max_image_pixels();

/// Changes the process-wide pixel limit (e.g. for very large scans read through the datasets, which
/// use default options). Throws a ValueError unless `pixels` > 0.
/// Example: convirt::image::set_max_image_pixels(int64_t{1} << 30);
void set_max_image_pixels(int64_t pixels);

/// Options of read_image / decode_image.
/// Example: auto img = read_image("cxr.dcm", ReadImageOptions().channels(1).window(-600, 1500));
struct ReadImageOptions {
  /// 0: keep the file's layout (gray -> 1 channel, RGB/RGBA/palette -> 3, alpha dropped);
  /// 1: convert to gray (ITU-R 601 luma, as PIL's convert("L")); 3: replicate gray into RGB.
  TORCH_ARG(int64_t, channels) = 0;
  /// torch::kFloat32 (values in [0, 1]) or torch::kUInt8 (0..255; 16-bit sources are rounded to 8
  /// bit).
  TORCH_ARG(c10::ScalarType, dtype) = c10::kFloat;
  /// JPEG only: when > 0, decode with libjpeg-turbo's DCT scaling (1/2, 1/4, 1/8) to the smallest
  /// size whose longer side is still >= this many pixels (like PIL's Image.draft); a large speed-up
  /// when the image is resized to a small size afterwards. 0 decodes at full size.
  TORCH_ARG(int64_t, draft_longer_side) = 0;
  /// DICOM: how modality values map to [0, 1].
  TORCH_ARG(DicomIntensity, dicom_intensity) = DicomIntensity::kWindow;
  /// DICOM: explicit window center and width (modality units); width <= 0 means "use the file's".
  TORCH_ARG(double, window_center) = 0.0;
  TORCH_ARG(double, window_width) = 0.0;
  /// DICOM: invert MONOCHROME1 images so that, as in MONOCHROME2, higher means brighter.
  TORCH_ARG(bool, invert_monochrome1) = true;
  /// Largest accepted width x height (x frames for DICOM), checked against the header before
  /// decoding; 0 means the process-wide max_image_pixels(). A larger image is a ValueError naming
  /// the limit.
  TORCH_ARG(int64_t, max_pixels) = 0;

 public:
  /// Sets an explicit DICOM window.
  ReadImageOptions& window(double center, double width) {
    window_center_ = center;
    window_width_ = width;
    return *this;
  }
};

/// Decodes an image file by content. Returns [C, H, W] (C = 1 gray, 3 RGB) in the options' dtype
/// (float32 in [0, 1] by default). Throws c10::Error (Python: RuntimeError/ValueError) naming the
/// path and the reason when the file is missing, empty, truncated, corrupt or of an unsupported
/// format. Example: torch::Tensor x = convirt::image::read_image("p10/s1/view1.jpg");  // [1, H, W]
/// float
torch::Tensor read_image(const std::string& path, const ReadImageOptions& options = {});

/// Decodes an encoded image held in memory (same rules as read_image; messages say "<memory>").
/// Example: auto x = decode_image(bytes.data(), bytes.size());
torch::Tensor decode_image(const uint8_t* data, size_t size, const ReadImageOptions& options = {});

/// Reads a whole file into memory; throws naming the path when it cannot.
std::string read_file_bytes(const std::string& path);

/// Header-level facts of an encoded image, read without decoding the pixels.
struct ImageInfo {
  ImageFormat format = ImageFormat::kUnknown;
  int64_t width = 0;
  int64_t height = 0;
  int64_t channels = 0;   ///< channels read_image returns with channels(0)
  int64_t bit_depth = 0;  ///< bits per sample in the file (8, 16, 12, ...)
};

/// Reads format, size, channels and bit depth of a file. Throws like read_image.
/// Example: auto info = image_info("a.png"); // info.width, info.height
ImageInfo image_info(const std::string& path);

/// image_info() of an encoded image held in memory (messages say "<memory>").
/// Example: auto info = image_info(bytes.data(), bytes.size());
ImageInfo image_info(const uint8_t* data, size_t size);

/// Writes a PNG. `image` is [C, H, W] (C = 1, 3 or 4) or [H, W]; float values in [0, 1] are
/// quantised (round to nearest) to 8 or 16 bits, uint8 is written as is (bit_depth must then be 8).
/// Example: write_png("out.png", torch::rand({1, 64, 64}), 16);
void write_png(const std::string& path, const torch::Tensor& image, int bit_depth = 8);

/// Writes a baseline JPEG (quality 1..100; RGB with 4:2:0 chroma subsampling, gray as one channel).
/// `image` as for write_png (C = 1 or 3).
/// Example: write_jpeg("out.jpg", torch::rand({3, 64, 64}), 90);
void write_jpeg(const std::string& path, const torch::Tensor& image, int quality = 95);

/// Encodes a PNG / JPEG into memory (same rules as write_png / write_jpeg).
std::string encode_png(const torch::Tensor& image, int bit_depth = 8);
std::string encode_jpeg(const torch::Tensor& image, int quality = 95);

/// Options of write_dicom.
/// Example: write_dicom("a.dcm", pixels,
/// WriteDicomOptions().photometric("MONOCHROME1").bits_stored(12));
struct WriteDicomOptions {
  /// "MONOCHROME2" (higher = brighter) or "MONOCHROME1" (higher = darker).
  TORCH_ARG(std::string, photometric) = "MONOCHROME2";
  /// BitsStored: 8 for 8-bit allocation, up to 16 for 16-bit.
  TORCH_ARG(int64_t, bits_stored) = 16;
  TORCH_ARG(double, rescale_slope) = 1.0;
  TORCH_ARG(double, rescale_intercept) = 0.0;
  /// Written when width > 0.
  TORCH_ARG(double, window_center) = 0.0;
  TORCH_ARG(double, window_width) = 0.0;
  TORCH_ARG(std::string, patient_id) = "";
  TORCH_ARG(std::string, modality) = "CR";
  /// (0018,5101) View Position, e.g. "PA", "AP"; empty omits it.
  TORCH_ARG(std::string, view_position) = "";
};

/// Writes an uncompressed (explicit VR little endian) single-frame grayscale DICOM file from stored
/// pixel values: `pixels` is [H, W] or [1, H, W] of an integer dtype (uint8 -> 8-bit allocation,
/// anything else -> 16-bit unsigned; values must fit BitsStored). Needs DCMTK at build time.
void write_dicom(const std::string& path, const torch::Tensor& pixels,
                 const WriteDicomOptions& options = {});

}  // namespace convirt::image
