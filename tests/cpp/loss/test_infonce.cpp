#include <convirt/loss/infonce.h>
#include <convirt/loss/infonce/tile_math.h>

#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "test_util.h"

using convirt::InfoNCEBackend;
using convirt::InfoNCEOptions;

namespace {

InfoNCEOptions opts(InfoNCEBackend backend, double tau = 0.1, double lambda = 0.75) {
  return InfoNCEOptions().temperature(tau).image_to_text_weight(lambda).backend(backend);
}

// The paper's formula (section 1) as an explicit double loop over i and k, in long double.
double paper_loss(const torch::Tensor& v, const torch::Tensor& u, double tau, double lambda) {
  auto a = v.to(torch::kDouble);
  auto b = u.to(torch::kDouble);
  const int64_t n = a.size(0), d = a.size(1);
  auto cos = [&](int64_t i, int64_t k) {
    long double dot = 0, na = 0, nb = 0;
    for (int64_t c = 0; c < d; ++c) {
      long double x = a[i][c].item<double>(), y = b[k][c].item<double>();
      dot += x * y;
      na += x * x;
      nb += y * y;
    }
    return dot / (std::sqrt(na) * std::sqrt(nb));
  };
  long double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    long double sum_vu = 0, sum_uv = 0;
    for (int64_t k = 0; k < n; ++k) {
      sum_vu += std::exp(cos(i, k) / tau);
      sum_uv += std::exp(cos(k, i) / tau);
    }
    const long double pos = std::exp(cos(i, i) / tau);
    total += lambda * -std::log(pos / sum_vu) + (1 - lambda) * -std::log(pos / sum_uv);
  }
  return static_cast<double>(total / n);
}

struct Grads {
  torch::Tensor loss, image, text, tau;
};

Grads run(const torch::Tensor& v0, const torch::Tensor& u0, InfoNCEBackend backend, double tau,
          double lambda) {
  auto v = v0.detach().clone().requires_grad_(true);
  auto u = u0.detach().clone().requires_grad_(true);
  auto t = torch::scalar_tensor(tau, torch::kDouble).requires_grad_(true);
  auto o = opts(backend, tau, lambda).learnable_temperature(t);
  auto loss = convirt::infonce_loss(v, u, o);
  loss.backward();
  return {loss.detach(), v.grad(), u.grad(), t.grad()};
}

void check_close(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol,
                 const std::string& what) {
  INFO(what << ": max abs diff " << convirt::test::max_abs_diff(a, b));
  CHECK(torch::allclose(a.to(torch::kDouble), b.to(torch::kDouble), rtol, atol));
}

// Keeps the fused CPU path's panel small so that even small inputs cross several panels.
struct SmallPanels {
  explicit SmallPanels(const char* bytes) { ::setenv("CONVIRT_INFONCE_PANEL_BYTES", bytes, 1); }
  ~SmallPanels() { ::unsetenv("CONVIRT_INFONCE_PANEL_BYTES"); }
};

}  // namespace

TEST_CASE("fused and reference agree with the paper's double loop", "[loss][cpu]") {
  torch::manual_seed(1);
  for (int64_t n : {1, 2, 5}) {
    auto v = torch::randn({n, 3}, torch::kDouble);
    auto u = torch::randn({n, 3}, torch::kDouble);
    for (double lambda : {0.0, 0.75, 1.0}) {
      const double expected = paper_loss(v, u, 0.1, lambda);
      for (auto backend : {InfoNCEBackend::kReference, InfoNCEBackend::kFused}) {
        const double got = convirt::infonce_loss(v, u, opts(backend, 0.1, lambda)).item<double>();
        INFO("n=" << n << " lambda=" << lambda << " backend=" << convirt::to_string(backend));
        CHECK(got == Approx(expected).epsilon(1e-10));
      }
    }
  }
}

TEST_CASE("fused matches reference in value and all gradients across sizes", "[loss][cpu]") {
  torch::manual_seed(2);
  for (int64_t n : {1, 2, 7, 64, 257, 1000}) {
    for (int64_t d : {1, 3, 128, 512}) {
      auto v = torch::randn({n, d});
      auto u = torch::randn({n, d});
      auto ref =
          run(v.to(torch::kDouble), u.to(torch::kDouble), InfoNCEBackend::kReference, 0.1, 0.75);
      auto fused = run(v, u, InfoNCEBackend::kFused, 0.1, 0.75);
      const std::string tag = "n=" + std::to_string(n) + " d=" + std::to_string(d);
      check_close(fused.loss, ref.loss, 1e-5, 1e-5, tag + " loss");
      // With D = 1 the true gradient is 0 (normalised 1-D vectors are +-1): what is left is float32
      // cancellation error of the projection, so the absolute tolerance is looser there.
      const double atol = d == 1 ? 2e-4 : 2e-6;
      check_close(fused.image, ref.image, 1e-3, atol, tag + " grad image");
      check_close(fused.text, ref.text, 1e-3, atol, tag + " grad text");
      check_close(fused.tau, ref.tau, 1e-3, 1e-4, tag + " grad temperature");
    }
  }
}

TEST_CASE("float64 fused matches reference to near machine precision", "[loss][cpu]") {
  torch::manual_seed(3);
  SmallPanels small("2048");  // 8 x 32 doubles: many panels
  auto v = torch::randn({33, 17}, torch::kDouble);
  auto u = torch::randn({33, 17}, torch::kDouble);
  auto ref = run(v, u, InfoNCEBackend::kReference, 0.07, 0.3);
  auto fused = run(v, u, InfoNCEBackend::kFused, 0.07, 0.3);
  check_close(fused.loss, ref.loss, 1e-12, 1e-12, "loss");
  check_close(fused.image, ref.image, 1e-10, 1e-12, "grad image");
  check_close(fused.text, ref.text, 1e-10, 1e-12, "grad text");
  check_close(fused.tau, ref.tau, 1e-10, 1e-12, "grad temperature");
}

TEST_CASE("float64 gradients match central finite differences", "[loss][cpu]") {
  torch::manual_seed(4);
  const int64_t n = 4, d = 3;
  auto v = torch::randn({n, d}, torch::kDouble);
  auto u = torch::randn({n, d}, torch::kDouble);
  const double tau = 0.5, lambda = 0.75, h = 1e-6;
  for (auto backend : {InfoNCEBackend::kFused, InfoNCEBackend::kReference}) {
    auto g = run(v, u, backend, tau, lambda);
    auto loss_at = [&](const torch::Tensor& vv, const torch::Tensor& uu, double t) {
      return convirt::infonce_loss(vv, uu, opts(backend, t, lambda)).item<double>();
    };
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t c = 0; c < d; ++c) {
        auto vp = v.clone(), vm = v.clone();
        vp[i][c] += h;
        vm[i][c] -= h;
        CHECK(g.image[i][c].item<double>() ==
              Approx((loss_at(vp, u, tau) - loss_at(vm, u, tau)) / (2 * h)).margin(1e-7));
        auto up = u.clone(), um = u.clone();
        up[i][c] += h;
        um[i][c] -= h;
        CHECK(g.text[i][c].item<double>() ==
              Approx((loss_at(v, up, tau) - loss_at(v, um, tau)) / (2 * h)).margin(1e-7));
      }
    }
    CHECK(g.tau.item<double>() ==
          Approx((loss_at(v, u, tau + h) - loss_at(v, u, tau - h)) / (2 * h)).margin(1e-7));
  }
}

TEST_CASE("half and bfloat16 inputs accumulate in float32", "[loss][cpu]") {
  torch::manual_seed(5);
  auto v = torch::randn({50, 32});
  auto u = torch::randn({50, 32});
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    auto vh = v.to(dtype), uh = u.to(dtype);
    auto fused = run(vh, uh, InfoNCEBackend::kFused, 0.1, 0.75);
    auto ref =
        run(vh.to(torch::kDouble), uh.to(torch::kDouble), InfoNCEBackend::kReference, 0.1, 0.75);
    CHECK(fused.loss.scalar_type() == torch::kFloat);
    CHECK(fused.image.scalar_type() == dtype);
    check_close(fused.loss, ref.loss, 1e-2, 1e-2, "low-precision loss");
    check_close(fused.image, ref.image, 5e-2, 2e-3, "low-precision grad image");
  }
}

TEST_CASE("non-contiguous inputs give the same result as contiguous ones", "[loss][cpu]") {
  torch::manual_seed(6);
  auto big_v = torch::randn({40, 2 * 24});
  auto big_u = torch::randn({24, 40}).t();  // transposed view
  auto v = big_v.slice(1, 0, 48, 2);        // strided columns
  auto u = big_u;
  REQUIRE(!v.is_contiguous());
  REQUIRE(!u.is_contiguous());
  for (auto backend : {InfoNCEBackend::kFused, InfoNCEBackend::kReference}) {
    auto a = run(v, u, backend, 0.1, 0.75);
    auto b = run(v.contiguous(), u.contiguous(), backend, 0.1, 0.75);
    check_close(a.loss, b.loss, 1e-6, 1e-6, "loss");
    check_close(a.image, b.image, 1e-5, 1e-7, "grad image");
  }
}

TEST_CASE("many panels give the same result as one panel, and reruns are bit-identical",
          "[loss][cpu]") {
  torch::manual_seed(7);
  auto v = torch::randn({300, 64});
  auto u = torch::randn({300, 64});
  auto one = run(v, u, InfoNCEBackend::kFused, 0.1, 0.75);
  Grads many;
  {
    SmallPanels small("4096");  // 3 rows of 300 floats per panel
    many = run(v, u, InfoNCEBackend::kFused, 0.1, 0.75);
  }
  check_close(many.loss, one.loss, 1e-5, 1e-6, "loss");
  check_close(many.image, one.image, 1e-4, 1e-7, "grad image");
  check_close(many.text, one.text, 1e-4, 1e-7, "grad text");
  auto again = run(v, u, InfoNCEBackend::kFused, 0.1, 0.75);
  CHECK(torch::equal(again.loss, one.loss));
  CHECK(torch::equal(again.image, one.image));
  CHECK(torch::equal(again.text, one.text));
  CHECK(torch::equal(again.tau, one.tau));
}

TEST_CASE("extreme logits stay finite", "[loss][cpu]") {
  auto v = torch::ones({16, 8});
  auto u = torch::ones({16, 8});
  v[3] *= -1;  // an anti-aligned pair: logits of -100 next to +100
  for (auto backend : {InfoNCEBackend::kFused, InfoNCEBackend::kReference}) {
    auto g = run(v, u, backend, 0.01, 0.75);
    CHECK(std::isfinite(g.loss.item<double>()));
    CHECK(torch::isfinite(g.image).all().item<bool>());
    CHECK(torch::isfinite(g.text).all().item<bool>());
    CHECK(std::isfinite(g.tau.item<double>()));
  }
}

TEST_CASE("lambda 1 and 0 reduce to the one-directional losses", "[loss][cpu]") {
  torch::manual_seed(8);
  auto v = torch::randn({20, 10});
  auto u = torch::randn({20, 10});
  auto s =
      torch::mm(
          torch::nn::functional::normalize(v, torch::nn::functional::NormalizeFuncOptions().dim(1)),
          torch::nn::functional::normalize(u, torch::nn::functional::NormalizeFuncOptions().dim(1))
              .t()) /
      0.1;
  auto target = torch::arange(20);
  const double i2t = torch::nn::functional::cross_entropy(s, target).item<double>();
  const double t2i = torch::nn::functional::cross_entropy(s.t(), target).item<double>();
  for (auto backend : {InfoNCEBackend::kFused, InfoNCEBackend::kReference}) {
    auto out1 = convirt::infonce_loss_with_stats(v, u, opts(backend, 0.1, 1.0));
    auto out0 = convirt::infonce_loss_with_stats(v, u, opts(backend, 0.1, 0.0));
    CHECK(out1.loss.item<double>() == Approx(i2t).epsilon(1e-5));
    CHECK(out0.loss.item<double>() == Approx(t2i).epsilon(1e-5));
    CHECK(out1.image_to_text.item<double>() == Approx(i2t).epsilon(1e-5));
    CHECK(out1.text_to_image.item<double>() == Approx(t2i).epsilon(1e-5));
  }
}

TEST_CASE("top-1 accuracies count pairs whose partner scores highest", "[loss][cpu]") {
  // Pairs 0 and 1 match themselves; pair 2's image is closest to report 0.
  auto v = torch::tensor({{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {1.0, 0.0, 0.1}});
  auto u = torch::tensor({{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}, {0.0, 0.0, 1.0}});
  for (auto backend : {InfoNCEBackend::kFused, InfoNCEBackend::kReference}) {
    auto out = convirt::infonce_loss_with_stats(v, u, opts(backend));
    CHECK(out.image_to_text_accuracy.item<double>() == Approx(2.0 / 3.0));
    CHECK(out.text_to_image_accuracy.item<double>() == Approx(1.0));
  }
}

TEST_CASE("non-finite inputs give a non-finite loss, not a crash", "[loss][cpu]") {
  auto v = torch::randn({6, 4});
  auto u = torch::randn({6, 4});
  v[2][1] = std::numeric_limits<float>::quiet_NaN();
  for (auto backend : {InfoNCEBackend::kFused, InfoNCEBackend::kReference}) {
    auto loss = convirt::infonce_loss(v, u, opts(backend));
    CHECK(!std::isfinite(loss.item<double>()));
  }
  u[0][0] = std::numeric_limits<float>::infinity();
  auto loss = convirt::infonce_loss(v, u, opts(InfoNCEBackend::kFused).normalize(false));
  CHECK(!std::isfinite(loss.item<double>()));
}

TEST_CASE("bad arguments raise errors naming the argument and the values", "[loss][cpu]") {
  auto ok = torch::randn({4, 3});
  auto expect_error = [](auto&& fn, const std::string& needle) {
    try {
      fn();
      FAIL("expected an error mentioning: " << needle);
    } catch (const c10::Error& e) {
      const std::string msg = e.what_without_backtrace();
      INFO(msg);
      CHECK(msg.find(needle) != std::string::npos);
    }
  };
  expect_error(
      [&] {
        convirt::infonce_loss(torch::randn({0, 3}), torch::randn({0, 3}));
      },
      "image_emb must have at least one row (N >= 1), got [0, 3]");
  expect_error(
      [&] {
        convirt::infonce_loss(torch::randn({4, 3, 2}), ok);
      },
      "image_emb must be 2-D [N, D], got [4, 3, 2]");
  expect_error(
      [&] {
        convirt::infonce_loss(ok, torch::randn({5, 3}));
      },
      "same number of rows N, got 4 and 5");
  expect_error(
      [&] {
        convirt::infonce_loss(ok, torch::randn({4, 2}));
      },
      "same width D >= 1, got [4, 3] and [4, 2]");
  expect_error(
      [&] {
        convirt::infonce_loss(ok, torch::ones({4, 3}, torch::kLong));
      },
      "text_emb must be floating point");
  expect_error([&] { convirt::infonce_loss(ok, ok.to(torch::kDouble)); },
               "same dtype, got Float and Double");
  expect_error([&] { convirt::infonce_loss(ok, ok, InfoNCEOptions().temperature(0)); },
               "temperature must be > 0, got 0");
  expect_error([&] { convirt::infonce_loss(ok, ok, InfoNCEOptions().temperature(-1)); },
               "temperature must be > 0, got -1");
  expect_error([&] { convirt::infonce_loss(ok, ok, InfoNCEOptions().image_to_text_weight(1.5)); },
               "image_to_text_weight must be in [0, 1], got 1.5");
  expect_error([] { convirt::parse_infonce_backend("fast"); },
               "backend must be one of 'auto', 'reference', 'fused', got 'fast'");
  CHECK_THROWS_AS(convirt::infonce_loss(ok, torch::ones({4, 3}, torch::kLong)), c10::TypeError);
  CHECK_THROWS_AS(convirt::infonce_loss(ok, ok, InfoNCEOptions().temperature(0)), c10::ValueError);
}

TEST_CASE("InfoNCELoss module learns its temperature in log space, clamped", "[loss][cpu]") {
  torch::manual_seed(9);
  auto tau = torch::scalar_tensor(1.0, torch::kFloat);
  convirt::InfoNCELoss criterion(InfoNCEOptions().learnable_temperature(tau));
  auto params = criterion->named_parameters();
  REQUIRE(params.contains("log_temperature"));
  CHECK(params["log_temperature"].item<double>() == Approx(0.0));
  auto v = torch::randn({8, 4});
  auto u = v + 0.01 * torch::randn({8, 4});  // aligned pairs: a lower temperature lowers the loss
  torch::optim::SGD opt(criterion->parameters(), 0.01);
  const double before = criterion(v, u).item<double>();
  for (int step = 0; step < 10; ++step) {
    opt.zero_grad();
    criterion(v, u).backward();
    opt.step();
  }
  const double learned = criterion->temperature().item<double>();
  CHECK(learned < 1.0);
  CHECK(learned > 0.0);
  CHECK(criterion(v, u).item<double>() < before);
  std::ostringstream os;
  os << *criterion;
  CHECK(os.str().find("learnable") != std::string::npos);

  // No step, however large, makes tau non-positive: plain SGD with a huge rate on a temperature
  // parameterised directly went negative after one step; in log space it stops at the bound.
  torch::optim::SGD wild(criterion->parameters(), 1e6);
  for (int step = 0; step < 3; ++step) {
    wild.zero_grad();
    criterion(v, u).backward();
    wild.step();
    CHECK(std::isfinite(criterion(v, u).item<double>()));
  }
  CHECK(criterion->temperature().item<double>() == Approx(convirt::kMinLearnedTemperature));
  // Out-of-range starting values are refused by name.
  CHECK_THROWS_WITH(
      convirt::InfoNCELoss(InfoNCEOptions().learnable_temperature(torch::scalar_tensor(0.0))),
      Catch::Contains("must start in [0.01, 100], got 0"));
}

TEST_CASE("tile math: online merge equals a direct log-sum-exp, fast_exp is accurate",
          "[loss][cpu]") {
  namespace tm = convirt::tile_math;
  std::vector<double> xs = {-3.0, 0.5, 7.25, -100.0, 2.0};
  tm::LseState<double> s = tm::lse_empty<double>();
  for (double x : xs) s = tm::lse_push_block(s, x, 1.0);
  long double direct = 0;
  for (double x : xs) direct += std::exp(static_cast<long double>(x));
  CHECK(tm::lse_value(s) == Approx(static_cast<double>(std::log(direct))).epsilon(1e-14));
  CHECK(tm::lse_value(tm::lse_merge(tm::lse_empty<double>(), tm::lse_empty<double>())) ==
        -std::numeric_limits<double>::infinity());
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.01f) {
    const double ref = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(tm::fast_exp(x) - ref) / ref);
  }
  CHECK(worst < 3e-7);
  CHECK(tm::fast_exp(-200.0f) == 0.0f);
  CHECK(std::isnan(tm::fast_exp(std::numeric_limits<float>::quiet_NaN())));
}
