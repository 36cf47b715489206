// JPEG, PNG and DICOM decoding (decode_image, picked by content) and the header reader
// (image_info) on arbitrary bytes, with the option combinations read_image supports. The pixel
// limit is lowered so that a header declaring a large image is refused quickly (the limit check is
// itself under test: nothing may allocate more than the limit allows).
#include <convirt/image/io.h>

#include <cstdlib>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convirt::image;
  if (size < 1) return 0;
  const uint8_t flags = data[0];
  const uint8_t* bytes = data + 1;
  const size_t n = size - 1;
  constexpr int64_t kMaxPixels = int64_t{1} << 22;
  auto opts = ReadImageOptions()
                  .channels((flags & 3) == 2 ? 3 : (flags & 3))
                  .dtype((flags & 4) ? c10::kByte : c10::kFloat)
                  .draft_longer_side((flags & 8) ? 16 : 0)
                  .dicom_intensity(static_cast<DicomIntensity>((flags >> 4) % 3))
                  .invert_monochrome1(flags & 64)
                  .max_pixels(kMaxPixels);
  if (flags & 128) opts.window(40.0, 400.0);
  convirt::fuzz::expect_clean([&] {
    const auto img = decode_image(bytes, n, opts);
    if (img.dim() != 3 || img.size(1) * img.size(2) > kMaxPixels) std::abort();
    if (opts.channels() != 0 && img.size(0) != opts.channels()) std::abort();
  });
  convirt::fuzz::expect_clean([&] { image_info(bytes, n); });
  return 0;
}
