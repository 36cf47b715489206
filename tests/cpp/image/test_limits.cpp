// Decompression bombs: an image whose header declares huge dimensions is refused before its pixels
// are allocated, with an error naming the pixel limit; the limit is documented and overridable.
#include <convirt/image/io.h>

#include <catch2/catch.hpp>

#include <chrono>

#ifdef CONVIRT_TEST_WITH_ZLIB
#include <zlib.h>
#endif

#include "test_util.h"

using namespace convirt::image;
using Catch::Matchers::Contains;

namespace {

const uint8_t* bytes(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

void put_be16(std::string& s, size_t at, uint16_t v) {
  s[at] = static_cast<char>(v >> 8);
  s[at + 1] = static_cast<char>(v & 0xFF);
}
void put_le16(std::string& s, size_t at, uint16_t v) {
  s[at] = static_cast<char>(v & 0xFF);
  s[at + 1] = static_cast<char>(v >> 8);
}
void put_be32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
}

// A JPEG whose SOF0 frame header declares w x h (the scan data stays that of a tiny image).
std::string jpeg_declaring(uint16_t w, uint16_t h) {
  std::string jpg = encode_jpeg(torch::rand({1, 8, 8}), 90);
  const size_t sof = jpg.find("\xFF\xC0");
  REQUIRE(sof != std::string::npos);
  put_be16(jpg, sof + 5, h);
  put_be16(jpg, sof + 7, w);
  return jpg;
}

// A PNG whose IHDR declares w x h (CRC recomputed, so that libpng accepts the header and the limit
// is what refuses it).
std::string png_declaring(uint32_t w, uint32_t h) {
  std::string png = encode_png(torch::rand({1, 8, 8}));
  put_be32(png, 16, w);
  put_be32(png, 20, h);
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 12; i < 29; ++i) {
    crc ^= static_cast<uint8_t>(png[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  put_be32(png, 29, crc ^ 0xFFFFFFFFu);
  return png;
}

#ifdef CONVIRT_TEST_WITH_ZLIB
// Raw deflate (no zlib header), the encoding of a deflated DICOM dataset.
std::string raw_deflate(const std::string& in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, in.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// `dcm` (a write_dicom file, explicit VR little endian) re-encoded as Deflated Explicit VR Little
// Endian: the meta group names the deflated syntax (its group length adjusted) and the dataset
// after it is deflated; `dataset` replaces the dataset when given (a bomb's body).
std::string deflated_dicom(std::string dcm, const std::string* dataset = nullptr) {
  const size_t uid = dcm.find(std::string("\x02\x00\x10\x00UI", 6));  // TransferSyntaxUID
  REQUIRE(uid != std::string::npos);
  const size_t old_len =
      static_cast<uint8_t>(dcm[uid + 6]) | (static_cast<uint8_t>(dcm[uid + 7]) << 8);
  const std::string syntax("1.2.840.10008.1.2.1.99");  // 22 bytes: even, no padding
  dcm.replace(uid + 8, old_len, syntax);
  put_le16(dcm, uid + 6, static_cast<uint16_t>(syntax.size()));
  REQUIRE(dcm.compare(132, 6, std::string("\x02\x00\x00\x00UL", 6)) == 0);  // group length
  uint32_t group = 0;
  for (int i = 0; i < 4; ++i)
    group |= static_cast<uint32_t>(static_cast<uint8_t>(dcm[140 + i])) << (8 * i);
  group += static_cast<uint32_t>(syntax.size() - old_len);
  for (int i = 0; i < 4; ++i) dcm[140 + i] = static_cast<char>((group >> (8 * i)) & 0xFF);
  const size_t body = 144 + group;
  return dcm.substr(0, body) + raw_deflate(dataset ? *dataset : dcm.substr(body));
}
#endif

}  // namespace

TEST_CASE("limits: the default pixel limit is documented and overridable", "[image][limits]") {
  CHECK(kDefaultMaxImagePixels == (int64_t{1} << 27));
  CHECK(max_image_pixels() == kDefaultMaxImagePixels);
  CHECK_THROWS_WITH(set_max_image_pixels(0), Contains("must be > 0"));
  const std::string png = encode_png(torch::rand({1, 20, 20}));
  set_max_image_pixels(399);
  CHECK_THROWS_WITH(decode_image(bytes(png), png.size()),
                    Contains("20x20 = 400 pixels, more than the limit of 399"));
  // Per call, the options win over the process-wide value.
  CHECK(decode_image(bytes(png), png.size(), ReadImageOptions().max_pixels(400)).size(2) == 20);
  set_max_image_pixels(kDefaultMaxImagePixels);
  CHECK(decode_image(bytes(png), png.size()).size(1) == 20);
  CHECK_THROWS_WITH(decode_image(bytes(png), png.size(), ReadImageOptions().max_pixels(100)),
                    Contains("more than the limit of 100") && Contains("max_pixels"));
}

TEST_CASE("limits: a JPEG declaring 65000x65000 is refused before decoding", "[image][limits]") {
  const std::string jpg = jpeg_declaring(65000, 65000);
  CHECK(image_info(bytes(jpg), jpg.size()).width == 65000);
  CHECK_THROWS_WITH(decode_image(bytes(jpg), jpg.size()),
                    Contains("JPEG") && Contains("65000x65000 = 4225000000 pixels") &&
                        Contains("more than the limit of 134217728"));
  // Drafting does not bypass the limit: the whole-image buffers are sized from the header.
  CHECK_THROWS_WITH(decode_image(bytes(jpg), jpg.size(), ReadImageOptions().draft_longer_side(8)),
                    Contains("more than the limit"));
}

TEST_CASE("limits: a PNG declaring 60000x60000 is refused before decoding", "[image][limits]") {
  const std::string png = png_declaring(60000, 60000);
  CHECK(image_info(bytes(png), png.size()).height == 60000);
  CHECK_THROWS_WITH(decode_image(bytes(png), png.size()),
                    Contains("PNG") && Contains("60000x60000 = 3600000000 pixels") &&
                        Contains("more than the limit of 134217728"));
}

TEST_CASE("limits: a DICOM declaring 65535x65535 is refused before decoding", "[image][limits]") {
  if (!codec_available(ImageFormat::kDicom)) return;
  convirt::test::TempDir dir("convirt-bomb");
  const auto path = (dir / "a.dcm").string();
  write_dicom(path, torch::randint(0, 4095, {1, 4, 4}).to(torch::kInt16),
              WriteDicomOptions().bits_stored(12));
  std::string dcm = read_file_bytes(path);
  for (const char* tag : {"\x28\x00\x10\x00US", "\x28\x00\x11\x00US"}) {  // Rows, Columns
    const size_t at = dcm.find(std::string(tag, 6));
    REQUIRE(at != std::string::npos);
    put_le16(dcm, at + 8, 65535);
  }
  CHECK_THROWS_WITH(decode_image(bytes(dcm), dcm.size()),
                    Contains("DICOM") && Contains("65535x65535 = 4294836225 pixels") &&
                        Contains("more than the limit of 134217728"));
}

TEST_CASE("limits: a DICOM element declaring more bytes than the file holds is refused",
          "[image][limits]") {
  // Found by fuzz_image (fuzz/regressions/fuzz_image): DCMTK allocates an element's declared
  // length before reading it, so a 400-byte file could ask for gigabytes.
  if (!codec_available(ImageFormat::kDicom)) return;
  convirt::test::TempDir dir("convirt-bomb");
  const auto path = (dir / "a.dcm").string();
  write_dicom(path, torch::randint(0, 255, {4, 4}).to(torch::kUInt8),
              WriteDicomOptions().bits_stored(8));
  std::string dcm = read_file_bytes(path);
  CHECK(decode_image(bytes(dcm), dcm.size()).size(1) == 4);  // the scan accepts a valid file
  const size_t at = dcm.find(std::string("\xE0\x7F\x10\x00OB", 6));  // PixelData, 8-bit
  REQUIRE(at != std::string::npos);
  for (int i = 0; i < 4; ++i) dcm[at + 8 + i] = static_cast<char>(0x7F);
  CHECK_THROWS_WITH(decode_image(bytes(dcm), dcm.size()),
                    Contains("element (7FE0,0010) declares 2139062143 bytes but only 16 remain"));
  CHECK_THROWS_WITH(image_info(bytes(dcm), dcm.size()), Contains("declares"));
}

TEST_CASE("limits: a DICOM whose encoding DCMTK would have to guess is refused",
          "[image][limits]") {
  // Found by fuzz_image: with an unknown transfer syntax or a VR that is not two capital letters,
  // DCMTK guesses how to read the lengths, and a guess differing from the length check let a bomb
  // through (fuzz/regressions/fuzz_image/dicom_unknown_*).
  if (!codec_available(ImageFormat::kDicom)) return;
  convirt::test::TempDir dir("convirt-bomb");
  const auto path = (dir / "a.dcm").string();
  write_dicom(path, torch::randint(0, 255, {4, 4}).to(torch::kUInt8),
              WriteDicomOptions().bits_stored(8));
  const std::string good = read_file_bytes(path);
  std::string dcm = good;
  const size_t uid = dcm.find("1.2.840.10008.1.2.1");  // explicit VR little endian
  REQUIRE(uid != std::string::npos);
  dcm[uid + 18] = '7';
  CHECK_THROWS_WITH(decode_image(bytes(dcm), dcm.size()),
                    Contains("unknown transfer syntax '1.2.840.10008.1.2.7'"));
  dcm = good;
  const size_t rows = dcm.find(std::string("\x28\x00\x10\x00US", 6));
  REQUIRE(rows != std::string::npos);
  dcm[rows + 4] = '2';
  CHECK_THROWS_WITH(decode_image(bytes(dcm), dcm.size()),
                    Contains("element (0028,0010) has an invalid VR"));
}

TEST_CASE("limits: a deflated DICOM inflating past the limit is refused before DCMTK reads it",
          "[image][limits]") {
  // A deflated dataset (transfer syntax 1.2.840.10008.1.2.1.99) reaches about 1000:1, and DCMTK
  // inflates as it parses with no bound: 64 kB of deflated zeros would become 64 MB, 64 MB would
  // become 64 GB. fuzz/regressions/fuzz_image/dicom_deflate_bomb is the same shape.
#ifdef CONVIRT_TEST_WITH_ZLIB
  if (!codec_available(ImageFormat::kDicom)) return;
  convirt::test::TempDir dir("convirt-bomb");
  const auto path = (dir / "a.dcm").string();
  const auto pixels = torch::randint(0, 4095, {1, 6, 5}).to(torch::kInt16);
  write_dicom(path, pixels, WriteDicomOptions().bits_stored(12));
  const std::string plain = read_file_bytes(path);
  // A valid deflated file still decodes, to the pixels of the plain one.
  const std::string small = deflated_dicom(plain);
  REQUIRE(small.find("1.2.840.10008.1.2.1.99") != std::string::npos);
  const auto opts = ReadImageOptions().dicom_intensity(DicomIntensity::kBitDepth).max_pixels(4096);
  const auto want = decode_image(bytes(plain), plain.size(), opts);
  const auto got = decode_image(bytes(small), small.size(), opts);
  CHECK(torch::equal(got, want));
  CHECK(image_info(bytes(small), small.size()).width == 5);

  // The bomb: 64 MiB of zeros after the same meta group. With max_pixels 4096 the cap is
  // 4096 x 6 + 16 MiB = 16801792 bytes.
  const std::string zeros(size_t{64} << 20, '\0');
  const std::string bomb = deflated_dicom(plain, &zeros);
  CHECK(bomb.size() < 100000);
  const auto bomb_path = (dir / "bomb.dcm").string();
  convirt::test::write_text(bomb_path, bomb);
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(read_image(bomb_path, ReadImageOptions().max_pixels(4096)),
                    Contains("bomb.dcm") && Contains("inflates to more than 16801792 bytes") &&
                        Contains("at most 4096 pixels") && Contains("max_pixels"));
  CHECK_THROWS_AS(read_image(bomb_path, ReadImageOptions().max_pixels(4096)), c10::ValueError);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(seconds < 10.0);  // about 16 MB inflated twice, not 64 MB handed to DCMTK
  // A truncated deflate stream is an error, not a partial image.
  CHECK_THROWS_WITH(decode_image(bytes(small), small.size() - 8, opts),
                    Contains("deflated dataset is corrupt"));
#endif
}
