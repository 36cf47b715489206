// CPU benchmark of the bidirectional InfoNCE loss, forward + backward in fp32: the naive LibTorch
// formulation (materialised logits, two cross-entropies, autograd) against convirt's fused path,
// and both against the floor the machine's SGEMM sets: the fused loss does 8 N^2 D flops of GEMM
// (forward logits, backward recompute, dS B, dS^T A), so 8 N^2 D / (SGEMM rate) is as fast as it
// can be.
//
// For each N one child process (this program re-executed with --child) alternates naive, fused and
// a plain N x D x N SGEMM, rep after rep, so that load from other work on the machine falls on all
// three alike; the table gives each one's median and the median of the per-rep ratios. The peak
// resident memory of each side comes from a further child of its own (one run), so that it is that
// side's alone. The fused path's phases (convirt/loss/infonce/cpu.h) are averaged over the reps.
//
//   bench_infonce_cpu [--sizes 1024,4096,8192] [--dim 512] [--reps 3] [--large 0] [--threads 0]
//
// --large N adds one fused-only run at that N (65536 takes minutes to hours on 2 cores).

#include <convirt/core/threads.h>
#include <convirt/loss/infonce.h>
#include <convirt/loss/infonce/cpu.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr double kTau = 0.1;
constexpr double kLambda = 0.75;

torch::Tensor naive_loss(const torch::Tensor& v, const torch::Tensor& u) {
  namespace F = torch::nn::functional;
  auto a = F::normalize(v, F::NormalizeFuncOptions().dim(1));
  auto b = F::normalize(u, F::NormalizeFuncOptions().dim(1));
  auto logits = torch::mm(a, b.t()) / kTau;
  auto target = torch::arange(v.size(0));
  return kLambda * F::cross_entropy(logits, target) +
         (1 - kLambda) * F::cross_entropy(logits.t(), target);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double now_ms() {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

struct Sides {
  torch::Tensor v, u;
  convirt::InfoNCEOptions opts;
};

double run_side(Sides& s, bool naive) {
  s.v.mutable_grad() = torch::Tensor();
  s.u.mutable_grad() = torch::Tensor();
  const double t0 = now_ms();
  auto loss = naive ? naive_loss(s.v, s.u) : convirt::infonce_loss(s.v, s.u, s.opts);
  loss.backward();
  return now_ms() - t0;
}

// Alternates the three measurements; prints the medians, the median paired ratios and the phases.
int run_time_child(int64_t n, int64_t d, int reps, int threads, bool with_naive) {
  convirt::set_num_threads(threads);
  torch::manual_seed(0);
  Sides s{torch::randn({n, d}).requires_grad_(true), torch::randn({n, d}).requires_grad_(true),
          convirt::InfoNCEOptions().temperature(kTau).image_to_text_weight(kLambda).backend(
              convirt::InfoNCEBackend::kFused)};
  auto ga = torch::randn({n, d});
  // A rate, not a product: at most 8192 columns, so that the large run does not hold N x N.
  auto gb = torch::randn({std::min<int64_t>(n, 8192), d});
  std::vector<double> naive_ms, fused_ms, gemm_gflops, ratio, floor_ratio;
  std::vector<convirt::InfoNCECpuPhaseTimes> rep_phases;
  // The first round is a warm-up, except in the (fused-only) large run, which is too slow for one.
  for (int r = with_naive ? 0 : 1; r < reps + 1; ++r) {
    const double naive = with_naive ? run_side(s, true) : 0;
    convirt::reset_infonce_cpu_phase_times();
    const double fused = run_side(s, false);
    const convirt::InfoNCECpuPhaseTimes p = convirt::infonce_cpu_phase_times();
    const double g0 = now_ms();
    auto c = torch::mm(ga, gb.t());
    const double gemm = now_ms() - g0;
    const double gflops = 2.0 * n * gb.size(0) * d / (gemm * 1e6);
    if (r == 0) continue;
    naive_ms.push_back(naive);
    fused_ms.push_back(fused);
    gemm_gflops.push_back(gflops);
    ratio.push_back(with_naive ? fused / naive : 0);
    floor_ratio.push_back(fused / (8.0 * n * n * d / (gflops * 1e6)));
    rep_phases.push_back(p);
  }
  // The phases of the rep whose fused time is the median, so that "other" (the rep's time outside
  // the kernels) is that rep's own.
  std::vector<size_t> order(fused_ms.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return fused_ms[x] < fused_ms[y]; });
  const size_t mid = order[order.size() / 2];
  const convirt::InfoNCECpuPhaseTimes phases = rep_phases[mid];
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%.3f %.3f %.3f %.4f %.4f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.3f %.1f\n",
              median(naive_ms), median(fused_ms), median(gemm_gflops), median(ratio),
              median(floor_ratio), phases.forward_gemm_ms, phases.row_pass_ms,
              phases.column_pass_ms, phases.backward_gemm_ms, phases.gradient_pass_ms,
              phases.grad_gemm_ms, phases.wait_ms, phases.kernel_ms, fused_ms[mid],
              ru.ru_maxrss / 1024.0);
  return 0;
}

// One run of one side: prints its peak resident memory in MiB.
int run_rss_child(const std::string& side, int64_t n, int64_t d, int threads) {
  convirt::set_num_threads(threads);
  torch::manual_seed(0);
  Sides s{torch::randn({n, d}).requires_grad_(true), torch::randn({n, d}).requires_grad_(true),
          convirt::InfoNCEOptions().temperature(kTau).image_to_text_weight(kLambda).backend(
              convirt::InfoNCEBackend::kFused)};
  const double ms = run_side(s, side == "naive");
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%.1f %.3f\n", ru.ru_maxrss / 1024.0, ms);
  return 0;
}

std::vector<double> spawn(const std::string& self, const std::string& args, size_t expect) {
  const std::string cmd = self + " --child " + args + " 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::vector<double> out;
  if (!pipe) return out;
  double x;
  while (out.size() < expect && std::fscanf(pipe.get(), "%lf", &x) == 1) out.push_back(x);
  if (out.size() != expect) out.clear();
  return out;
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--child") {
    const std::string kind = argc > 2 ? argv[2] : "";
    if (kind == "time" && argc == 8)
      return run_time_child(std::stoll(argv[3]), std::stoll(argv[4]), std::stoi(argv[5]),
                            std::stoi(argv[6]), std::string(argv[7]) == "1");
    if (kind == "rss" && argc == 7)
      return run_rss_child(argv[3], std::stoll(argv[4]), std::stoll(argv[5]), std::stoi(argv[6]));
    std::cerr << "bad --child arguments\n";
    return 2;
  }
  std::vector<int64_t> sizes = {1024, 4096, 8192};
  int64_t d = 512, large = 0;
  int reps = 3, threads = 0;
  for (int i = 1; i < argc; i += 2) {
    std::string k = argv[i];
    if (i + 1 >= argc) {
      std::cerr << "option " << k << " needs a value\n";
      return 2;
    }
    std::string v = argv[i + 1];
    if (k == "--sizes")
      sizes = parse_list(v);
    else if (k == "--dim")
      d = std::stoll(v);
    else if (k == "--reps")
      reps = std::stoi(v);
    else if (k == "--large")
      large = std::stoll(v);
    else if (k == "--threads")
      threads = std::stoi(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (reps < 1) {
    std::cerr << "--reps must be >= 1, got " << reps << "\n";
    return 2;
  }
  char self_buf[4096];
  ssize_t len = readlink("/proc/self/exe", self_buf, sizeof(self_buf) - 1);
  if (len <= 0) return 1;
  self_buf[len] = '\0';
  const std::string self(self_buf);
  threads = threads > 0 ? threads : convirt::default_num_threads();
  convirt::set_num_threads(threads);
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");

  std::printf(
      "CPU: %s; %d LibTorch threads, fused loss on %d threads, %s loops for N >= 2048; "
      "OMP_WAIT_POLICY=%s\n",
      cpu_model().c_str(), threads, convirt::infonce_cpu_threads(),
      convirt::infonce_cpu_isa().c_str(), wait_policy ? wait_policy : "(unset)");
  std::printf(
      "InfoNCE fp32 forward+backward, D=%lld, median of %d alternating reps (naive, fused, SGEMM); "
      "floor = 8 N^2 D / SGEMM rate\n\n",
      static_cast<long long>(d), reps);
  std::printf(
      "| N | naive ms | fused ms | fused/naive | SGEMM GFLOP/s | floor ms | fused/floor | naive "
      "MiB | "
      "fused MiB | naive/fused memory |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<std::pair<int64_t, std::vector<double>>> phase_rows;
  for (int64_t n : sizes) {
    const std::string common = std::to_string(n) + " " + std::to_string(d);
    auto t = spawn(
        self, "time " + common + " " + std::to_string(reps) + " " + std::to_string(threads) + " 1",
        15);
    auto naive_mem = spawn(self, "rss naive " + common + " " + std::to_string(threads), 2);
    auto fused_mem = spawn(self, "rss fused " + common + " " + std::to_string(threads), 2);
    if (t.empty() || naive_mem.empty() || fused_mem.empty()) {
      std::printf("| %lld | failed |\n", static_cast<long long>(n));
      continue;
    }
    const double floor_ms = 8.0 * n * n * d / (t[2] * 1e6);
    std::printf("| %lld | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx | %.0f | %.0f | %.2fx |\n",
                static_cast<long long>(n), t[0], t[1], t[3], t[2], floor_ms, t[4], naive_mem[0],
                fused_mem[0], naive_mem[0] / fused_mem[0]);
    std::fflush(stdout);
    phase_rows.emplace_back(n, t);
  }
  std::printf(
      "\nFused phases, ms, of the rep with the median fused time (thread time / threads; other = "
      "that rep's time outside the kernels: normalisation, autograd, copies)\n\n");
  std::printf(
      "| N | fwd GEMM | row LSE | column LSE | bwd recompute GEMM | gradient | dS GEMMs | barrier "
      "wait | other |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& [n, t] : phase_rows) {
    std::printf("| %lld | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n",
                static_cast<long long>(n), t[5], t[6], t[7], t[8], t[9], t[10], t[11],
                t[13] - t[12]);
  }
  if (large > 0) {
    auto t = spawn(self,
                   "time " + std::to_string(large) + " " + std::to_string(d) + " 1 " +
                       std::to_string(threads) + " 0",
                   15);
    if (!t.empty()) {
      const double floor_ms = 8.0 * large * large * d / (t[2] * 1e6);
      std::printf(
          "\nfused alone at N=%lld: %.0f ms forward+backward (one run), floor %.0f ms, %.2fx the "
          "floor, peak RSS %.0f MiB\n",
          static_cast<long long>(large), t[1], floor_ms, t[4], t[14]);
    } else {
      std::printf("\nfused alone at N=%lld: failed\n", static_cast<long long>(large));
    }
  }
  return 0;
}
