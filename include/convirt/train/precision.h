#pragma once
// Where and in what precision a training run computes: the device a name stands for, autocast
// scopes for CPU and CUDA, and the dynamic loss scaling fp16 needs. The command line and Python
// take their defaults from kDefaultDevice and kDefaultPrecision, so both start the same run.

#include <torch/types.h>

#include <string>
#include <vector>

namespace convirt::train {

/// Numeric precision of the forward pass. The loss is always computed in fp32.
enum class Precision {
  kAuto,  ///< bf16 autocast on CUDA (the paper trains in mixed precision), fp32 on CPU
  kFp32,  ///< no autocast
  kBf16,  ///< bf16 autocast (CPU and CUDA); no loss scaling needed
  kFp16,  ///< fp16 autocast with dynamic loss scaling; CUDA only
};

/// "auto", "fp32", "bf16" or "fp16"; anything else is a ValueError listing them.
Precision parse_precision(const std::string& name);
std::string to_string(Precision precision);

/// The device name a run uses unless told otherwise (CLI --device, Python device=).
inline constexpr const char* kDefaultDevice = "auto";
/// The precision name a run uses unless told otherwise (CLI --precision, Python precision=).
inline constexpr const char* kDefaultPrecision = "auto";

/// The device `name` stands for: "auto" (CUDA when available, else CPU), "cpu", "cuda" or
/// "cuda:N". "auto" and "cuda" pick GPU local_rank % device_count, so that the processes of a
/// job on one machine get a GPU each. A device this machine lacks is a ValueError saying what it
/// has.
///
/// Example:
///   torch::Device d = convirt::train::resolve_device("cuda:1");
torch::Device resolve_device(const std::string& name, int64_t local_rank = 0);

/// kAuto made concrete for `device`; a precision the device cannot run (fp16 on CPU) is a
/// ValueError naming both.
Precision resolve_precision(Precision precision, const torch::Device& device);

/// Autocast to `precision`'s dtype on `device` for the scope's lifetime (nothing for fp32).
///
/// Example:
///   { convirt::train::AutocastScope scope(device, Precision::kBf16); loss = model(x).sum(); }
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_ = false;
  bool cuda_ = false;
};

/// Dynamic loss scaling for fp16 (as torch.cuda.amp.GradScaler): the loss is multiplied by
/// scale() before backward; unscale_and_check() divides the gradients back and says whether they
/// are all finite. A step with an inf/NaN gradient is skipped and the scale halved; after
/// growth_interval good steps in a row it doubles.
class GradScaler {
 public:
  explicit GradScaler(double init_scale = 65536.0, int64_t growth_interval = 2000)
      : scale_(init_scale), growth_interval_(growth_interval) {}
  double scale() const { return scale_; }
  /// Unscales the gradients of `params` in place; false (and nothing unscaled) when any is not
  /// finite.
  bool unscale_and_check(const std::vector<torch::Tensor>& params);
  /// Updates the scale after a step that was taken (`found_inf` false) or skipped.
  void update(bool found_inf);
  int64_t growth_tracker() const { return growth_tracker_; }
  /// Restores scale and tracker (from a checkpoint).
  void set_state(double scale, int64_t growth_tracker);

 private:
  double scale_;
  int64_t growth_interval_;
  int64_t growth_tracker_ = 0;
};

}  // namespace convirt::train
