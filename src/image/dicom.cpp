// DICOM through DCMTK: decode (with JPEG / JPEG-LS / RLE transfer syntaxes decompressed by DCMTK's
// codecs), modality rescale, VOI window, MONOCHROME1 inversion; and a writer for test fixtures.
#include "io_internal.h"

#include <convirt/core/check.h>

#ifdef CONVIRT_IMAGE_WITH_DCMTK
#include <dcmtk/config/osconfig.h>  // must come first: DCMTK's headers depend on it

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcistrmb.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcxfer.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#include <zlib.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <mutex>

namespace convirt::image {
namespace detail {

#ifdef CONVIRT_IMAGE_WITH_DCMTK
namespace {

void init_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK logs parser warnings to stderr by default; convirt reports failures through exceptions.
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
  });
}

struct Parsed {
  DcmFileFormat file;
};

std::string hex4(unsigned v) {
  static const char* digits = "0123456789ABCDEF";
  std::string out(4, '0');
  for (int i = 3; i >= 0; --i, v >>= 4) out[static_cast<size_t>(i)] = digits[v & 0xF];
  return out;
}

// Bytes a deflated dataset may inflate to besides its pixels: the other elements of a radiograph
// (headers, overlays, an icon) are far below this.
constexpr size_t kDeflateHeadroomBytes = size_t{16} << 20;

// The largest inflated dataset accepted for images of at most `max_pixels` pixels: every pixel at
// 6 bytes (16-bit RGB, more than any decodable layout) plus the headroom.
size_t max_inflated_bytes(int64_t max_pixels) {
  return static_cast<size_t>(std::max<int64_t>(max_pixels, 0)) * 6 + kDeflateHeadroomBytes;
}

// Inflates a Deflated Explicit VR Little Endian dataset (raw deflate, PS3.5 A.5) with an output
// cap. DCMTK inflates as it parses with no bound, so a few kilobytes of deflated zeros would become
// gigabytes; inflating here first refuses such a "deflate bomb" after at most `limit` bytes.
std::vector<uint8_t> inflate_dataset(const uint8_t* data, size_t size, size_t limit,
                                     int64_t max_pixels, const std::string& where) {
  z_stream zs{};
  CONVIRT_CHECK(inflateInit2(&zs, -MAX_WBITS) == Z_OK, "cannot decode DICOM ", where,
                ": cannot start inflating the deflated dataset");
  std::vector<uint8_t> out;
  uint8_t chunk[1 << 16];
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(std::min<size_t>(size, std::numeric_limits<uInt>::max()));
  int status = Z_OK;
  while (status != Z_STREAM_END) {
    zs.next_out = chunk;
    zs.avail_out = sizeof(chunk);
    status = inflate(&zs, Z_NO_FLUSH);
    const size_t got = sizeof(chunk) - zs.avail_out;
    if (status != Z_OK && status != Z_STREAM_END) {
      const std::string why = zs.msg ? zs.msg : (status == Z_BUF_ERROR ? "truncated" : "corrupt");
      inflateEnd(&zs);
      CONVIRT_CHECK(false, "cannot decode DICOM ", where, ": the deflated dataset is corrupt (",
                    why, ")");
    }
    if (out.size() + got > limit) {
      inflateEnd(&zs);
      CONVIRT_CHECK_VALUE(false, "cannot decode DICOM ", where, ": its deflated dataset of ", size,
                          " bytes inflates to more than ", limit,
                          " bytes, the limit for images of at most ", max_pixels,
                          " pixels (raise it with ReadImageOptions::max_pixels or "
                          "convirt::image::set_max_image_pixels)");
    }
    out.insert(out.end(), chunk, chunk + got);
    if (status == Z_OK && got == 0 && zs.avail_in == 0) {
      inflateEnd(&zs);
      CONVIRT_CHECK(false, "cannot decode DICOM ", where,
                    ": the deflated dataset is corrupt (truncated)");
    }
  }
  inflateEnd(&zs);
  return out;
}

// Walks the element headers of a Part 10 buffer and refuses an element whose declared length runs
// past the end of the buffer. DCMTK allocates an element's declared length before reading its
// value, so without this check a few hundred bytes declaring a 4 GB element allocate 4 GB (found by
// fuzz_image). Values are skipped, not interpreted; explicit-VR sequences and all items are walked
// into (their contents are elements), encapsulated pixel data fragments are skipped as bytes. With
// every defined length inside the buffer, no allocation DCMTK makes from a length exceeds the file
// size. A deflated dataset is inflated (up to max_inflated_bytes(max_pixels)) and its elements are
// walked the same way, against the inflated size.
void walk_elements(const uint8_t* data, size_t size, size_t start, bool in_meta, int64_t max_pixels,
                   const std::string& where) {
  bool explicit_vr = true, little = true, encapsulated = false;
  std::string transfer;
  auto u16 = [&](size_t at) -> uint32_t {
    return little ? data[at] | (data[at + 1] << 8) : (data[at] << 8) | data[at + 1];
  };
  auto u32 = [&](size_t at) -> uint32_t {
    return little ? u16(at) | (u16(at + 2) << 16) : (u16(at) << 16) | u16(at + 2);
  };
  for (size_t pos = start; size - pos >= 8;) {
    uint32_t group = u16(pos);
    if (in_meta && group != 0x0002) {
      in_meta = false;
      while (!transfer.empty() && (transfer.back() == '\0' || transfer.back() == ' '))
        transfer.pop_back();
      // Without a transfer syntax DCMTK guesses the encoding, and the walk could read the lengths
      // differently from it; such files (and unknown syntaxes) cannot be decoded anyway.
      CONVIRT_CHECK(!transfer.empty(), "cannot decode DICOM ", where,
                    ": no TransferSyntaxUID (0002,0010) in the file meta information");
      const DcmXfer xfer(transfer.c_str());
      CONVIRT_CHECK(xfer.getXfer() != EXS_Unknown, "cannot decode DICOM ", where,
                    ": unknown transfer syntax '", transfer, "'");
      if (transfer == "1.2.840.10008.1.2.1.99") {  // deflated: the rest is raw deflate
        const auto inflated = inflate_dataset(data + pos, size - pos,
                                              max_inflated_bytes(max_pixels), max_pixels, where);
        walk_elements(inflated.data(), inflated.size(), 0, false, max_pixels, where);
        return;
      }
      explicit_vr = xfer.isExplicitVR();
      little = xfer.isLittleEndian();
      group = u16(pos);
    }
    const uint32_t element = u16(pos + 2);
    size_t header = 8;
    uint32_t length = 0;
    bool sequence = false;
    if (group == 0xFFFE) {  // item and delimiters: tag + 32-bit length, no VR
      length = u32(pos + 4);
      if (element == 0xE0DD) encapsulated = false;
      if (element != 0xE000 || length == 0xFFFFFFFFu || !encapsulated) {
        pos += header;  // delimiters, and items holding elements: walk into them
        continue;
      }
    } else if (explicit_vr) {
      const char vr[2] = {static_cast<char>(data[pos + 4]), static_cast<char>(data[pos + 5])};
      // DCMTK's reading of a VR that is not two capital letters is not one the walk can mirror
      // reliably; no valid file has one.
      CONVIRT_CHECK(vr[0] >= 'A' && vr[0] <= 'Z' && vr[1] >= 'A' && vr[1] <= 'Z',
                    "cannot decode DICOM ", where, ": element (", hex4(group), ",", hex4(element),
                    ") has an invalid VR");
      // The VRs with a 16-bit length; every other VR, including one DCMTK does not know (which it
      // reads like UN), has 2 reserved bytes and a 32-bit length.
      static const char* kShortVrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT",
                                        "FL", "FD", "IS", "LO", "LT", "PN", "SH",
                                        "SL", "SS", "ST", "TM", "UI", "UL", "US"};
      const bool long_form =
          std::none_of(std::begin(kShortVrs), std::end(kShortVrs),
                       [&](const char* v) { return v[0] == vr[0] && v[1] == vr[1]; });
      if (long_form) {
        if (size - pos < 12) break;
        length = u32(pos + 8);
        header = 12;
      } else {
        length = u16(pos + 6);
      }
      sequence = vr[0] == 'S' && vr[1] == 'Q';
    } else {
      length = u32(pos + 4);
    }
    pos += header;
    if (length == 0xFFFFFFFFu) {  // undefined length: a sequence, or encapsulated pixel data
      if (group == 0x7FE0 && element == 0x0010) encapsulated = true;
      continue;
    }
    CONVIRT_CHECK(length <= size - pos, "cannot decode DICOM ", where, ": element (", hex4(group),
                  ",", hex4(element), ") declares ", length, " bytes but only ", size - pos,
                  " remain (truncated or corrupt file)");
    if (in_meta && group == 0x0002 && element == 0x0010) {
      transfer.assign(reinterpret_cast<const char*>(data + pos), length);
    }
    if (!sequence) pos += length;
  }
}

void check_element_lengths(const uint8_t* data, size_t size, int64_t max_pixels,
                           const std::string& where) {
  if (size < 132 || std::memcmp(data + 128, "DICM", 4) != 0) return;
  walk_elements(data, size, 132, true, max_pixels, where);
}

// `max_pixels`: the pixel limit in force, which also bounds a deflated dataset's inflated size.
void parse(Parsed& p, const uint8_t* data, size_t size, int64_t max_pixels,
           const std::string& where) {
  check_element_lengths(data, size, max_pixels, where);
  init_dcmtk();
  DcmInputBufferStream stream;
  stream.setBuffer(data, static_cast<offile_off_t>(size));
  stream.setEos();
  p.file.transferInit();
  OFCondition status = p.file.read(stream);
  p.file.transferEnd();
  CONVIRT_CHECK(status.good(), "cannot decode DICOM ", where, ": ", status.text());
}

template <typename T>
T get_uint16(DcmDataset* ds, const DcmTagKey& key, const char* name, const std::string& where,
             bool required, T fallback) {
  Uint16 v = 0;
  if (ds->findAndGetUint16(key, v).good()) return static_cast<T>(v);
  CONVIRT_CHECK(!required, "cannot decode DICOM ", where, ": missing ", name);
  return fallback;
}

}  // namespace

ImageInfo dicom_info(const uint8_t* data, size_t size, const std::string& where) {
  Parsed p;
  parse(p, data, size, max_image_pixels(), where);
  DcmDataset* ds = p.file.getDataset();
  ImageInfo info;
  info.format = ImageFormat::kDicom;
  info.height = get_uint16<int64_t>(ds, DCM_Rows, "Rows", where, true, 0);
  info.width = get_uint16<int64_t>(ds, DCM_Columns, "Columns", where, true, 0);
  info.channels = get_uint16<int64_t>(ds, DCM_SamplesPerPixel, "SamplesPerPixel", where, false, 1);
  info.bit_depth = get_uint16<int64_t>(ds, DCM_BitsStored, "BitsStored", where, false, 8);
  return info;
}

at::Tensor decode_dicom(const uint8_t* data, size_t size, const ReadImageOptions& options,
                        const std::string& where) {
  Parsed p;
  parse(p, data, size, options.max_pixels() > 0 ? options.max_pixels() : max_image_pixels(), where);
  DcmDataset* ds = p.file.getDataset();

  // Before decompression: DCMTK's codecs allocate Rows x Columns x frames samples up front.
  {
    const int64_t declared_rows = get_uint16<int64_t>(ds, DCM_Rows, "Rows", where, true, 0);
    const int64_t declared_cols = get_uint16<int64_t>(ds, DCM_Columns, "Columns", where, true, 0);
    Sint32 frames = 1;
    if (ds->findAndGetSint32(DCM_NumberOfFrames, frames).bad() || frames < 1) frames = 1;
    check_pixel_limit(declared_cols, declared_rows, frames, options, "DICOM", where);
  }

  const DcmXfer xfer(ds->getOriginalXfer());
  if (xfer.isEncapsulated()) {
    OFCondition st = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    CONVIRT_CHECK(st.good() && ds->canWriteXfer(EXS_LittleEndianExplicit), "cannot decode DICOM ",
                  where, ": cannot decompress transfer syntax ", xfer.getXferName(), " (",
                  st.text(), ")");
  }

  const int64_t rows = get_uint16<int64_t>(ds, DCM_Rows, "Rows", where, true, 0);
  const int64_t cols = get_uint16<int64_t>(ds, DCM_Columns, "Columns", where, true, 0);
  const int spp = get_uint16<int>(ds, DCM_SamplesPerPixel, "SamplesPerPixel", where, false, 1);
  const int allocated = get_uint16<int>(ds, DCM_BitsAllocated, "BitsAllocated", where, true, 0);
  const int stored = get_uint16<int>(ds, DCM_BitsStored, "BitsStored", where, false, allocated);
  const int high_bit = get_uint16<int>(ds, DCM_HighBit, "HighBit", where, false, stored - 1);
  const bool is_signed =
      get_uint16<int>(ds, DCM_PixelRepresentation, "PixelRepresentation", where, false, 0) == 1;
  OFString photometric;
  ds->findAndGetOFString(DCM_PhotometricInterpretation, photometric);
  CONVIRT_CHECK(rows > 0 && cols > 0, "cannot decode DICOM ", where, ": invalid size ", cols, "x",
                rows);
  CONVIRT_CHECK(allocated == 8 || allocated == 16, "cannot decode DICOM ", where,
                ": BitsAllocated must be 8 or 16, got ", allocated);
  CONVIRT_CHECK(stored >= 1 && stored <= allocated && high_bit == stored - 1,
                "cannot decode DICOM ", where, ": unsupported BitsStored/HighBit ", stored, "/",
                high_bit);
  const int64_t n = rows * cols;

  if (spp == 3) {
    CONVIRT_CHECK(allocated == 8 && photometric == "RGB", "cannot decode DICOM ", where,
                  ": colour images must be 8-bit RGB, got ", allocated, "-bit ",
                  photometric.c_str());
    const Uint8* px = nullptr;
    unsigned long count = 0;
    CONVIRT_CHECK(ds->findAndGetUint8Array(DCM_PixelData, px, &count).good() && px != nullptr &&
                      count >= static_cast<unsigned long>(3 * n),
                  "cannot decode DICOM ", where, ": pixel data missing or truncated");
    const int planar =
        get_uint16<int>(ds, DCM_PlanarConfiguration, "PlanarConfiguration", where, false, 0);
    RawImage raw;
    raw.width = cols;
    raw.height = rows;
    raw.channels = 3;
    raw.u8.resize(3 * n);
    for (int64_t i = 0; i < n; ++i) {
      for (int k = 0; k < 3; ++k) raw.u8[3 * i + k] = planar ? px[k * n + i] : px[3 * i + k];
    }
    return finish(raw, options);
  }
  CONVIRT_CHECK(spp == 1 && (photometric == "MONOCHROME1" || photometric == "MONOCHROME2"),
                "cannot decode DICOM ", where,
                ": unsupported photometric interpretation: SamplesPerPixel ", spp, ", ",
                photometric.empty() ? "(none)" : photometric.c_str());

  // Stored values, masked to BitsStored and sign-extended, first frame only.
  std::vector<double> stored_values(n);
  const uint32_t mask = stored >= 32 ? 0xFFFFFFFFu : ((1u << stored) - 1u);
  const uint32_t sign_bit = 1u << (stored - 1);
  auto to_value = [&](uint32_t v) -> double {
    v &= mask;
    if (is_signed && (v & sign_bit))
      return static_cast<double>(static_cast<int64_t>(v) - (1ll << stored));
    return static_cast<double>(v);
  };
  unsigned long count = 0;
  if (allocated == 8) {
    const Uint8* px = nullptr;
    CONVIRT_CHECK(ds->findAndGetUint8Array(DCM_PixelData, px, &count).good() && px != nullptr &&
                      count >= static_cast<unsigned long>(n),
                  "cannot decode DICOM ", where, ": pixel data missing or truncated (", count,
                  " of ", n, " samples)");
    for (int64_t i = 0; i < n; ++i) stored_values[i] = to_value(px[i]);
  } else {
    const Uint16* px = nullptr;
    CONVIRT_CHECK(ds->findAndGetUint16Array(DCM_PixelData, px, &count).good() && px != nullptr &&
                      count >= static_cast<unsigned long>(n),
                  "cannot decode DICOM ", where, ": pixel data missing or truncated (", count,
                  " of ", n, " samples)");
    for (int64_t i = 0; i < n; ++i) stored_values[i] = to_value(px[i]);
  }

  at::Tensor out = at::empty({rows, cols}, at::kFloat);
  float* dst = out.data_ptr<float>();
  if (options.dicom_intensity() == DicomIntensity::kBitDepth) {
    const double range = static_cast<double>((1ll << stored) - 1);
    const double offset = is_signed ? static_cast<double>(1ll << (stored - 1)) : 0.0;
    for (int64_t i = 0; i < n; ++i)
      dst[i] = static_cast<float>((stored_values[i] + offset) / range);
  } else {
    Float64 slope = 1.0, intercept = 0.0;
    if (ds->findAndGetFloat64(DCM_RescaleSlope, slope).bad() || !std::isfinite(slope) ||
        slope == 0.0) {
      slope = 1.0;
    }
    if (ds->findAndGetFloat64(DCM_RescaleIntercept, intercept).bad() || !std::isfinite(intercept)) {
      intercept = 0.0;
    }
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (int64_t i = 0; i < n; ++i) {
      const double v = stored_values[i] * slope + intercept;
      stored_values[i] = v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    double center = options.window_center(), width = options.window_width();
    bool use_window = options.dicom_intensity() == DicomIntensity::kWindow && width > 0.0;
    if (options.dicom_intensity() == DicomIntensity::kWindow && !use_window) {
      Float64 c = 0.0, w = 0.0;
      if (ds->findAndGetFloat64(DCM_WindowCenter, c).good() &&
          ds->findAndGetFloat64(DCM_WindowWidth, w).good() && w >= 1.0 && std::isfinite(c)) {
        center = c;
        width = w;
        use_window = true;
      }
    }
    if (use_window) {
      // DICOM PS3.3 C.11.2.1.2.1, the "LINEAR" VOI LUT function, scaled to [0, 1].
      const double c = center - 0.5, w = width - 1.0;
      for (int64_t i = 0; i < n; ++i) {
        const double x = stored_values[i];
        double y;
        if (w <= 0.0) {
          y = x > c ? 1.0 : 0.0;
        } else if (x <= c - w / 2) {
          y = 0.0;
        } else if (x > c + w / 2) {
          y = 1.0;
        } else {
          y = (x - c) / w + 0.5;
        }
        dst[i] = static_cast<float>(y);
      }
    } else {
      const double range = hi - lo;
      for (int64_t i = 0; i < n; ++i) {
        dst[i] = range > 0 ? static_cast<float>((stored_values[i] - lo) / range) : 0.0f;
      }
    }
  }
  if (photometric == "MONOCHROME1" && options.invert_monochrome1()) out = 1.0f - out;
  return finish_float(out, options);
}

#else  // no DCMTK in this build

ImageInfo dicom_info(const uint8_t*, size_t, const std::string& where) {
  CONVIRT_CHECK(false, "cannot decode DICOM ", where, ": convirt was built without DCMTK");
  return {};
}

at::Tensor decode_dicom(const uint8_t*, size_t, const ReadImageOptions&, const std::string& where) {
  CONVIRT_CHECK(false, "cannot decode DICOM ", where, ": convirt was built without DCMTK");
  return {};
}

#endif

}  // namespace detail

void write_dicom(const std::string& path, const torch::Tensor& pixels,
                 const WriteDicomOptions& options) {
#ifdef CONVIRT_IMAGE_WITH_DCMTK
  CONVIRT_CHECK_VALUE(
      pixels.defined() && (pixels.dim() == 2 || (pixels.dim() == 3 && pixels.size(0) == 1)),
      "write_dicom: pixels must be [H, W] or [1, H, W], got ",
      pixels.defined() ? convirt::detail::shape_str(pixels.sizes()) : "undefined");
  CONVIRT_CHECK_TYPE(!at::isFloatingType(pixels.scalar_type()) && pixels.scalar_type() != at::kBool,
                     "write_dicom: pixels must hold stored integer values, got ",
                     pixels.scalar_type());
  CONVIRT_CHECK_VALUE(
      options.photometric() == "MONOCHROME1" || options.photometric() == "MONOCHROME2",
      "write_dicom: photometric must be MONOCHROME1 or MONOCHROME2, got ", options.photometric());
  at::Tensor img = pixels.reshape({pixels.size(-2), pixels.size(-1)}).to(at::kCPU);
  const int64_t rows = img.size(0), cols = img.size(1);
  CONVIRT_CHECK_VALUE(rows > 0 && cols > 0 && rows <= 65535 && cols <= 65535,
                      "write_dicom: size must be in [1, 65535], got ", cols, "x", rows);
  const bool eight = img.scalar_type() == at::kByte;
  const int allocated = eight ? 8 : 16;
  const int64_t stored = options.bits_stored();
  CONVIRT_CHECK_VALUE(stored >= 1 && stored <= allocated,
                      "write_dicom: bits_stored must be in [1, ", allocated, "] for ", allocated,
                      "-bit pixels, got ", stored);
  const int64_t lo = img.min().item<int64_t>(), hi = img.max().item<int64_t>();
  CONVIRT_CHECK_VALUE(lo >= 0 && hi < (1ll << stored), "write_dicom: pixel values must be in [0, ",
                      (1ll << stored) - 1, "] for bits_stored ", stored, ", got [", lo, ", ", hi,
                      "]");
  detail::init_dcmtk();
  DcmFileFormat file;
  DcmDataset* ds = file.getDataset();
  char uid[100];
  auto put = [&](const DcmTagKey& key, const std::string& value) {
    OFCondition st = ds->putAndInsertString(key, value.c_str());
    CONVIRT_CHECK(st.good(), "write_dicom: cannot set ", DcmTag(key).getTagName(), ": ", st.text());
  };
  auto put16 = [&](const DcmTagKey& key, int64_t value) {
    OFCondition st = ds->putAndInsertUint16(key, static_cast<Uint16>(value));
    CONVIRT_CHECK(st.good(), "write_dicom: cannot set ", DcmTag(key).getTagName(), ": ", st.text());
  };
  auto num = [](double v) {
    std::ostringstream os;
    os.precision(10);
    os << v;
    return os.str();
  };
  put(DCM_SOPClassUID, UID_ComputedRadiographyImageStorage);
  put(DCM_SOPInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_INSTANCE_UID_ROOT));
  put(DCM_StudyInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_STUDY_UID_ROOT));
  put(DCM_SeriesInstanceUID, dcmGenerateUniqueIdentifier(uid, SITE_SERIES_UID_ROOT));
  put(DCM_Modality, options.modality());
  if (!options.patient_id().empty()) put(DCM_PatientID, options.patient_id());
  if (!options.view_position().empty()) put(DCM_ViewPosition, options.view_position());
  put16(DCM_SamplesPerPixel, 1);
  put(DCM_PhotometricInterpretation, options.photometric());
  put16(DCM_Rows, rows);
  put16(DCM_Columns, cols);
  put16(DCM_BitsAllocated, allocated);
  put16(DCM_BitsStored, stored);
  put16(DCM_HighBit, stored - 1);
  put16(DCM_PixelRepresentation, 0);
  put(DCM_RescaleSlope, num(options.rescale_slope()));
  put(DCM_RescaleIntercept, num(options.rescale_intercept()));
  if (options.window_width() > 0) {
    put(DCM_WindowCenter, num(options.window_center()));
    put(DCM_WindowWidth, num(options.window_width()));
  }
  OFCondition st;
  if (eight) {
    at::Tensor c = img.contiguous();
    st = ds->putAndInsertUint8Array(DCM_PixelData, c.data_ptr<uint8_t>(),
                                    static_cast<unsigned long>(c.numel()));
  } else {
    at::Tensor c = img.to(at::kInt).contiguous();
    std::vector<Uint16> buf(c.data_ptr<int32_t>(), c.data_ptr<int32_t>() + c.numel());
    st = ds->putAndInsertUint16Array(DCM_PixelData, buf.data(),
                                     static_cast<unsigned long>(buf.size()));
  }
  CONVIRT_CHECK(st.good(), "write_dicom: cannot set PixelData: ", st.text());
  st = file.saveFile(path.c_str(), EXS_LittleEndianExplicit);
  CONVIRT_CHECK(st.good(), "write_dicom: cannot write ", path, ": ", st.text());
#else
  (void)pixels;
  (void)options;
  CONVIRT_CHECK(false, "write_dicom: cannot write ", path, ": convirt was built without DCMTK");
#endif
}

}  // namespace convirt::image
