// The fused CPU path's machinery: each instruction set's elementwise loops against the baseline
// build, the tiling, the loss's thread pool and its hold on the BLAS thread count.

#include <convirt/loss/infonce.h>
#include <convirt/loss/infonce/cpu.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

// Internal headers of src/loss (the test target adds that folder to its include path).
#include "loops.h"
#include "threads.h"

namespace {

namespace tile = convirt::tile_math;
using convirt::detail::InfoNCELoops;

struct NamedLoops {
  std::string name;
  const InfoNCELoops<float>* loops;
};

// The vector builds this CPU can run (the baseline build is the reference they are checked
// against).
std::vector<NamedLoops> vector_loops() {
  std::vector<NamedLoops> out;
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    out.push_back({"avx2", &convirt::detail::loops_avx2::kFloat});
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
    out.push_back({"avx512", &convirt::detail::loops_avx512::kFloat});
#endif
  return out;
}

const float kNegInf = -std::numeric_limits<float>::infinity();

// A row of logits of one kind: ordinary, huge (exp overflows without the max shift), with -inf
// entries (masked pairs), or entirely -inf.
std::vector<float> make_row(int64_t n, int kind, std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> row(n);
  for (auto& x : row) x = normal(gen);
  if (kind == 1)
    for (auto& x : row) x *= 3000.0f;
  if (kind == 2)
    for (int64_t j = 0; j < n; j += 3) row[j] = kNegInf;
  if (kind == 3)
    for (auto& x : row) x = kNegInf;
  return row;
}

bool close(float got, float want, float rtol, float atol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  return std::abs(got - want) <= atol + rtol * std::abs(want);
}

// Odd sizes around the vector widths (8, 16) and their unrolled multiples, so tails are exercised.
const std::vector<int64_t> kSizes = {1,  2,  7,  8,  9,  15,  16,  17,  31,
                                     33, 47, 63, 64, 65, 130, 513, 1031};

}  // namespace

TEST_CASE("each instruction set's loops agree with the baseline loops on odd sizes and extremes",
          "[loss][cpu]") {
  const auto& base = convirt::detail::loops_default::kFloat;
  const auto builds = vector_loops();
  INFO("vector builds this CPU runs: " << builds.size());
  for (const auto& [name, loops] : builds) {
    std::mt19937 gen(11);
    for (int64_t n : kSizes) {
      for (int kind = 0; kind < 4; ++kind) {
        INFO(name << " n=" << n << " kind=" << kind);
        // scale_row_and_reduce: the scaled row exactly, the max exactly, the sum to rounding.
        const float inv_tau = kind == 1 ? 0.01f : 10.0f;
        std::vector<float> r1 = make_row(n, kind, gen), r2 = r1;
        const tile::LseState<float> s1 = base.scale_row_and_reduce(r1.data(), n, inv_tau);
        const tile::LseState<float> s2 = loops->scale_row_and_reduce(r2.data(), n, inv_tau);
        CHECK(r1 == r2);
        CHECK(s1.max == s2.max);
        CHECK(close(s2.sum, s1.sum, 2e-6f, 0.0f));

        // merge_columns over a panel of 5 rows of this kind, into states that already hold one row.
        const int64_t rows = 5;
        std::vector<float> panel;
        for (int64_t i = 0; i < rows; ++i) {
          std::vector<float> row = make_row(n, i == 2 ? 0 : kind, gen);
          panel.insert(panel.end(), row.begin(), row.end());
        }
        std::vector<float> m1 = make_row(n, kind == 3 ? 3 : 0, gen), m2 = m1;
        std::vector<float> c1(n, kind == 3 ? 0.0f : 1.0f), c2 = c1;
        std::vector<float> scratch(n);
        base.merge_columns(panel.data(), rows, n, 0, n, m1.data(), c1.data(), scratch.data());
        loops->merge_columns(panel.data(), rows, n, 0, n, m2.data(), c2.data(), scratch.data());
        CHECK(m1 == m2);
        bool sums_close = true;
        for (int64_t j = 0; j < n; ++j) sums_close = sums_close && close(c2[j], c1[j], 2e-6f, 0.0f);
        CHECK(sums_close);

        // gradient_row: every dS entry and the dS . S sum, to rounding.
        if (kind == 3) continue;  // an all -inf row has no finite log-sum-exp to subtract
        std::vector<float> raw = make_row(n, kind == 1 ? 0 : kind, gen);
        std::vector<float> col_lse(n);
        for (auto& x : col_lse) x = std::normal_distribution<float>(2.0f, 1.0f)(gen);
        const tile::GradWeights<float> w = tile::grad_weights(1.0f, 0.75f, n);
        std::vector<float> g1 = raw, g2 = raw;
        const float row_lse = 3.0f;
        const float a1 = base.gradient_row(g1.data(), col_lse.data(), n, row_lse, 0.5f, w);
        const float a2 = loops->gradient_row(g2.data(), col_lse.data(), n, row_lse, 0.5f, w);
        bool grads_close = true;
        for (int64_t j = 0; j < n; ++j)
          grads_close = grads_close && close(g2[j], g1[j], 2e-6f, 1e-12f);
        CHECK(grads_close);
        CHECK(close(a2, a1, 1e-5f, 1e-9f));
      }
    }
  }
}

TEST_CASE("the loops in use are the widest this CPU runs, AVX2 for rows under 2048",
          "[loss][cpu]") {
  const std::string isa = convirt::infonce_cpu_isa();
  const auto builds = vector_loops();
  if (std::getenv("CONVIRT_INFONCE_CPU_ISA") != nullptr)
    return;  // a capped run: nothing to compare
  const std::string widest = builds.empty() ? "baseline" : builds.back().name;
  CHECK(isa == widest);
  const auto* long_rows = &convirt::detail::infonce_loops_float(4096);
  const auto* short_rows = &convirt::detail::infonce_loops_float(32);
  if (builds.empty()) {
    CHECK(long_rows == &convirt::detail::loops_default::kFloat);
    CHECK(short_rows == &convirt::detail::loops_default::kFloat);
  } else {
    CHECK(long_rows == builds.back().loops);
    // Short rows (ordinary batch sizes) give AVX2's bits on AVX-512 machines too.
    CHECK(short_rows == builds.front().loops);
    CHECK(builds.front().name == "avx2");
  }
}

TEST_CASE("tiling: equal panels within the budget, GEMM tiles from the L2 cache", "[loss][cpu]") {
  for (int64_t n : {1, 100, 4096, 5000, 8192, 65536}) {
    const auto t = convirt::infonce_cpu_tiling(n, 512, 4);
    INFO("n=" << n << " panel_rows=" << t.panel_rows << " tile " << t.tile_rows << "x"
              << t.tile_cols);
    CHECK(t.panel_rows >= 1);
    CHECK(t.panel_rows <= n);
    CHECK(t.tile_rows >= 1);
    CHECK(t.tile_rows <= t.panel_rows);
    CHECK(t.tile_cols >= 1);
    CHECK(t.tile_cols <= n);
    CHECK(t.panel_budget_bytes >= (int64_t{8} << 20));
    CHECK(t.panel_budget_bytes <= (int64_t{64} << 20));
    // Within the budget, or the 512-row floor that keeps every thread busy at large N.
    CHECK((t.panel_rows * n * 4 <= t.panel_budget_bytes || t.panel_rows == 512));
    // Equal panels: the last one is at most one row shorter per panel than the others.
    const int64_t panels = (n + t.panel_rows - 1) / t.panel_rows;
    CHECK(n - (panels - 1) * t.panel_rows >= t.panel_rows - panels);
  }
  ::setenv("CONVIRT_INFONCE_PANEL_BYTES", "4096", 1);
  const auto small = convirt::infonce_cpu_tiling(300, 64, 4);
  ::unsetenv("CONVIRT_INFONCE_PANEL_BYTES");
  CHECK(small.panel_budget_bytes == 4096);
  CHECK(small.panel_rows == 3);
  CHECK(small.tile_rows == 3);
  CHECK_THROWS_AS(convirt::infonce_cpu_tiling(0, 512, 4), c10::ValueError);
}

TEST_CASE("results do not depend on the thread count, and the BLAS thread count is restored",
          "[loss][cpu]") {
  torch::manual_seed(21);
  auto v = torch::randn({700, 96});
  auto u = torch::randn({700, 96});
  auto opts = convirt::InfoNCEOptions().backend(convirt::InfoNCEBackend::kFused);
  auto run = [&] {
    auto a = v.clone().requires_grad_(true);
    auto b = u.clone().requires_grad_(true);
    auto loss = convirt::infonce_loss(a, b, opts);
    loss.backward();
    return std::vector<torch::Tensor>{loss.detach(), a.grad(), b.grad()};
  };
  const int before_threads = at::get_num_threads();
  const int blas_before = convirt::detail::blas_thread_count();
  ::setenv("CONVIRT_INFONCE_PANEL_BYTES", "65536", 1);  // 23 rows a panel: many panels and blocks
  at::set_num_threads(1);
  const auto one = run();
  at::set_num_threads(5);
  CHECK(convirt::infonce_cpu_threads() >= 5);
  const auto five = run();
  ::unsetenv("CONVIRT_INFONCE_PANEL_BYTES");
  at::set_num_threads(before_threads);
  for (size_t i = 0; i < one.size(); ++i) CHECK(torch::equal(one[i], five[i]));
  CHECK(convirt::detail::blas_thread_count() == blas_before);
}

TEST_CASE("losses computed on several threads at once match those computed one at a time",
          "[loss][cpu]") {
  torch::manual_seed(22);
  std::vector<torch::Tensor> vs, us, want(4), got(4);
  auto opts = convirt::InfoNCEOptions().backend(convirt::InfoNCEBackend::kFused);
  for (int k = 0; k < 4; ++k) {
    vs.push_back(torch::randn({200 + 37 * k, 64}));
    us.push_back(torch::randn({200 + 37 * k, 64}));
    want[k] = convirt::infonce_loss(vs[k], us[k], opts);
  }
  std::vector<std::thread> callers;
  for (int k = 0; k < 4; ++k)
    callers.emplace_back([&, k] { got[k] = convirt::infonce_loss(vs[k], us[k], opts); });
  for (auto& t : callers) t.join();
  for (int k = 0; k < 4; ++k) CHECK(torch::equal(got[k], want[k]));
}

TEST_CASE("the loss's thread pool runs every index once and passes exceptions on", "[loss][cpu]") {
  for (int threads : {1, 2, 3, 7}) {
    std::vector<int> seen(threads, 0);
    convirt::detail::run_on_loss_threads(threads, [&](int t) { seen[t] += 1; });
    CHECK(seen == std::vector<int>(threads, 1));
  }
  CHECK_THROWS_WITH(convirt::detail::run_on_loss_threads(3,
                                                         [](int t) {
                                                           if (t == 2)
                                                             throw std::runtime_error("worker 2");
                                                         }),
                    "worker 2");
  int after = 0;
  convirt::detail::run_on_loss_threads(2, [&](int t) {
    if (t == 0) after = 1;
  });
  CHECK(after == 1);  // a pool that saw an exception still works
}

TEST_CASE("a backward that recomputes the logits gives the bits of one that kept them",
          "[loss][cpu]") {
  torch::manual_seed(23);
  auto opts = convirt::InfoNCEOptions().backend(convirt::InfoNCEBackend::kFused);
  auto v = torch::randn({300, 40});
  auto u = torch::randn({300, 40});
  auto grads = [&](const torch::Tensor& loss, torch::Tensor& a, torch::Tensor& b) {
    loss.backward();
    return std::vector<torch::Tensor>{loss.detach(), a.grad(), b.grad()};
  };
  // Alone: the forward keeps its logits and the backward uses them.
  auto a1 = v.clone().requires_grad_(true), b1 = u.clone().requires_grad_(true);
  const auto kept = grads(convirt::infonce_loss(a1, b1, opts), a1, b1);
  // Two forwards, then the first one's backward: the second forward replaced the kept logits, so
  // this backward recomputes them.
  auto a2 = v.clone().requires_grad_(true), b2 = u.clone().requires_grad_(true);
  auto first = convirt::infonce_loss(a2, b2, opts);
  auto a3 = u.clone().requires_grad_(true), b3 = v.clone().requires_grad_(true);
  auto second = convirt::infonce_loss(a3, b3, opts);
  const auto recomputed = grads(first, a2, b2);
  for (size_t i = 0; i < kept.size(); ++i) CHECK(torch::equal(kept[i], recomputed[i]));
  // And the second one's backward (its logits were freed by neither backward) is right too.
  auto a4 = u.clone().requires_grad_(true), b4 = v.clone().requires_grad_(true);
  const auto alone = grads(convirt::infonce_loss(a4, b4, opts), a4, b4);
  const auto late = grads(second, a3, b3);
  for (size_t i = 0; i < alone.size(); ++i) CHECK(torch::equal(alone[i], late[i]));
}
