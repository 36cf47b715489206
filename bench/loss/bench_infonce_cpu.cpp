// CPU benchmark of the bidirectional InfoNCE loss, forward + backward in fp32: the naive LibTorch
// formulation (materialised logits, two cross-entropies, autograd) against convirt's fused path.
//
// Each (side, N) runs in its own child process (this program re-executed with --child), so the peak
// resident memory reported for a side is that side's alone. The parent prints one table with the
// medians, the time ratio and the memory ratio, all measured in this one run.
//
//   bench_infonce_cpu [--sizes 1024,4096,8192] [--dim 512] [--reps 5] [--large 65536] [--threads 0]

#include <convirt/core/threads.h>
#include <convirt/loss/infonce.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
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

// Runs one side in this process: prints "median_ms peak_rss_mib".
int run_child(const std::string& side, int64_t n, int64_t d, int reps, int threads) {
  convirt::set_num_threads(threads);
  torch::manual_seed(0);
  auto v = torch::randn({n, d}).requires_grad_(true);
  auto u = torch::randn({n, d}).requires_grad_(true);
  auto opts = convirt::InfoNCEOptions().temperature(kTau).image_to_text_weight(kLambda).backend(
      convirt::InfoNCEBackend::kFused);
  std::vector<double> ms;
  for (int r = 0; r < reps + 1; ++r) {  // the first run is a warm-up
    v.mutable_grad() = torch::Tensor();
    u.mutable_grad() = torch::Tensor();
    auto t0 = std::chrono::steady_clock::now();
    auto loss = side == "naive" ? naive_loss(v, u) : convirt::infonce_loss(v, u, opts);
    loss.backward();
    auto t1 = std::chrono::steady_clock::now();
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  std::printf("%.3f %.1f\n", ms[ms.size() / 2], ru.ru_maxrss / 1024.0);
  return 0;
}

struct Result {
  bool ok = false;
  double ms = 0, rss_mib = 0;
};

Result spawn(const std::string& self, const std::string& side, int64_t n, int64_t d, int reps,
             int threads) {
  std::ostringstream cmd;
  cmd << self << " --child " << side << " " << n << " " << d << " " << reps << " " << threads
      << " 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.str().c_str(), "r"), pclose);
  Result r;
  if (!pipe) return r;
  r.ok = std::fscanf(pipe.get(), "%lf %lf", &r.ms, &r.rss_mib) == 2;
  return r;
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
  if (argc == 7 && std::string(argv[1]) == "--child") {
    return run_child(argv[2], std::stoll(argv[3]), std::stoll(argv[4]), std::stoi(argv[5]),
                     std::stoi(argv[6]));
  }
  std::vector<int64_t> sizes = {1024, 4096, 8192};
  int64_t d = 512, large = 65536;
  int reps = 5, threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
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
  char self[4096];
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0) return 1;
  self[len] = '\0';
  threads = threads > 0 ? threads : convirt::default_num_threads();

  std::printf("InfoNCE fp32 forward+backward on the CPU, D=%lld, %d threads, median of %d runs\n",
              static_cast<long long>(d), threads, reps);
  std::printf(
      "| N | naive ms | fused ms | naive/fused time | naive MiB | fused MiB | naive/fused memory "
      "|\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (int64_t n : sizes) {
    Result naive = spawn(self, "naive", n, d, reps, threads);
    Result fused = spawn(self, "fused", n, d, reps, threads);
    if (!naive.ok || !fused.ok) {
      std::printf("| %lld | %s | %s | - | - | - | - |\n", static_cast<long long>(n),
                  naive.ok ? "ok" : "failed", fused.ok ? "ok" : "failed");
      continue;
    }
    std::printf("| %lld | %.1f | %.1f | %.2fx | %.0f | %.0f | %.2fx |\n", static_cast<long long>(n),
                naive.ms, fused.ms, naive.ms / fused.ms, naive.rss_mib, fused.rss_mib,
                naive.rss_mib / fused.rss_mib);
    std::fflush(stdout);
  }
  if (large > 0) {
    Result fused = spawn(self, "fused", large, d, 1, threads);
    if (fused.ok) {
      std::printf("\nfused alone at N=%lld: %.0f ms forward+backward, peak RSS %.0f MiB\n",
                  static_cast<long long>(large), fused.ms, fused.rss_mib);
    } else {
      std::printf("\nfused alone at N=%lld: failed\n", static_cast<long long>(large));
    }
  }
  return 0;
}
