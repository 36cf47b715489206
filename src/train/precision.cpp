#include <convirt/core/check.h>
#include <convirt/train/precision.h>

#include <ATen/autocast_mode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cmath>

// The C++ autocast API was renamed in LibTorch 2.4 (per-device-type setters); both spellings are
// handled here, in one place.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define CONVIRT_AUTOCAST_BY_DEVICE_TYPE 1
#else
#define CONVIRT_AUTOCAST_BY_DEVICE_TYPE 0
#endif

namespace convirt::train {

Precision parse_precision(const std::string& name) {
  if (name == "auto") return Precision::kAuto;
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") return Precision::kFp16;
  CONVIRT_CHECK_VALUE(false, "precision must be one of auto, fp32, bf16, fp16, got '", name, "'");
  return Precision::kAuto;
}

std::string to_string(Precision precision) {
  switch (precision) {
    case Precision::kAuto:
      return "auto";
    case Precision::kFp32:
      return "fp32";
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
  }
  return "auto";
}

torch::Device resolve_device(const std::string& name, int64_t local_rank) {
  const int64_t gpus = torch::cuda::is_available() ? torch::cuda::device_count() : 0;
  const auto rank_gpu = [&] {
    return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(local_rank % gpus));
  };
  if (name == "auto") return gpus > 0 ? rank_gpu() : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::Device(torch::kCPU);
  CONVIRT_CHECK_VALUE(name == "cuda" || name.rfind("cuda:", 0) == 0,
                      "device must be auto, cpu, cuda or cuda:N, got '", name, "'");
  CONVIRT_CHECK_VALUE(gpus > 0, "device '", name,
                      "' is not available: this machine has no CUDA device (LibTorch built ",
                      torch::cuda::is_available() ? "with" : "without or no driver for",
                      " CUDA); use --device cpu");
  if (name == "cuda") return rank_gpu();
  const std::string index = name.substr(5);
  CONVIRT_CHECK_VALUE(!index.empty() && index.find_first_not_of("0123456789") == std::string::npos,
                      "device must be cuda:N with N a GPU index, got '", name, "'");
  const int64_t n = std::stoll(index);
  CONVIRT_CHECK_VALUE(n < gpus, "device '", name, "' is not available: this machine has ", gpus,
                      " CUDA device(s), cuda:0 to cuda:", gpus - 1);
  return torch::Device(torch::kCUDA, static_cast<torch::DeviceIndex>(n));
}

Precision resolve_precision(Precision precision, const torch::Device& device) {
  if (precision == Precision::kAuto) return device.is_cuda() ? Precision::kBf16 : Precision::kFp32;
  // LibTorch's CPU autocast runs in bf16 only (1.13); fp16 kernels on CPU are slow or missing.
  CONVIRT_CHECK_VALUE(precision != Precision::kFp16 || device.is_cuda(),
                      "precision 'fp16' needs a CUDA device, got device '", device.str(),
                      "'; use bf16 (CPU autocast) or fp32");
  return precision;
}

AutocastScope::AutocastScope(const torch::Device& device, Precision precision) {
  precision = resolve_precision(precision, device);
  if (precision == Precision::kFp32) return;
  enabled_ = true;
  cuda_ = device.is_cuda();
  const auto dtype = precision == Precision::kFp16 ? at::kHalf : at::kBFloat16;
#if CONVIRT_AUTOCAST_BY_DEVICE_TYPE
  const auto type = cuda_ ? at::kCUDA : at::kCPU;
  at::autocast::set_autocast_dtype(type, dtype);
  at::autocast::set_autocast_enabled(type, true);
#else
  if (cuda_) {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(true);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(true);
  }
#endif
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
#if CONVIRT_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(cuda_ ? at::kCUDA : at::kCPU, false);
#else
  if (cuda_) {
    at::autocast::set_enabled(false);
  } else {
    at::autocast::set_cpu_enabled(false);
  }
#endif
  at::autocast::clear_cache();
}

bool GradScaler::unscale_and_check(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return true;
  // One host sync for all gradients, not one per tensor.
  std::vector<torch::Tensor> finite;
  finite.reserve(grads.size());
  for (const auto& g : grads) finite.push_back(torch::isfinite(g).all());
  if (!torch::stack(finite).all().item<bool>()) return false;
  for (auto& g : grads) g.mul_(1.0 / scale_);
  return true;
}

void GradScaler::update(bool found_inf) {
  if (found_inf) {
    scale_ *= 0.5;
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ >= growth_interval_) {
    scale_ *= 2.0;
    growth_tracker_ = 0;
  }
}

void GradScaler::set_state(double scale, int64_t growth_tracker) {
  CONVIRT_CHECK_VALUE(scale > 0 && std::isfinite(scale), "loss scale must be finite and > 0, got ",
                      scale);
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

}  // namespace convirt::train
