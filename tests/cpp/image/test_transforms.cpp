// Transforms: each against its definition (known image, known parameter, expected pixels), then
// against torchvision / PIL on the same inputs (a Python script computes the references).
#include <convirt/image/io.h>
#include <convirt/image/preprocess.h>
#include <convirt/image/transforms.h>

#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "test_util.h"

using namespace convirt::image;
using convirt::test::max_abs_diff;
using convirt::test::TempDir;

namespace {

torch::Tensor ramp(int64_t c, int64_t h, int64_t w, uint64_t seed = 1) {
  // Smooth structure plus noise: exercises both interpolation and edge handling.
  auto y = torch::linspace(0, 1, h).view({1, h, 1});
  auto x = torch::linspace(0, 1, w).view({1, 1, w});
  auto gen = at::detail::createCPUGenerator(seed);
  auto noise = at::rand({c, h, w}, gen) * 0.3;
  return ((x * 0.5 + y * 0.2) + noise).clamp(0, 1).to(torch::kFloat).contiguous();
}

}  // namespace

TEST_CASE("Rng is deterministic, uniform in range, and resumable", "[image][transforms]") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const double u = a.uniform(-2, 3);
    CHECK(u == b.uniform(-2, 3));
    CHECK(u >= -2);
    CHECK(u < 3);
  }
  CHECK(a.next_u64() != c.next_u64());
  auto state = a.state();
  const int64_t r1 = a.randint(0, 7);
  Rng d(0);
  d.set_state(state);
  CHECK(d.randint(0, 7) == r1);
  double mean = 0;
  Rng e(5);
  for (int i = 0; i < 20000; ++i) mean += e.bernoulli(0.25);
  CHECK(mean / 20000 == Approx(0.25).margin(0.02));
}

TEST_CASE("functional ops match their definitions on known pixels", "[image][transforms]") {
  auto img = torch::arange(12, torch::kFloat).view({1, 3, 4}) / 11.0;
  // hflip mirrors each row.
  CHECK(max_abs_diff(hflip(img), img.flip({2})) == 0);
  // brightness: clamp(f x).
  CHECK(max_abs_diff(adjust_brightness(img, 1.5), (img * 1.5).clamp(0, 1)) < 1e-7);
  // contrast: blend with the mean of the image.
  const double m = img.mean().item<double>();
  CHECK(max_abs_diff(adjust_contrast(img, 0.5), (img * 0.5 + 0.5 * m).clamp(0, 1)) < 1e-6);
  // affine with identity parameters is the identity, an integer shift moves pixels and zero-fills.
  auto big = ramp(1, 9, 10);
  CHECK(max_abs_diff(affine(big, 0, {0, 0}, 1.0), big) < 1e-6);
  auto shifted = affine(big, 0, {2, 1}, 1.0);
  CHECK(max_abs_diff(shifted.slice(1, 1).slice(2, 2), big.slice(1, 0, 8).slice(2, 0, 8)) < 1e-6);
  CHECK(shifted.slice(2, 0, 2).abs().max().item<float>() == 0);
  CHECK(shifted.slice(1, 0, 1).abs().max().item<float>() == 0);
  auto filled = affine(big, 0, {2, 0}, 1.0, Interpolation::kBilinear, 0.25);
  CHECK(filled.slice(2, 0, 2).sub(0.25).abs().max().item<float>() < 1e-6);
  // A 180-degree rotation of an odd-sized image about its centre pixel is a double flip.
  auto odd = ramp(1, 7, 9);
  CHECK(max_abs_diff(affine(odd, 180, {0, 0}, 1.0), odd.flip({1, 2})) < 1e-5);
  CHECK(max_abs_diff(affine(odd, 180, {0, 0}, 1.0, Interpolation::kNearest), odd.flip({1, 2})) ==
        0);

  // Gaussian blur: a constant image stays constant (reflect padding), an impulse gives the kernel.
  CHECK(max_abs_diff(gaussian_blur(torch::full({1, 8, 8}, 0.3), 2.0), torch::full({1, 8, 8}, 0.3)) <
        1e-6);
  CHECK(gaussian_kernel_size(1.0) == 7);
  CHECK(gaussian_kernel_size(0.1) == 3);
  CHECK(gaussian_kernel_size(3.0) == 19);
  auto impulse = torch::zeros({1, 21, 21});
  impulse[0][10][10] = 1.0;
  const double sigma = 1.3;
  auto blurred = gaussian_blur(impulse, sigma, 7);
  auto k = torch::exp(-0.5 * torch::pow(torch::arange(-3, 4, torch::kDouble) / sigma, 2));
  k = k / k.sum();
  auto k2 = torch::outer(k, k);
  CHECK(max_abs_diff(blurred[0].slice(0, 7, 14).slice(1, 7, 14), k2) < 1e-6);
  CHECK(blurred.sum().item<double>() == Approx(1.0).epsilon(1e-5));

  // Antialiased resize by 2 on a 1-D ramp: triangle of half-width 2, normalised (weights 3/7, 3/7,
  // 1/7 at the border; 1/8, 3/8, 3/8, 1/8 inside).
  auto row = torch::tensor({0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f}).view({1, 1, 6});
  auto half = resize(row, 1, 3);
  CHECK(half[0][0][0].item<double>() == Approx((0 * 3 + 1 * 3 + 2 * 1) / 7.0));
  CHECK(half[0][0][1].item<double>() == Approx((1 + 2 * 3 + 3 * 3 + 4) / 8.0));
  // Constant stays constant in every mode, and size is as asked.
  for (bool aa : {true, false}) {
    auto r = resize(torch::full({2, 13, 7}, 0.6), 5, 11, ResizeOptions().antialias(aa));
    CHECK(r.sizes() == torch::IntArrayRef({2, 5, 11}));
    CHECK(max_abs_diff(r, torch::full({2, 5, 11}, 0.6)) < 1e-6);
  }
  // resized_crop to the crop's own size is the crop.
  CHECK(max_abs_diff(resized_crop(big, 2, 3, 4, 5, 4, 5), big.slice(1, 2, 6).slice(2, 3, 8)) == 0);

  // pad_to_square centres the image, eval_preprocess gives size x size, longer side -> 256.
  auto padded = pad_to_square(torch::ones({1, 2, 5}));
  REQUIRE(padded.sizes() == torch::IntArrayRef({1, 5, 5}));
  CHECK(padded.sum().item<float>() == 10);
  CHECK(padded[0][1].sum().item<float>() == 5);
  CHECK(padded[0][0].sum().item<float>() == 0);
  CHECK(eval_preprocess(ramp(1, 30, 50)).sizes() == torch::IntArrayRef({1, 224, 224}));
  CHECK(resize_longer_side(ramp(1, 300, 200)).sizes() == torch::IntArrayRef({1, 256, 171}));
  CHECK(resize_longer_side(ramp(3, 100, 400)).sizes() == torch::IntArrayRef({3, 64, 256}));
  // normalize
  CHECK(max_abs_diff(normalize(img, {0.5}, {0.25}), (img - 0.5) / 0.25) < 1e-6);
  // uint8 input is scaled to [0, 1].
  auto u8 = torch::full({1, 2, 2}, 255, torch::kUInt8);
  CHECK(hflip(u8).max().item<float>() == 1.0f);
}

TEST_CASE("bad arguments raise typed errors", "[image][transforms]") {
  CHECK_THROWS_AS(hflip(torch::rand({4, 4})), c10::ValueError);
  CHECK_THROWS_AS(hflip(torch::ones({1, 4, 4}, torch::kInt)), c10::TypeError);
  CHECK_THROWS_AS(hflip(torch::rand({1, 0, 4})), c10::ValueError);
  CHECK_THROWS_AS(resize(torch::rand({1, 4, 4}), 0, 3), c10::ValueError);
  CHECK_THROWS_AS(resized_crop(torch::rand({1, 4, 4}), 2, 0, 3, 2, 2, 2), c10::ValueError);
  CHECK_THROWS_AS(adjust_brightness(torch::rand({1, 4, 4}), -1), c10::ValueError);
  CHECK_THROWS_AS(adjust_contrast(torch::rand({2, 4, 4}), 0.5), c10::ValueError);
  CHECK_THROWS_AS(gaussian_blur(torch::rand({1, 4, 4}), 1.0, 4), c10::ValueError);
  CHECK_THROWS_AS(affine(torch::rand({1, 4, 4}), 0, {0, 0}, 0), c10::ValueError);
  CHECK_THROWS_AS(RandomResizedCrop(RandomResizedCropOptions(8).scale({0.9, 0.5})),
                  c10::ValueError);
  CHECK_THROWS_AS(RandomHorizontalFlip(RandomHorizontalFlipOptions().p(2)), c10::ValueError);
  CHECK_THROWS_AS(GaussianBlur(GaussianBlurOptions().sigma({0.0, 1.0})), c10::ValueError);
  CHECK_THROWS_AS(
      Normalize(NormalizeOptions({0.5, 0.5}, {1.0})).operator()(torch::rand({3, 2, 2}), 0),
      c10::ValueError);
  CHECK_THROWS_AS(Compose({nullptr}), c10::ValueError);
}

TEST_CASE("random transforms: parameters in range, seeded, batch independent of threads",
          "[image][transforms]") {
  RandomResizedCrop crop(RandomResizedCropOptions(32).scale({0.6, 1.0}));
  Rng rng(3);
  for (int i = 0; i < 200; ++i) {
    CropBox b = crop.sample(100, 80, rng);
    REQUIRE(b.top >= 0);
    REQUIRE(b.left >= 0);
    REQUIRE(b.top + b.height <= 100);
    REQUIRE(b.left + b.width <= 80);
    const double frac = double(b.height) * b.width / (100.0 * 80.0);
    CHECK(frac >= 0.58);
    CHECK(frac <= 1.0);
    const double ratio = double(b.width) / b.height;
    CHECK(ratio >= 0.74);
    CHECK(ratio <= 1.35);
  }
  RandomAffine aff;
  for (int i = 0; i < 100; ++i) {
    AffineParams p = aff.sample(224, 224, rng);
    CHECK(std::abs(p.angle) <= 20);
    CHECK(std::abs(p.translate[0]) <= 23);
    CHECK(p.translate[0] == std::round(p.translate[0]));
    CHECK(p.scale >= 0.95);
    CHECK(p.scale <= 1.05);
  }

  auto aug = paper_augmentation(PaperAugmentationOptions().size(64));
  auto img = ramp(1, 90, 70);
  auto a = (*aug)(img, 11);
  auto b = (*aug)(img, 11);
  auto c = (*aug)(img, 12);
  REQUIRE(a.sizes() == torch::IntArrayRef({1, 64, 64}));
  CHECK(max_abs_diff(a, b) == 0);
  CHECK(max_abs_diff(a, c) > 1e-3);
  CHECK(a.min().item<float>() >= 0);
  CHECK(a.max().item<float>() <= 1);
  CHECK_THAT(aug->repr(), Catch::Contains("RandomResizedCrop") && Catch::Contains("GaussianBlur"));

  // A batch: one seed per image drawn in order, so the thread count does not matter.
  auto batch = torch::stack({ramp(1, 90, 70, 1), ramp(1, 90, 70, 2), ramp(1, 90, 70, 3)});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  auto one = (*aug)(batch, 5);
  at::set_num_threads(2);
  auto two = (*aug)(batch, 5);
  at::set_num_threads(threads);
  REQUIRE(one.sizes() == torch::IntArrayRef({3, 1, 64, 64}));
  CHECK(max_abs_diff(one, two) == 0);
  Rng r(5);
  Rng r0(r.next_u64());
  CHECK(max_abs_diff(one[0], aug->apply_one(batch[0], r0)) == 0);

  // The flip is drawn even when it is not applied: p = 0 and p = 1 consume the same stream.
  Rng s1(9), s2(9);
  RandomHorizontalFlip never(RandomHorizontalFlipOptions().p(0)),
      always(RandomHorizontalFlipOptions().p(1));
  CHECK(max_abs_diff(never(img, s1), img) == 0);
  CHECK(max_abs_diff(always(img, s2), img.flip({2})) == 0);
  CHECK(s1.next_u64() == s2.next_u64());
}

TEST_CASE("ops agree with torchvision 0.14 and PIL", "[image][transforms][torchvision]") {
  if (!codec_available(ImageFormat::kPng) || !codec_available(ImageFormat::kJpeg)) {
    WARN("built without libpng or libturbojpeg: skipped");
    return;
  }
  const std::string python = CONVIRT_PYTHON;
  const std::string check_cmd = (python.empty() ? std::string("/usr/bin/python3") : python) +
                                " -c 'import torchvision, PIL' > /dev/null 2>&1";
  if (std::system(check_cmd.c_str()) != 0) {
    WARN("python with torchvision and PIL not found: torchvision comparisons skipped");
    return;
  }
  TempDir dir("convirt-image-tv");
  std::ofstream cases(dir / "cases.txt");
  struct Case {
    std::string id;
    torch::Tensor ours;
    double tol;
  };
  std::vector<Case> expected;
  int n = 0;
  auto input = [&](const torch::Tensor& x) {
    const std::string name = "in" + std::to_string(n++) + ".f32";
    auto c = x.contiguous();
    std::ofstream f(dir / name, std::ios::binary);
    f.write(reinterpret_cast<const char*>(c.data_ptr<float>()), c.numel() * 4);
    std::ostringstream os;
    os << name << " " << x.size(0) << " " << x.size(1) << " " << x.size(2);
    return os.str();
  };
  auto add = [&](const std::string& id, const std::string& op, const torch::Tensor& x,
                 const std::string& params, const torch::Tensor& ours, double tol) {
    cases << id << " " << op << " " << input(x) << " " << params << "\n";
    expected.push_back({id, ours, tol});
  };

  auto a = ramp(1, 37, 53), b = ramp(3, 17, 13, 2), g = ramp(1, 40, 50, 3),
       big = ramp(1, 120, 90, 4);
  add("resize_down", "resize_aa", a, "20 24", resize(a, 20, 24), 1e-5);
  add("resize_down_big", "resize_aa", big, "33 41", resize(big, 33, 41), 1e-5);
  add("resize_up", "resize_aa", b, "40 31", resize(b, 40, 31), 1e-5);
  add("resize_noaa", "resize_noaa", a, "20 24", resize(a, 20, 24, ResizeOptions().antialias(false)),
      1e-5);
  add("resize_nearest", "resize_nearest", a, "20 70",
      resize(a, 20, 70, ResizeOptions().interpolation(Interpolation::kNearest)), 0);
  add("resized_crop", "resized_crop", big, "13 7 60 50 24 24",
      resized_crop(big, 13, 7, 60, 50, 24, 24), 1e-5);
  add("affine_bilinear", "affine_bilinear", g, "17.3 3 -2 1.03", affine(g, 17.3, {3, -2}, 1.03),
      1e-4);
  add("affine_bilinear2", "affine_bilinear", b, "-12 1 2 0.96", affine(b, -12, {1, 2}, 0.96), 1e-4);
  add("brightness", "brightness", b, "1.3", adjust_brightness(b, 1.3), 1e-6);
  add("contrast_rgb", "contrast", b, "0.7", adjust_contrast(b, 0.7), 1e-5);
  add("contrast_gray", "contrast", g, "1.35", adjust_contrast(g, 1.35), 1e-5);
  add("blur", "blur", g, "1.7 11", gaussian_blur(g, 1.7, 11), 1e-5);
  add("blur_auto", "blur", b, "0.5 5", gaussian_blur(b, 0.5), 1e-5);
  add("hflip", "hflip", b, "", hflip(b), 0);
  // PIL's bilinear resize works on uint8 and rounds: within one level.
  auto a8 = (a * 255).round() / 255;
  add("resize_pil", "resize_pil", a8, "20 24", resize(a8, 20, 24), 1.0 / 255 + 1e-4);

  // Decoding against PIL: 8-bit RGB PNG, 16-bit gray PNG, gray and RGB JPEG.
  auto decode_case = [&](const std::string& id, const std::string& file, double tol) {
    auto ours = read_image((dir / file).string());
    cases << id << " decode_pil " << file << " 0 0 0\n";
    expected.push_back({id, ours, tol});
  };
  write_png((dir / "rgb.png").string(), b);
  decode_case("png_rgb", "rgb.png", 1e-6);
  write_png((dir / "g16.png").string(), g, 16);
  decode_case("png_16", "g16.png", 1e-6);
  write_jpeg((dir / "g.jpg").string(), big, 85);
  decode_case("jpeg_gray", "g.jpg", 1.0 / 255 + 1e-6);
  write_jpeg((dir / "rgb.jpg").string(), ramp(3, 48, 64, 5), 85);
  decode_case("jpeg_rgb", "rgb.jpg", 2.0 / 255 + 1e-6);
  cases.close();

  const std::string cmd = (python.empty() ? std::string("/usr/bin/python3") : python) + " " +
                          CONVIRT_IMAGE_REFERENCE_SCRIPT + " " + dir.path().string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  for (const auto& e : expected) {
    INFO("case " << e.id);
    std::ifstream sf(dir / (e.id + ".shape"));
    std::vector<int64_t> shape;
    for (int64_t s; sf >> s;) shape.push_back(s);
    REQUIRE(torch::IntArrayRef(shape) == e.ours.sizes());
    auto ref = torch::empty(shape, torch::kFloat);
    std::ifstream f(dir / (e.id + ".out"), std::ios::binary);
    f.read(reinterpret_cast<char*>(ref.data_ptr<float>()), ref.numel() * 4);
    const double diff = max_abs_diff(e.ours, ref);
    INFO("max abs diff " << diff);
    CHECK(diff <= e.tol);
  }

  // Nearest-neighbour affine: grid points that land exactly between pixels may round either way in
  // float32 (torchvision) vs float64 (here); all but a few pixels must match exactly.
  std::ofstream more(dir / "cases.txt");
  more << "affine_nearest affine_nearest " << input(g) << " 30 0 0 0.97\n";
  more.close();
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto ref = torch::empty({1, 40, 50}, torch::kFloat);
  std::ifstream f(dir / "affine_nearest.out", std::ios::binary);
  f.read(reinterpret_cast<char*>(ref.data_ptr<float>()), ref.numel() * 4);
  auto ours = affine(g, 30, {0, 0}, 0.97, Interpolation::kNearest);
  const double mismatch = (ours - ref).abs().gt(1e-6).to(torch::kDouble).mean().item<double>();
  CHECK(mismatch < 0.01);
}
