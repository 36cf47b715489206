// Distributed pretraining pieces on this machine, each side measured in this one run:
//   1. the global-negatives loss, forward + backward, global batch N: one process holding the whole
//      batch (convirt::infonce_loss, fused CPU path, all threads) against `nproc` ranks holding
//      N / nproc rows each (infonce_loss_distributed over Gloo on localhost, threads split evenly);
//   2. the gradient exchange of an MLP on `nproc` ranks: backward then synchronize() with buckets
//      launched from autograd hooks (overlap) against packing and reducing after backward.
// The ranks are this program re-executed through convirt::dist::launch; rank 0 writes its medians
// to a file the parent reads.
//
//   bench_dist [--n 4096] [--dim 256] [--nproc 2] [--reps 5] [--hidden 1024] [--layers 4]

#include <convirt/core/threads.h>
#include <convirt/dist/grad_sync.h>
#include <convirt/dist/infonce.h>
#include <convirt/dist/launch.h>
#include <convirt/dist/process_group.h>
#include <convirt/dist/sharding.h>
#include <convirt/loss/infonce.h>

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Args {
  int64_t n = 4096, dim = 256, nproc = 2, hidden = 1024, layers = 4;
  int reps = 5;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const long long v = std::atoll(argv[i + 1]);
    if (k == "--n")
      a.n = v;
    else if (k == "--dim")
      a.dim = v;
    else if (k == "--nproc")
      a.nproc = v;
    else if (k == "--reps")
      a.reps = static_cast<int>(v);
    else if (k == "--hidden")
      a.hidden = v;
    else if (k == "--layers")
      a.layers = v;
    else {
      std::cerr << "unknown option " << k << "\n";
      std::exit(2);
    }
  }
  return a;
}

template <typename F>
double median_ms(int reps, const F& fn) {
  std::vector<double> ms;
  for (int r = 0; r < reps + 1; ++r) {  // the first run is a warm-up
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::pair<torch::Tensor, torch::Tensor> embeddings(int64_t n, int64_t d) {
  torch::manual_seed(0);
  return {torch::randn({n, d}), torch::randn({n, d})};
}

torch::nn::Sequential mlp(const Args& a) {
  torch::manual_seed(1);
  torch::nn::Sequential m;
  for (int64_t l = 0; l < a.layers; ++l) {
    m->push_back(torch::nn::Linear(a.hidden, a.hidden));
    m->push_back(torch::nn::ReLU());
  }
  return m;
}

int run_worker(const Args& a, const std::string& out) {
  auto ctx = convirt::dist::DistributedContext::from_environment();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(std::max<int>(1, cores / static_cast<int>(ctx.world_size())));
  auto [v_all, u_all] = embeddings(a.n, a.dim);
  const auto shard = convirt::dist::shard_range(a.n, ctx.rank(), ctx.world_size());
  auto v = v_all.slice(0, shard.begin, shard.end).clone().requires_grad_(true);
  auto u = u_all.slice(0, shard.begin, shard.end).clone().requires_grad_(true);
  const convirt::InfoNCEOptions opts;
  const double loss_ms = median_ms(a.reps, [&] {
    v.mutable_grad() = torch::Tensor();
    u.mutable_grad() = torch::Tensor();
    convirt::dist::infonce_loss_distributed(v, u, opts, ctx).backward();
  });

  auto model = mlp(a);
  auto x = torch::randn({256, a.hidden});
  double sync_ms[2] = {0, 0};
  for (int overlap = 0; overlap < 2; ++overlap) {
    convirt::dist::GradientSynchronizer sync(
        model->parameters(), ctx,
        convirt::dist::GradientSynchronizerOptions().overlap(overlap == 1).bucket_cap_mb(4));
    sync_ms[overlap] = median_ms(a.reps, [&] {
      model->zero_grad();
      model->forward(x).square().mean().backward();
      sync.synchronize();
    });
  }
  ctx.barrier();
  if (ctx.is_main()) {
    std::ofstream f(out);
    f << loss_ms << " " << sync_ms[0] << " " << sync_ms[1] << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (const char* out = std::getenv("CONVIRT_BENCH_DIST_OUT")) return run_worker(a, out);

  convirt::set_num_threads(0);
  auto [v0, u0] = embeddings(a.n, a.dim);
  auto v = v0.requires_grad_(true);
  auto u = u0.requires_grad_(true);
  const double one_ms = median_ms(a.reps, [&] {
    v.mutable_grad() = torch::Tensor();
    u.mutable_grad() = torch::Tensor();
    convirt::infonce_loss(v, u).backward();
  });

  const auto out = std::filesystem::temp_directory_path() /
                   ("convirt-bench-dist-" + std::to_string(::getpid()) + ".txt");
  ::setenv("CONVIRT_BENCH_DIST_OUT", out.c_str(), 1);
  std::vector<std::string> cmd{std::filesystem::read_symlink("/proc/self/exe").string()};
  for (int i = 1; i < argc; ++i) cmd.emplace_back(argv[i]);
  const int rc = convirt::dist::launch_local(a.nproc, cmd);
  ::unsetenv("CONVIRT_BENCH_DIST_OUT");
  if (rc != 0) {
    std::cerr << "bench_dist: the " << a.nproc << "-rank job failed with status " << rc << "\n";
    return 1;
  }
  double dist_ms = 0, sync_after_ms = 0, sync_overlap_ms = 0;
  {
    std::ifstream f(out);
    f >> dist_ms >> sync_after_ms >> sync_overlap_ms;
  }
  std::filesystem::remove(out);

  const int64_t params = a.layers * (a.hidden * a.hidden + a.hidden);
  std::printf(
      "machine: %u hardware threads; global batch N=%lld, D=%lld, %lld ranks (Gloo, "
      "localhost), median of %d\n",
      std::thread::hardware_concurrency(), static_cast<long long>(a.n),
      static_cast<long long>(a.dim), static_cast<long long>(a.nproc), a.reps);
  std::printf("%-58s %12s %12s %8s\n", "measurement", "A (ms)", "B (ms)", "B/A");
  std::printf("%-58s %12.1f %12.1f %8.2f\n",
              "loss fwd+bwd: A = 1 process, whole batch; B = per rank", one_ms, dist_ms,
              dist_ms / one_ms);
  std::printf("%-58s %12.1f %12.1f %8.2f\n",
              ("MLP bwd+sync (" + std::to_string(params / 1000000.0).substr(0, 4) +
               "M params): A = after bwd; B = overlap")
                  .c_str(),
              sync_after_ms, sync_overlap_ms, sync_overlap_ms / sync_after_ms);
  return 0;
}
