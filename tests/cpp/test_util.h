#pragma once
// Helpers shared by the C++ tests.

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace convirt::test {

/// A fresh, empty folder under the system temp dir, removed when the object goes out of scope.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "convirt") {
    auto base = std::filesystem::temp_directory_path();
    for (int i = 0;; ++i) {
      path_ = base / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(i));
      if (std::filesystem::create_directories(path_)) break;
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

/// Path to the read-only shared data folder beside the checkout (vocab, CSV formats).
inline std::filesystem::path shared_dir() {
  return CONVIRT_SHARED_DIR;
}

/// Max absolute difference, as double, for messages and tolerances.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

/// Whether a CUDA device is usable from this process (tests tagged [cuda] skip when not).
inline bool cuda_available() {
  return torch::cuda::is_available();
}

}  // namespace convirt::test
