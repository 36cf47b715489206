// Decode + the paper's augmentation, images/s: convirt (C++ threads) against torchvision + PIL (a
// DataLoader with as many worker processes) on the same files, in one run, with the ratio.
//
// Usage: bench_image_augment [--images N] [--repeats R] [--threads T] [--format jpeg|png]
// Defaults: 256 images, 3 timed repeats, 2 threads/workers, JPEG, images with the longer side 256
// (the paper's stored pretraining size).
#include <convirt/image/io.h>
#include <convirt/image/transforms.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace img = convirt::image;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// Chest-radiograph-like test images: a bright mediastinum, two darker lung fields, ribs, noise.
at::Tensor synthetic_cxr(int64_t h, int64_t w, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto y = at::linspace(-1, 1, h).view({h, 1});
  auto x = at::linspace(-1, 1, w).view({1, w});
  auto lungs = at::exp(-((x.abs() - 0.45).pow(2) / 0.05 + y.pow(2) / 0.4));
  auto ribs = 0.08 * at::sin(y * 40 + x.abs() * 6).clamp_min(0);
  auto body = 0.75 - 0.45 * lungs + ribs + 0.05 * at::randn({h, w}, gen);
  return body.clamp(0, 1).unsqueeze(0).to(at::kFloat);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t images = 256, repeats = 3, threads = 2;
  std::string format = "jpeg";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--images")
      images = std::atoll(argv[i + 1]);
    else if (a == "--repeats")
      repeats = std::atoll(argv[i + 1]);
    else if (a == "--threads")
      threads = std::atoll(argv[i + 1]);
    else if (a == "--format")
      format = argv[i + 1];
    else {
      std::cerr << "unknown option " << a << "\n";
      return 2;
    }
  }
  if (images < 1 || repeats < 1 || threads < 1 || (format != "jpeg" && format != "png")) {
    std::cerr << "usage: bench_image_augment [--images N>0] [--repeats R>0] [--threads T>0] "
                 "[--format jpeg|png]\n";
    return 2;
  }

  const auto dir = std::filesystem::temp_directory_path() /
                   ("convirt-bench-image-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::vector<std::string> paths;
  for (int64_t i = 0; i < images; ++i) {
    // Portrait and landscape sizes as in MIMIC-CXR-JPG after resizing the longer side to 256.
    const int64_t h = 256, w = 200 + (i * 37) % 57;
    const auto p =
        (dir / ("img" + std::to_string(i) + (format == "jpeg" ? ".jpg" : ".png"))).string();
    auto x = synthetic_cxr(i % 2 ? h : w, i % 2 ? w : h, i);
    if (format == "jpeg")
      img::write_jpeg(p, x, 90);
    else
      img::write_png(p, x);
    paths.push_back(p);
  }
  const auto list = (dir / "files.txt").string();
  {
    std::ofstream f(list);
    for (const auto& p : paths) f << p << "\n";
  }

  // The two sides alternate, one timed pass each per repeat, so that load from other processes on a
  // shared machine falls on both alike. convirt: T threads pull file indices; each decodes and
  // augments with its own seed. torchvision: a DataLoader with T worker processes (its own warm-up
  // pass first, so that worker start-up is not timed).
  at::set_num_threads(1);
  auto aug = img::paper_augmentation();
  auto convirt_pass = [&](int64_t r) {
    std::atomic<int64_t> next{0};
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    std::vector<double> sums(threads, 0.0);
    for (int64_t t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        for (int64_t i; (i = next.fetch_add(1)) < images;) {
          auto x = img::read_image(paths[i]);
          auto y = (*aug)(x, static_cast<uint64_t>(r * images + i));
          sums[t] += y.data_ptr<float>()[224 * 112 + 112];
        }
      });
    }
    for (auto& th : pool) th.join();
    return images / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  const std::string python =
      std::string(CONVIRT_PYTHON).empty() ? "/usr/bin/python3" : CONVIRT_PYTHON;
  const std::string cmd = python + " " + CONVIRT_BENCH_TORCHVISION_SCRIPT + " " + list + " " +
                          std::to_string(threads) + " 1";
  auto torchvision_pass = [&]() -> double {
    FILE* pipe = ::popen(cmd.c_str(), "r");
    if (!pipe) return 0.0;
    char line[256];
    double last = 0.0;
    int lines = 0;
    while (std::fgets(line, sizeof(line), pipe)) last = std::atof(line), ++lines;
    const int rc = ::pclose(pipe);
    return rc == 0 && lines >= 2 ? last : 0.0;
  };
  std::vector<double> ours, theirs;
  convirt_pass(0);  // warms the page cache and the allocator
  for (int64_t r = 1; r <= repeats; ++r) {
    ours.push_back(convirt_pass(r));
    const double t = torchvision_pass();
    if (t > 0) theirs.push_back(t);
  }
  std::filesystem::remove_all(dir);

  const unsigned cores = std::thread::hardware_concurrency();
  std::printf(
      "decode + paper augmentation (RandomResizedCrop 224 scale [0.6,1], flip 0.5, affine "
      "+-20/0.1/[0.95,1.05] bilinear, brightness+contrast [0.6,1.4], blur sigma [0.1,3])\n");
  std::printf(
      "machine: %u cores; %lld %s files, longer side 256, gray; %lld threads/workers; median "
      "of %lld repeats\n",
      cores, static_cast<long long>(images), format.c_str(), static_cast<long long>(threads),
      static_cast<long long>(repeats));
  std::printf("%-28s %12s\n", "side", "images/s");
  std::printf("%-28s %12.1f\n", "convirt (C++)", median(ours));
  if (theirs.empty()) {
    std::printf("%-28s %12s\n", "torchvision + PIL", "n/a (no python with torchvision)");
    return 0;
  }
  std::printf("%-28s %12.1f\n", "torchvision + PIL", median(theirs));
  std::printf("ratio convirt / torchvision: %.2fx\n", median(ours) / median(theirs));
  return 0;
}
