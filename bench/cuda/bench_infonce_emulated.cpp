// Operation counts of the fused CUDA InfoNCE kernels, from the warp-level emulator (not timings:
// the emulator runs on the CPU). Per logit (divided by N^2), forward and backward: tensor-core
// FLOPs issued against the 8 N^2 D minimum of fwd + bwd, exponentials (__expf) against 2 per logit,
// and the bytes read through __ldg. See docs/cuda_kernel.md, "Emulator", and docs/benchmarks.md.
//
// Usage: bench_infonce_emulated [--quick]

#include <convirt/loss/infonce/cuda/launch.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace ki = convirt::kernels::infonce;
namespace ce = convirt::cuda_emulator;

namespace {

struct Buffer {
  void* ptr = nullptr;
  explicit Buffer(size_t bytes) {
    if (cudaMalloc(&ptr, bytes) != cudaSuccess) std::abort();
  }
  ~Buffer() { cudaFree(ptr); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  float* f() const { return static_cast<float*>(ptr); }
};

/// Unit rows in the element type (the counts do not depend on the values, but NaN-free inputs keep
/// the run representative).
std::vector<unsigned char> unit_rows(int64_t n, int64_t d, ki::ScalarKind k) {
  std::vector<unsigned char> out(static_cast<size_t>(n * d) * ki::element_size(k));
  const float v = 1.0f / std::sqrt(static_cast<float>(d));
  for (int64_t i = 0; i < n * d; ++i) {
    const float x = ((i * 2654435761u) >> 7) % 2 ? v : -v;
    if (k == ki::ScalarKind::kFloat32) {
      std::memcpy(&out[static_cast<size_t>(i) * 4], &x, 4);
    } else {
      const uint16_t b = k == ki::ScalarKind::kFloat16
                             ? __half_as_ushort(__float2half_rn(x))
                             : __bfloat16_as_ushort(__float2bfloat16_rn(x));
      std::memcpy(&out[static_cast<size_t>(i) * 2], &b, 2);
    }
  }
  return out;
}

void run(int64_t n, int64_t d, ki::ScalarKind k) {
  const size_t nd_bytes = static_cast<size_t>(n * d) * ki::element_size(k);
  Buffer a(nd_bytes), b(nd_bytes), tau(4), g(4), out(4 * ki::forward_output_floats(n));
  Buffer fws(ki::forward_workspace_bytes(n, k)), bws(ki::backward_workspace_bytes(n, k));
  Buffer gi(nd_bytes), gt(nd_bytes), gtau(4);
  const auto ha = unit_rows(n, d, k), hb = unit_rows(n, d + 1, k);
  cudaMemcpy(a.ptr, ha.data(), nd_bytes, cudaMemcpyHostToDevice);
  cudaMemcpy(b.ptr, hb.data(), nd_bytes, cudaMemcpyHostToDevice);
  const float tau_v = 0.07f, g_v = 1.0f;
  cudaMemcpy(tau.ptr, &tau_v, 4, cudaMemcpyHostToDevice);
  cudaMemcpy(g.ptr, &g_v, 4, cudaMemcpyHostToDevice);

  ki::ForwardParams fp;
  fp.image = a.ptr;
  fp.text = b.ptr;
  fp.temperature = tau.f();
  fp.n = n;
  fp.d = d;
  fp.dtype = k;
  ki::place_forward_outputs(fp, out.f());
  fp.workspace = fws.ptr;
  fp.workspace_bytes = ki::forward_workspace_bytes(n, k);
  ce::reset_counters();
  if (ki::forward(fp, nullptr) != cudaSuccess) std::abort();
  const ce::Counters fwd = ce::counters();

  ki::BackwardParams bp;
  bp.image = a.ptr;
  bp.text = b.ptr;
  bp.temperature = tau.f();
  bp.grad_loss = g.f();
  bp.row_lse = fp.row_lse;
  bp.col_lse = fp.col_lse;
  bp.n = n;
  bp.d = d;
  bp.dtype = k;
  bp.grad_image = gi.ptr;
  bp.grad_text = gt.ptr;
  bp.grad_temperature = gtau.f();
  bp.workspace = bws.ptr;
  bp.workspace_bytes = ki::backward_workspace_bytes(n, k);
  ce::reset_counters();
  if (ki::backward(bp, nullptr) != cudaSuccess) std::abort();
  const ce::Counters bwd = ce::counters();

  const double logits = static_cast<double>(n) * static_cast<double>(n);
  const double min_flops = 8.0 * static_cast<double>(d);  // per logit, fwd + bwd
  const double fl_f = static_cast<double>(fwd.mma_flops) / logits;
  const double fl_b = static_cast<double>(bwd.mma_flops) / logits;
  const double ex_f = static_cast<double>(fwd.exps) / logits;
  const double ex_b = static_cast<double>(bwd.exps) / logits;
  // Each embedding must be read once per pass at the least: 2 N D elements forward, and the
  // backward reads both sides for both gradients.
  const double in_bytes = 2.0 * static_cast<double>(nd_bytes);
  std::printf(
      "| %-8s | %5lld | %4lld | %7.0f | %7.0f | %7.0f | %5.0f | %5.2fx | %5.2f | %5.2f | %5.2f | "
      "%6.1f | %6.1f | %7.1fx | %6.1fx |\n",
      ki::to_string(k), static_cast<long long>(n), static_cast<long long>(d), fl_f, fl_b,
      fl_f + fl_b, min_flops, (fl_f + fl_b) / min_flops, ex_f, ex_b, ex_f + ex_b,
      static_cast<double>(fwd.ldg_bytes) / logits, static_cast<double>(bwd.ldg_bytes) / logits,
      static_cast<double>(fwd.ldg_bytes) / in_bytes, static_cast<double>(bwd.ldg_bytes) / in_bytes);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  if (argc > 1 && !quick) {
    std::fprintf(stderr, "usage: %s [--quick], got \"%s\"\n", argv[0], argv[1]);
    return 2;
  }
  std::printf(
      "Emulator counters (operation counts, not timings), per logit (/ N^2).\n"
      "| dtype | N | D | MMA FLOP fwd | bwd | total | min 8D | total/min | exp fwd | bwd | total "
      "(min 2) | __ldg B fwd | bwd | fwd/inputs | bwd/inputs |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  struct Config {
    int64_t n, d;
    ki::ScalarKind k;
  };
  const Config quick_configs[] = {{256, 128, ki::ScalarKind::kBFloat16}};
  const Config configs[] = {{256, 512, ki::ScalarKind::kBFloat16},
                            {256, 768, ki::ScalarKind::kBFloat16},
                            {256, 512, ki::ScalarKind::kFloat32},
                            {1024, 256, ki::ScalarKind::kBFloat16}};
  if (quick) {
    for (const auto& c : quick_configs) run(c.n, c.d, c.k);
  } else {
    for (const auto& c : configs) run(c.n, c.d, c.k);
  }
  return 0;
}
