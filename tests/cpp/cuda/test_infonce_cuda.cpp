// The fused CUDA InfoNCE kernels through the dispatcher: agreement with the float64 CPU
// computation, gradients (against float64 and by finite differences), bit-identical reruns, edge
// sizes.
#include <catch2/catch.hpp>

#include <convirt/loss/infonce.h>

#include "test_util.h"

#include <torch/torch.h>

#include <tuple>

namespace {

using convirt::InfoNCEBackend;
using convirt::InfoNCEOptions;

#define CONVIRT_REQUIRE_CUDA()              \
  do {                                      \
    if (!convirt::test::cuda_available()) { \
      WARN("skipped: no CUDA device");      \
      return;                               \
    }                                       \
  } while (0)

struct Grads {
  torch::Tensor loss, grad_image, grad_text, grad_tau;
};

// Loss and gradients with a learnable temperature, computed in `dtype` on `device` by `backend`,
// returned as float64 on the CPU.
Grads run(const torch::Tensor& a0, const torch::Tensor& b0, double tau, double lambda,
          torch::Device device, torch::Dtype dtype, InfoNCEBackend backend) {
  auto a = a0.to(device, dtype).detach().requires_grad_(true);
  auto b = b0.to(device, dtype).detach().requires_grad_(true);
  auto t = torch::full({}, tau,
                       torch::TensorOptions().device(device).dtype(
                           dtype == torch::kDouble ? torch::kDouble : torch::kFloat))
               .requires_grad_(true);
  auto opts =
      InfoNCEOptions().learnable_temperature(t).image_to_text_weight(lambda).backend(backend);
  auto loss = convirt::infonce_loss(a, b, opts);
  loss.backward();
  auto cpu = [](const torch::Tensor& x) { return x.detach().to(torch::kCPU, torch::kDouble); };
  return {cpu(loss), cpu(a.grad()), cpu(b.grad()), cpu(t.grad())};
}

double rel(const torch::Tensor& x, const torch::Tensor& ref) {
  return ((x - ref).norm() / ref.norm().clamp_min(1e-30)).item<double>();
}

}  // namespace

TEST_CASE("CUDA fused loss and gradients agree with float64 on the CPU", "[cuda][loss]") {
  CONVIRT_REQUIRE_CUDA();
  torch::manual_seed(1);
  const torch::Device gpu(torch::kCUDA);
  // Not tile multiples, n = 1, d not a multiple of 8/16.
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{1, 8}, {7, 5}, {129, 33}, {300, 128}};
  for (auto [n, d] : sizes) {
    const auto a = torch::randn({n, d}, torch::kDouble);
    const auto b = torch::randn({n, d}, torch::kDouble);
    for (auto dtype : {torch::kFloat, torch::kHalf, torch::kBFloat16, torch::kDouble}) {
      // The reference sees the values the GPU sees (inputs rounded to dtype).
      const auto ar = a.to(dtype).to(torch::kDouble), br = b.to(dtype).to(torch::kDouble);
      const Grads ref =
          run(ar, br, 0.1, 0.75, torch::kCPU, torch::kDouble, InfoNCEBackend::kReference);
      const Grads out = run(a, b, 0.1, 0.75, gpu, dtype, InfoNCEBackend::kFused);
      // Normalisation happens in fp32 then rounds to dtype again: 16-bit inputs move by an ulp.
      const double fwd_tol = dtype == torch::kFloat || dtype == torch::kDouble ? 1e-5 : 2e-2;
      const double bwd_tol = dtype == torch::kDouble ? 1e-10 : dtype == torch::kFloat ? 1e-4 : 5e-2;
      INFO("n=" << n << " d=" << d << " dtype=" << dtype);
      CHECK(out.loss.isfinite().item<bool>());
      CHECK(std::abs(out.loss.item<double>() - ref.loss.item<double>()) <=
            fwd_tol * (1 + std::abs(ref.loss.item<double>())));
      if (n > 1) {
        CHECK(rel(out.grad_image, ref.grad_image) <= bwd_tol);
        CHECK(rel(out.grad_text, ref.grad_text) <= bwd_tol);
        CHECK(std::abs(out.grad_tau.item<double>() - ref.grad_tau.item<double>()) <=
              bwd_tol * (1e-3 + std::abs(ref.grad_tau.item<double>())));
      }
    }
  }
}

TEST_CASE("CUDA forward statistics match float64", "[cuda][loss]") {
  CONVIRT_REQUIRE_CUDA();
  torch::manual_seed(2);
  const int64_t n = 200, d = 72;
  auto a = torch::nn::functional::normalize(torch::randn({n, d}),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto b = torch::nn::functional::normalize(torch::randn({n, d}),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto tau = torch::full({}, 0.07);
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("convirt::infonce_forward", "")
          .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>(
              const at::Tensor&, const at::Tensor&, const at::Tensor&, double)>();
  auto gpu = op.call(a.cuda(), b.cuda(), tau.cuda(), 0.6);
  auto ref = op.call(a.to(torch::kDouble), b.to(torch::kDouble), tau.to(torch::kDouble), 0.6);
  const char* names[] = {"loss", "row_lse", "col_lse", "diag", "row_max", "col_max"};
  auto g = std::vector<at::Tensor>{std::get<0>(gpu), std::get<1>(gpu), std::get<2>(gpu),
                                   std::get<3>(gpu), std::get<4>(gpu), std::get<5>(gpu)};
  auto r = std::vector<at::Tensor>{std::get<0>(ref), std::get<1>(ref), std::get<2>(ref),
                                   std::get<3>(ref), std::get<4>(ref), std::get<5>(ref)};
  for (size_t i = 0; i < g.size(); ++i) {
    INFO(names[i]);
    CHECK(g[i].scalar_type() == torch::kFloat);
    CHECK(rel(g[i].cpu().to(torch::kDouble), r[i]) <= 1e-5);
  }
}

TEST_CASE("CUDA fp32 gradients match finite differences", "[cuda][loss]") {
  CONVIRT_REQUIRE_CUDA();
  torch::manual_seed(3);
  const int64_t n = 40, d = 24;
  const auto a = torch::randn({n, d}), b = torch::randn({n, d});
  const Grads g = run(a, b, 0.2, 0.3, torch::kCUDA, torch::kFloat, InfoNCEBackend::kFused);
  // Directional derivatives along random directions, central differences evaluated in fp64 on the
  // GPU (the same op's fp64 path), compared with the fp32 kernel's analytic gradients.
  for (int trial = 0; trial < 3; ++trial) {
    const auto va = torch::randn({n, d}, torch::kDouble), vb = torch::randn({n, d}, torch::kDouble);
    const double h = 1e-4;
    auto loss_at = [&](double s) {
      auto opts = InfoNCEOptions().temperature(0.2).image_to_text_weight(0.3).backend(
          InfoNCEBackend::kFused);
      return convirt::infonce_loss((a.to(torch::kDouble) + s * va).cuda(),
                                   (b.to(torch::kDouble) + s * vb).cuda(), opts)
          .item<double>();
    };
    const double fd = (loss_at(h) - loss_at(-h)) / (2 * h);
    const double an = ((g.grad_image * va).sum() + (g.grad_text * vb).sum()).item<double>();
    CHECK(std::abs(fd - an) <= 1e-4 * (1 + std::abs(fd)));
  }
}

TEST_CASE("CUDA fused loss is bit-identical across reruns", "[cuda][loss]") {
  CONVIRT_REQUIRE_CUDA();
  torch::manual_seed(4);
  const auto a = torch::randn({1000, 96}), b = torch::randn({1000, 96});
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const Grads x = run(a, b, 0.1, 0.75, torch::kCUDA, dtype, InfoNCEBackend::kFused);
    const Grads y = run(a, b, 0.1, 0.75, torch::kCUDA, dtype, InfoNCEBackend::kFused);
    CHECK(torch::equal(x.loss, y.loss));
    CHECK(torch::equal(x.grad_image, y.grad_image));
    CHECK(torch::equal(x.grad_text, y.grad_text));
    CHECK(torch::equal(x.grad_tau, y.grad_tau));
  }
}

TEST_CASE("CUDA fused loss accepts non-contiguous inputs and keeps the device", "[cuda][loss]") {
  CONVIRT_REQUIRE_CUDA();
  torch::manual_seed(5);
  const auto a = torch::randn({33, 64}, torch::kCUDA).t().contiguous().t();  // column-major view
  const auto b = torch::randn({64, 33}, torch::kCUDA).t();                   // non-contiguous
  auto opts = InfoNCEOptions().backend(InfoNCEBackend::kFused);
  const auto out = convirt::infonce_loss(a, b, opts);
  const auto ref = convirt::infonce_loss(a.cpu().to(torch::kDouble), b.cpu().to(torch::kDouble),
                                         InfoNCEOptions().backend(InfoNCEBackend::kReference));
  CHECK(out.device().is_cuda());
  CHECK(std::abs(out.item<double>() - ref.item<double>()) < 1e-4);
}
