// The InfoNCE op never reads the temperature back to the host nor copies it from host memory when
// the embeddings live on a device: on CUDA either would synchronise every call with the host (and
// forbid CUDA graph capture). Checked without a GPU on the meta device, which runs the same
// device-generic host code (infonce.cpp, infonce/op.cpp) as CUDA, while a RecordFunction observer
// records every scalar read (aten::_local_scalar_dense, what Tensor::item() runs) and every copy
// between the CPU and another device. Forward only: torch 1.13 has no meta kernel for where(),
// which the backward of the embeddings' normalisation and of the temperature's clamp run; the
// backward never reads tau's value anyway (it passes tensors on to the device kernels).

#include <convirt/loss/infonce.h>

#include <ATen/record_function.h>
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <string>
#include <vector>

using convirt::InfoNCEBackend;
using convirt::InfoNCEOptions;

namespace {

// RecordFunction callbacks are plain function pointers: the findings go to a thread-local list.
thread_local std::vector<std::string> g_host_syncs;

bool is_cpu_tensor(const c10::IValue& v) {
  return v.isTensor() && v.toTensor().defined() && v.toTensor().device().is_cpu();
}
bool is_device_tensor(const c10::IValue& v) {
  return v.isTensor() && v.toTensor().defined() && !v.toTensor().device().is_cpu();
}

std::unique_ptr<at::ObserverContext> on_op(const at::RecordFunction& fn) {
  const std::string name = fn.name();
  const auto in = fn.inputs();
  if (name == "aten::_local_scalar_dense" && !in.empty() && is_device_tensor(in[0])) {
    g_host_syncs.push_back(name + " of a device tensor");
  } else if (name == "aten::copy_" && in.size() >= 2 &&
             ((is_cpu_tensor(in[0]) && is_device_tensor(in[1])) ||
              (is_device_tensor(in[0]) && is_cpu_tensor(in[1])))) {
    g_host_syncs.push_back(name + " between the CPU and a device");
  } else if (name == "aten::_to_copy" && in.size() >= 4 && is_cpu_tensor(in[0]) &&
             in[3].isDevice() && !in[3].toDevice().is_cpu()) {
    g_host_syncs.push_back(name + " from the CPU to a device");
  }
  return nullptr;
}

/// Records, while alive, every operation that would make a CUDA call wait for the host.
class HostSyncObserver {
 public:
  HostSyncObserver() {
    g_host_syncs.clear();
    handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(&on_op).needsInputs(true));
  }
  ~HostSyncObserver() { at::removeCallback(handle_); }
  HostSyncObserver(const HostSyncObserver&) = delete;
  HostSyncObserver& operator=(const HostSyncObserver&) = delete;
  std::string report() const {
    std::string r;
    for (const auto& s : g_host_syncs) r += s + "; ";
    return r;
  }
  size_t count() const { return g_host_syncs.size(); }

 private:
  at::CallbackHandle handle_;
};

torch::Tensor meta(std::vector<int64_t> sizes) {
  return torch::empty(sizes, torch::TensorOptions().device(torch::kMeta));
}

}  // namespace

TEST_CASE("the observer sees a host read and a host-to-device copy of tau", "[loss][cpu]") {
  // Without this the checks below could pass by observing nothing.
  HostSyncObserver observer;
  const auto tau = torch::scalar_tensor(0.1, torch::kFloat).to(torch::kMeta);
  const size_t after_copy = observer.count();
  CHECK(after_copy >= 1);
  CHECK_THROWS(tau.item<double>());  // meta tensors have no data, but the read is recorded first
  CHECK(observer.count() > after_copy);
}

TEST_CASE("a fixed temperature reaches a device op without a host copy or read", "[loss][cpu]") {
  const auto backend = GENERATE(InfoNCEBackend::kAuto, InfoNCEBackend::kReference);
  const auto dtype = GENERATE(torch::kFloat, torch::kDouble, torch::kBFloat16);
  const auto a = meta({6, 4}).to(dtype);
  const auto b = meta({6, 4}).to(dtype);
  HostSyncObserver observer;
  const auto out =
      convirt::infonce_loss_with_stats(a, b, InfoNCEOptions().temperature(0.07).backend(backend));
  INFO(observer.report());
  CHECK(observer.count() == 0);
  CHECK(out.loss.device().is_meta());
}

TEST_CASE("a learned temperature on the device is never read back", "[loss][cpu]") {
  // What InfoNCELoss::forward passes for a learned tau (torch 1.13 cannot move a module to meta).
  const auto log_tau =
      torch::full({}, -2.0, torch::TensorOptions().device(torch::kMeta)).requires_grad_(true);
  const auto a = meta({5, 3}).requires_grad_(true);
  const auto b = meta({5, 3}).requires_grad_(true);
  HostSyncObserver observer;
  const auto learned = convirt::infonce_loss(
      a, b, InfoNCEOptions().learnable_temperature(convirt::temperature_from_log(log_tau)));
  // A tau tensor a caller built on the device by hand takes the same path.
  const auto direct = convirt::infonce_loss(
      a, b, InfoNCEOptions().learnable_temperature(torch::full({}, 0.1, a.options())));
  INFO(observer.report());
  CHECK(observer.count() == 0);
  CHECK(learned.requires_grad());
  CHECK(direct.device().is_meta());
}

TEST_CASE("on the CPU a non-positive temperature tensor is still refused by name", "[loss][cpu]") {
  const auto x = torch::randn({4, 3});
  for (const double bad : {0.0, -1.0}) {
    try {
      convirt::infonce_loss(x, x,
                            InfoNCEOptions().learnable_temperature(torch::scalar_tensor(bad)));
      FAIL("expected an error for temperature " << bad);
    } catch (const c10::ValueError& e) {
      const std::string msg = e.what_without_backtrace();
      INFO(msg);
      CHECK(msg.find("temperature must be > 0, got " + std::to_string(static_cast<int>(bad))) !=
            std::string::npos);
    }
  }
}
