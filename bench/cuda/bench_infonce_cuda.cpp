// Fused CUDA InfoNCE (forward + backward) against the naive LibTorch formulation: materialised
// logits, two cross-entropies, autograd. Times each side with CUDA events after warm-up (median of
// many runs, inputs rotated among several sets so repeated runs do not measure the L2 cache),
// reports peak allocator memory per side and the achieved TFLOP/s against the fused 8 N^2 D count.
//
// Usage: bench_infonce_cuda [--quick] [--reps R]
#include <convirt/loss/infonce.h>

#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

struct Timing {
  double median_ms = 0;
  double peak_mb = 0;
  bool ok = true;
};

double peak_bytes() {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(
      static_cast<c10::DeviceIndex>(c10::cuda::current_device()));
  return static_cast<double>(stats.allocated_bytes[0].peak);
}

Timing time_it(const std::function<void(int)>& step, int warmup, int reps) {
  Timing t;
  try {
    for (int i = 0; i < warmup; ++i) step(i);
    cudaDeviceSynchronize();
    c10::cuda::CUDACachingAllocator::emptyCache();
    c10::cuda::CUDACachingAllocator::resetPeakStats(
        static_cast<c10::DeviceIndex>(c10::cuda::current_device()));
    const double base =
        static_cast<double>(c10::cuda::CUDACachingAllocator::getDeviceStats(
                                static_cast<c10::DeviceIndex>(c10::cuda::current_device()))
                                .allocated_bytes[0]
                                .current);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<double> ms;
    auto stream = c10::cuda::getCurrentCUDAStream().stream();
    for (int i = 0; i < reps; ++i) {
      cudaEventRecord(start, stream);
      step(i);
      cudaEventRecord(stop, stream);
      cudaEventSynchronize(stop);
      float e = 0;
      cudaEventElapsedTime(&e, start, stop);
      ms.push_back(e);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    t.median_ms = ms[ms.size() / 2];
    t.peak_mb = (peak_bytes() - base) / 1e6;  // memory beyond the inputs, which both sides share
  } catch (const c10::Error& e) {             // the naive side runs out of memory at large N
    t.ok = false;
    c10::cuda::CUDACachingAllocator::emptyCache();
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  int reps = 30;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
  }
  if (!torch::cuda::is_available()) {
    std::printf("skipped: no CUDA device\n");
    return 0;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("device: %s (sm_%d%d, %d SMs)\n", prop.name, prop.major, prop.minor,
              prop.multiProcessorCount);
  std::printf("%-6s %-4s %-9s %11s %11s %7s %9s %11s %11s\n", "N", "D", "dtype", "fused_ms",
              "naive_ms", "speedup", "TFLOP/s", "fused_MB", "naive_MB");

  std::vector<int64_t> ns =
      quick ? std::vector<int64_t>{8192} : std::vector<int64_t>{8192, 32768, 65536};
  std::vector<int64_t> ds = quick ? std::vector<int64_t>{512} : std::vector<int64_t>{512, 768};
  for (int64_t n : ns)
    for (int64_t d : ds)
      for (auto dtype : {torch::kBFloat16, torch::kFloat}) {
        const int kSets = 3;
        std::vector<torch::Tensor> as, bs;
        for (int s = 0; s < kSets; ++s) {
          auto opt = torch::TensorOptions().device(torch::kCUDA).dtype(dtype);
          as.push_back(
              torch::nn::functional::normalize(torch::randn({n, d}, opt.dtype(torch::kFloat)),
                                               torch::nn::functional::NormalizeFuncOptions().dim(1))
                  .to(dtype)
                  .requires_grad_(true));
          bs.push_back(
              torch::nn::functional::normalize(torch::randn({n, d}, opt.dtype(torch::kFloat)),
                                               torch::nn::functional::NormalizeFuncOptions().dim(1))
                  .to(dtype)
                  .requires_grad_(true));
        }
        const auto opts = convirt::InfoNCEOptions()
                              .temperature(0.1)
                              .image_to_text_weight(0.75)
                              .normalize(false)
                              .backend(convirt::InfoNCEBackend::kFused);
        auto fused = [&](int i) {
          auto& a = as[i % kSets];
          auto& b = bs[i % kSets];
          a.mutable_grad() = torch::Tensor();
          b.mutable_grad() = torch::Tensor();
          convirt::infonce_loss(a, b, opts).backward();
        };
        auto naive = [&](int i) {
          auto& a = as[i % kSets];
          auto& b = bs[i % kSets];
          a.mutable_grad() = torch::Tensor();
          b.mutable_grad() = torch::Tensor();
          auto logits = torch::mm(a, b.t()).to(torch::kFloat) / 0.1;
          auto target =
              torch::arange(n, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kLong));
          auto loss = 0.75 * torch::nn::functional::cross_entropy(logits, target) +
                      0.25 * torch::nn::functional::cross_entropy(logits.t(), target);
          loss.backward();
        };
        const int n_reps = n >= 65536 ? std::max(5, reps / 3) : reps;
        const Timing f = time_it(fused, 3, n_reps);
        const Timing v = time_it(naive, 3, n_reps);
        const double flops = 8.0 * static_cast<double>(n) * static_cast<double>(n) * d;
        const char* name = dtype == torch::kBFloat16 ? "bf16" : "fp32";
        char naive_ms[32], naive_mb[32], speed[32];
        std::snprintf(naive_ms, sizeof(naive_ms), v.ok ? "%.3f" : "OOM", v.median_ms);
        std::snprintf(naive_mb, sizeof(naive_mb), v.ok ? "%.1f" : "-", v.peak_mb);
        std::snprintf(speed, sizeof(speed), v.ok ? "%.2fx" : "-", v.median_ms / f.median_ms);
        std::printf("%-6lld %-4lld %-9s %11.3f %11s %7s %9.1f %11.1f %11s\n",
                    static_cast<long long>(n), static_cast<long long>(d), name, f.median_ms,
                    naive_ms, speed, flops / (f.median_ms * 1e-3) / 1e12, f.peak_mb, naive_mb);
        std::fflush(stdout);
      }
  return 0;
}
