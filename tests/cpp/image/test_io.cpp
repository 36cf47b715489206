// Image decoding/encoding: round trips, channel and dtype options, DICOM intensity rules, and clear
// errors on bad files.
#include <convirt/image/io.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "test_util.h"

using namespace convirt::image;
using convirt::test::max_abs_diff;
using convirt::test::TempDir;

namespace {

void write_raw(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A deterministic image with gradients, quantised to 8 bits so that PNG round trips are exact.
torch::Tensor test_image(int64_t c, int64_t h, int64_t w) {
  auto y = torch::arange(h, torch::kFloat).view({1, h, 1});
  auto x = torch::arange(w, torch::kFloat).view({1, 1, w});
  auto ch = torch::arange(c, torch::kFloat).view({c, 1, 1});
  auto img = ((x * 7 + y * 13 + ch * 50).remainder(256)) / 255.0;
  return img.to(torch::kFloat);
}

std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return e.what_without_backtrace();
  }
  return "";
}

}  // namespace

TEST_CASE("PNG round trips exactly at 8 and 16 bits", "[image][io]") {
  if (!codec_available(ImageFormat::kPng) || !codec_available(ImageFormat::kJpeg)) {
    WARN("built without libpng or libturbojpeg: skipped");
    return;
  }
  TempDir dir("convirt-image");
  for (int64_t c : {1, 3}) {
    auto img = test_image(c, 17, 23);
    write_png((dir / "a.png").string(), img);
    auto back = read_image((dir / "a.png").string());
    REQUIRE(back.sizes() == img.sizes());
    REQUIRE(back.scalar_type() == torch::kFloat);
    CHECK(max_abs_diff(back, img) < 1e-6);
  }
  auto img16 =
      torch::arange(0, 40 * 30, torch::kFloat).view({1, 30, 40}).mul(53).remainder(65536) / 65535.0;
  write_png((dir / "b.png").string(), img16, 16);
  auto back16 = read_image((dir / "b.png").string());
  CHECK(max_abs_diff(back16, img16) < 1e-7);
  auto info = image_info((dir / "b.png").string());
  CHECK(info.format == ImageFormat::kPng);
  CHECK(info.width == 40);
  CHECK(info.height == 30);
  CHECK(info.bit_depth == 16);
  // uint8 output of a 16-bit file rounds to the nearest 8-bit level.
  auto u8 = read_image((dir / "b.png").string(), ReadImageOptions().dtype(torch::kUInt8));
  CHECK(u8.scalar_type() == torch::kUInt8);
  CHECK(max_abs_diff(u8.to(torch::kFloat), (img16 * 255).round()) == 0);
}

TEST_CASE("RGBA drops alpha, and the channels option converts gray and RGB", "[image][io]") {
  if (!codec_available(ImageFormat::kPng) || !codec_available(ImageFormat::kJpeg)) {
    WARN("built without libpng or libturbojpeg: skipped");
    return;
  }
  TempDir dir("convirt-image");
  auto rgba = test_image(4, 9, 11);
  write_png((dir / "rgba.png").string(), rgba);
  auto rgb = read_image((dir / "rgba.png").string());
  REQUIRE(rgb.sizes() == torch::IntArrayRef({3, 9, 11}));
  CHECK(max_abs_diff(rgb, rgba.slice(0, 0, 3)) < 1e-6);

  auto gray = read_image((dir / "rgba.png").string(), ReadImageOptions().channels(1));
  auto expected = rgba[0] * 0.299 + rgba[1] * 0.587 + rgba[2] * 0.114;
  CHECK(max_abs_diff(gray[0], expected) < 1e-5);

  write_png((dir / "g.png").string(), test_image(1, 5, 6));
  auto three = read_image((dir / "g.png").string(), ReadImageOptions().channels(3));
  REQUIRE(three.size(0) == 3);
  CHECK(max_abs_diff(three[2], three[0]) == 0);
  // [H, W] and uint8 inputs are accepted by the writers.
  write_png((dir / "hw.png").string(), (test_image(1, 5, 6)[0] * 255).round().to(torch::kUInt8));
  CHECK(read_image((dir / "hw.png").string()).sizes() == torch::IntArrayRef({1, 5, 6}));
}

TEST_CASE("JPEG round trip, gray and RGB, format by content, draft decoding", "[image][io]") {
  if (!codec_available(ImageFormat::kPng) || !codec_available(ImageFormat::kJpeg)) {
    WARN("built without libpng or libturbojpeg: skipped");
    return;
  }
  TempDir dir("convirt-image");
  auto smooth = [](int64_t c, int64_t h, int64_t w) {
    auto y = torch::linspace(0, 1, h).view({1, h, 1});
    auto x = torch::linspace(0, 1, w).view({1, 1, w});
    return ((x * 0.6 + y * 0.3) + torch::arange(c).view({c, 1, 1}) * 0.05)
        .expand({c, h, w})
        .contiguous();
  };
  for (int64_t c : {1, 3}) {
    auto img = smooth(c, 64, 48);
    // A misleading extension: the decoder goes by content.
    write_jpeg((dir / "a.png").string(), img, 100);
    auto back = read_image((dir / "a.png").string());
    REQUIRE(back.sizes() == img.sizes());
    CHECK(max_abs_diff(back, img) < 0.03);
    CHECK(image_info((dir / "a.png").string()).format == ImageFormat::kJpeg);
  }
  write_jpeg((dir / "big.jpg").string(), smooth(1, 640, 480), 90);
  auto draft = read_image((dir / "big.jpg").string(), ReadImageOptions().draft_longer_side(256));
  // 640x480 at 1/2 is 320x240, the smallest DCT scale whose longer side is still >= 256.
  CHECK(draft.sizes() == torch::IntArrayRef({1, 320, 240}));
}

TEST_CASE("bad files give clear errors naming the path and the reason", "[image][io]") {
  if (!codec_available(ImageFormat::kPng) || !codec_available(ImageFormat::kJpeg)) {
    WARN("built without libpng or libturbojpeg: skipped");
    return;
  }
  TempDir dir("convirt-image");
  write_png((dir / "ok.png").string(), test_image(1, 32, 32));
  write_jpeg((dir / "ok.jpg").string(), test_image(3, 32, 32));
  std::string png = read_file_bytes((dir / "ok.png").string());
  std::string jpg = read_file_bytes((dir / "ok.jpg").string());

  write_raw(dir / "trunc.png", png.substr(0, png.size() / 2));
  auto msg = message_of([&] { read_image((dir / "trunc.png").string()); });
  CHECK_THAT(msg, Catch::Contains("trunc.png") && Catch::Contains("PNG"));

  write_raw(dir / "trunc.jpg", jpg.substr(0, jpg.size() / 2));
  msg = message_of([&] { read_image((dir / "trunc.jpg").string()); });
  CHECK_THAT(msg, Catch::Contains("trunc.jpg") && Catch::Contains("JPEG"));

  std::string corrupt = png;
  for (size_t i = 40; i < corrupt.size() - 20; ++i)
    corrupt[i] = static_cast<char>(corrupt[i] ^ 0x5A);
  write_raw(dir / "corrupt.png", corrupt);
  CHECK_THAT(message_of([&] { read_image((dir / "corrupt.png").string()); }),
             Catch::Contains("corrupt.png"));

  write_raw(dir / "text.jpg", "this is not an image at all");
  CHECK_THAT(message_of([&] { read_image((dir / "text.jpg").string()); }),
             Catch::Contains("unsupported format") && Catch::Contains("text.jpg"));
  write_raw(dir / "empty.png", "");
  CHECK_THAT(message_of([&] { read_image((dir / "empty.png").string()); }),
             Catch::Contains("empty"));
  CHECK_THAT(message_of([&] { read_image((dir / "missing.png").string()); }),
             Catch::Contains("missing.png"));
  CHECK_THAT(message_of([&] { decode_image(nullptr, 0); }), Catch::Contains("<memory>"));

  CHECK_THROWS_AS(write_png((dir / "x.png").string(), torch::rand({2, 4, 4})), c10::ValueError);
  CHECK_THROWS_AS(write_png((dir / "x.png").string(), torch::rand({1, 4, 4}), 12), c10::ValueError);
  CHECK_THROWS_AS(write_jpeg((dir / "x.jpg").string(), torch::rand({1, 4, 4}), 0), c10::ValueError);
  CHECK_THROWS_AS(write_png((dir / "x.png").string(), torch::ones({1, 4, 4}, torch::kInt)),
                  c10::TypeError);
  CHECK_THROWS_AS(read_image((dir / "ok.png").string(), ReadImageOptions().channels(2)),
                  c10::ValueError);
}

TEST_CASE("DICOM: rescale, window, MONOCHROME1, bit depths", "[image][io][dicom]") {
  if (!codec_available(ImageFormat::kDicom)) {
    WARN("built without DCMTK: DICOM tests skipped");
    return;
  }
  TempDir dir("convirt-image");
  // 12-bit stored values 0..4095 along a row.
  auto stored = torch::tensor({0, 1000, 2048, 3000, 4095}, torch::kInt).view({1, 5}).repeat({3, 1});
  const auto path = (dir / "a.dcm").string();
  write_dicom(path, stored,
              WriteDicomOptions().bits_stored(12).rescale_slope(2.0).rescale_intercept(-1024));
  CHECK(image_info(path).format == ImageFormat::kDicom);
  CHECK(image_info(path).bit_depth == 12);

  // No window in the file: min-max of the modality values (linear, so the same as of stored
  // values).
  auto mm = read_image(path);
  REQUIRE(mm.sizes() == torch::IntArrayRef({1, 3, 5}));
  auto expected = stored.to(torch::kFloat) / 4095.0;
  CHECK(max_abs_diff(mm[0], expected) < 1e-6);

  // Explicit window in modality units: modality = 2 * stored - 1024, window [0, 4000] roughly.
  auto win = read_image(path, ReadImageOptions().window(2000, 4001));
  // DICOM linear window: (x - (c - 0.5)) / (w - 1) + 0.5, clamped.
  auto modality = stored.to(torch::kDouble) * 2 - 1024;
  auto expect_win = ((modality - 1999.5) / 4000.0 + 0.5).clamp(0, 1);
  CHECK(max_abs_diff(win[0], expect_win) < 1e-6);

  // Bit-depth mode ignores rescale and window.
  auto bits = read_image(path, ReadImageOptions().dicom_intensity(DicomIntensity::kBitDepth));
  CHECK(max_abs_diff(bits[0], expected) < 1e-6);

  // A window stored in the file is used by default; MONOCHROME1 is inverted.
  const auto p1 = (dir / "m1.dcm").string();
  write_dicom(p1, stored,
              WriteDicomOptions()
                  .photometric("MONOCHROME1")
                  .bits_stored(12)
                  .window_center(2048)
                  .window_width(2048));
  auto m1 = read_image(p1);
  auto expect_m1 = 1.0 - ((stored.to(torch::kDouble) - 2047.5) / 2047.0 + 0.5).clamp(0, 1);
  CHECK(max_abs_diff(m1[0], expect_m1) < 1e-6);
  auto m1_raw = read_image(p1, ReadImageOptions().invert_monochrome1(false));
  CHECK(max_abs_diff(m1_raw[0], 1.0 - expect_m1) < 1e-6);

  // 8-bit allocation, uint8 and 3-channel outputs.
  const auto p8 = (dir / "b.dcm").string();
  write_dicom(p8, torch::tensor({0, 51, 255}, torch::kUInt8).view({1, 1, 3}),
              WriteDicomOptions().bits_stored(8));
  auto b8 = read_image(p8, ReadImageOptions()
                               .dicom_intensity(DicomIntensity::kBitDepth)
                               .dtype(torch::kUInt8)
                               .channels(3));
  REQUIRE(b8.sizes() == torch::IntArrayRef({3, 1, 3}));
  CHECK(b8[2][0][1].item<int>() == 51);

  // Truncated DICOM and bad writer input.
  std::string bytes = read_file_bytes(path);
  write_raw(dir / "trunc.dcm", bytes.substr(0, bytes.size() - 10));
  CHECK_THAT(message_of([&] { read_image((dir / "trunc.dcm").string()); }),
             Catch::Contains("trunc.dcm") && Catch::Contains("DICOM"));
  CHECK_THROWS_AS(write_dicom(path, torch::full({2, 2}, 5000, torch::kInt),
                              WriteDicomOptions().bits_stored(12)),
                  c10::ValueError);
  CHECK_THROWS_AS(write_dicom(path, torch::rand({2, 2})), c10::TypeError);
}
