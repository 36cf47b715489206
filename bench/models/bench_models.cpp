// Training-step time of the `small` preset (fwd + bwd + Adam, batch 32, 64 px grey images, 64
// tokens): convirt in C++ against the same architecture written in Python PyTorch, measured in one
// run.
//
//   build/bin/bench_models [--steps 20] [--batch 32] [--threads 2] [--python /usr/bin/python3]
#include <convirt/models/convirt.h>
#include <convirt/models/presets.h>

#include <ATen/Parallel.h>
#include <torch/nn/functional/loss.h>
#include <torch/nn/functional/normalization.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace F = torch::nn::functional;

namespace {
struct Timing {
  double min_ms, median_ms, min_cpu_ms;
};

// The paper's loss written inline (tau 0.1, lambda 0.75), so this benchmark measures the model
// only.
torch::Tensor loss_fn(const torch::Tensor& v, const torch::Tensor& u) {
  auto a = F::normalize(v, F::NormalizeFuncOptions().dim(1));
  auto b = F::normalize(u, F::NormalizeFuncOptions().dim(1));
  auto logits = torch::matmul(a, b.t()) / 0.1;
  auto target = torch::arange(v.size(0));
  return 0.75 * F::cross_entropy(logits, target) + 0.25 * F::cross_entropy(logits.t(), target);
}
}  // namespace

int main(int argc, char** argv) {
  int steps = 20, batch = 32, threads = 2;
  std::string python = "/usr/bin/python3";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--steps")
      steps = std::atoi(argv[i + 1]);
    else if (a == "--batch")
      batch = std::atoi(argv[i + 1]);
    else if (a == "--threads")
      threads = std::atoi(argv[i + 1]);
    else if (a == "--python")
      python = argv[i + 1];
  }
  at::set_num_threads(threads);
  torch::manual_seed(0);
  auto cfg = convirt::models::small_preset(2048);
  auto model = convirt::models::make_convirt(cfg);
  model->train();
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-4).weight_decay(1e-6));
  const int64_t len = cfg.max_length(), px = cfg.image_size();
  auto images = torch::randn({batch, 1, px, px});
  auto ids = torch::randint(1, 2048, {batch, len});
  auto mask =
      (torch::arange(len).unsqueeze(0) < torch::randint(8, len + 1, {batch, 1})).to(torch::kLong);

  auto time_it = [&](const std::function<void()>& fn) {
    std::vector<double> ms, cpu;
    for (int s = 0; s < steps + 2; ++s) {
      auto t0 = std::chrono::steady_clock::now();
      std::clock_t c0 = std::clock();
      fn();
      std::clock_t c1 = std::clock();
      auto t1 = std::chrono::steady_clock::now();
      if (s >= 2) {
        ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
        cpu.push_back(1000.0 * static_cast<double>(c1 - c0) / CLOCKS_PER_SEC);
      }
    }
    std::sort(ms.begin(), ms.end());
    std::sort(cpu.begin(), cpu.end());
    return Timing{ms.front(), ms[ms.size() / 2], cpu.front()};
  };
  std::vector<Timing> cpp;
  cpp.push_back(time_it([&] { model->image_encoder(images).sum().backward(); }));
  cpp.push_back(time_it([&] { model->text_encoder(ids, mask).sum().backward(); }));
  cpp.push_back(time_it([&] {
    opt.zero_grad();
    auto [v, u] = model->forward(images, ids, mask);
    loss_fn(v, u).backward();
    opt.step();
  }));
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();

  std::vector<Timing> py;
  std::string cmd = python + " " + CONVIRT_BENCH_MODELS_SCRIPT + " " + std::to_string(steps) + " " +
                    std::to_string(batch) + " " + std::to_string(threads) + " 2>/dev/null";
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, pipe)) {
      Timing t{};
      if (std::sscanf(buf, "%lf %lf %lf", &t.min_ms, &t.median_ms, &t.min_cpu_ms) == 3)
        py.push_back(t);
    }
    pclose(pipe);
  }
  std::printf("machine: %u hardware threads, LibTorch intra-op threads %d\n",
              std::thread::hardware_concurrency(), at::get_num_threads());
  std::printf(
      "model: preset small (%lld parameters), batch %d, %lldx%lld grey images, %lld tokens, %d "
      "timed "
      "iterations\n",
      static_cast<long long>(params), batch, static_cast<long long>(px), static_cast<long long>(px),
      static_cast<long long>(len), steps);
  const char* names[] = {"image encoder fwd+bwd", "text encoder fwd+bwd",
                         "training step (fwd+bwd+Adam)"};
  std::printf("%-30s %9s %9s %9s | %9s %9s %9s | %7s %7s\n", "part", "C++ min", "C++ med",
              "C++ cpu", "Py min", "Py med", "Py cpu", "wall", "cpu");
  for (size_t i = 0; i < cpp.size(); ++i) {
    const auto& c = cpp[i];
    if (i < py.size()) {
      const auto& p = py[i];
      std::printf("%-30s %9.1f %9.1f %9.1f | %9.1f %9.1f %9.1f | %7.2f %7.2f\n", names[i], c.min_ms,
                  c.median_ms, c.min_cpu_ms, p.min_ms, p.median_ms, p.min_cpu_ms,
                  c.min_ms / p.min_ms, c.min_cpu_ms / p.min_cpu_ms);
    } else {
      std::printf("%-30s %9.1f %9.1f %9.1f | %9s %9s %9s | %7s %7s\n", names[i], c.min_ms,
                  c.median_ms, c.min_cpu_ms, "-", "-", "-", "-", "-");
    }
  }
  std::printf(
      "ms per iteration; ratios = C++ / Python of the minimum wall time and of the minimum process "
      "CPU time\n(<= 1.0: C++ no slower; CPU time is the steadier measure on a shared machine)%s\n",
      py.size() == cpp.size() ? "" : "; Python side did not run");
  return 0;
}
