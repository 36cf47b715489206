// bench_eval: the evaluation stage in C++ against the same work as a Python user runs it (PyTorch
// linear protocol, scikit-learn exact t-SNE and roc_auc_score), same inputs, same machine, one run.
//
//   build/bin/bench_eval [--threads 1] [--repeats 3] [--epochs 30] [--tsne-n 400]
//
// Prints one table row per stage: sizes, each side's median and the ratio C++ / Python (< 1 means
// the C++ side is faster).
#include <convirt/eval/linear_probe.h>
#include <convirt/eval/metrics.h>
#include <convirt/eval/tsne.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace ev = convirt::eval;

namespace {

// A .npy (format 1.0) of float64 values in C order, so NumPy reads exactly our inputs.
void write_npy(const std::filesystem::path& path, const at::Tensor& t) {
  auto c = t.to(at::kDouble).contiguous();
  std::ostringstream shape;
  shape << '(';
  for (int64_t i = 0; i < c.dim(); ++i)
    shape << c.size(i) << (c.dim() == 1 || i + 1 < c.dim() ? "," : "");
  shape << ')';
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + shape.str() + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  out.write("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  out.put(static_cast<char>(len & 0xff));
  out.put(static_cast<char>(len >> 8));
  out << header;
  out.write(reinterpret_cast<const char*>(c.data_ptr<double>()),
            static_cast<std::streamsize>(c.numel() * sizeof(double)));
}

double median_seconds(const std::function<void()>& fn, int repeats) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1, repeats = 3, epochs = 30, tsne_n = 400;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const int v = std::atoi(argv[i + 1]);
    if (a == "--threads")
      threads = v;
    else if (a == "--repeats")
      repeats = v;
    else if (a == "--epochs")
      epochs = v;
    else if (a == "--tsne-n")
      tsne_n = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(threads);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  // Linear protocol: 1000 x 64 features, 5 labels (the demo's scale).
  const int64_t dim = 64, labels = 5;
  auto w = at::randn({dim, labels}, gen);
  auto make = [&](int64_t n) {
    auto x = at::randn({n, dim}, gen);
    return ev::LabeledSet{x, (x.mm(w) + at::randn({n, labels}, gen)).gt(1.0).to(at::kFloat)};
  };
  auto tr = make(1000), va = make(300), te = make(300);
  auto xtsne = at::randn({8, 64}, gen).mul(3).repeat_interleave(tsne_n / 8, 0) +
               at::randn({(tsne_n / 8) * 8, 64}, gen);
  auto scores = (at::rand({1000000}, gen, at::kDouble) * 1000).round();
  auto targets = at::rand({1000000}, gen, at::kDouble).lt(0.3).to(at::kDouble);

  const auto dir =
      std::filesystem::temp_directory_path() / ("convirt-bench-eval-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_npy(dir / "xtr.npy", tr.inputs);
  write_npy(dir / "ytr.npy", tr.targets);
  write_npy(dir / "xva.npy", va.inputs);
  write_npy(dir / "yva.npy", va.targets);
  write_npy(dir / "xte.npy", te.inputs);
  write_npy(dir / "yte.npy", te.targets);
  write_npy(dir / "xtsne.npy", xtsne);
  write_npy(dir / "auc_scores.npy", scores);
  write_npy(dir / "auc_targets.npy", targets);

  // The recipe with a fixed budget on both sides (early stopping off) so both do the same steps.
  auto opts =
      ev::ClassifierOptions().learning_rate(1e-3).max_epochs(epochs).early_stop_patience(1000000);
  double cpp_auc = 0;
  const double t_probe = median_seconds(
      [&] { cpp_auc = ev::train_linear_probe(tr, va, te, opts).test_metric; }, repeats);
  const double t_tsne = median_seconds(
      [&] { ev::tsne(xtsne, ev::TSNEOptions().perplexity(30).max_iterations(1000)); }, 1);
  const double t_auc = median_seconds([&] { ev::roc_auc(scores, targets); }, repeats);

  std::map<std::string, double> py;
  const std::string cmd = std::string(CONVIRT_PYTHON) + " " + CONVIRT_BENCH_EVAL_SCRIPT +
                          " --dir " + dir.string() + " --threads " + std::to_string(threads) +
                          " --repeats " + std::to_string(repeats) + " --epochs " +
                          std::to_string(epochs);
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char name[64];
    double value;
    while (std::fscanf(p, "%63s %lf", name, &value) == 2) py[name] = value;
    ::pclose(p);
  }
  std::filesystem::remove_all(dir);

  std::printf("bench_eval: %u hardware threads, intra-op threads %d (both sides), repeats %d\n",
              std::thread::hardware_concurrency(), threads, repeats);
  std::printf("| stage | size | C++ median s | Python median s | ratio C++/Python |\n");
  std::printf("|---|---|---|---|---|\n");
  auto row = [&](const char* stage, const std::string& size, double cpp, const char* key) {
    if (py.count(key)) {
      std::printf("| %s | %s | %.4f | %.4f | %.3f |\n", stage, size.c_str(), cpp, py[key],
                  cpp / py[key]);
    } else {
      std::printf("| %s | %s | %.4f | (python side failed) | - |\n", stage, size.c_str(), cpp);
    }
  };
  row("linear protocol (PyTorch loop + sklearn AUC)",
      "1000x64, 5 labels, " + std::to_string(epochs) + " epochs", t_probe, "linear_probe");
  row("exact t-SNE (sklearn method=exact)", std::to_string(xtsne.size(0)) + "x64, 1000 it", t_tsne,
      "tsne");
  row("ROC-AUC (sklearn roc_auc_score)", "1e6 scores with ties", t_auc, "roc_auc");
  if (py.count("linear_probe_auc")) {
    std::printf("linear protocol test mean AUC: C++ %.4f, Python %.4f\n", cpp_auc,
                py["linear_probe_auc"]);
  }
  return py.empty() ? 1 : 0;
}
