// Standalone test of the fused CUDA InfoNCE kernels (no Torch): first checks the float64 reference
// itself on the CPU (closed forms, finite differences, symmetry), then, where a CUDA device exists,
// compares the kernels with it on random sizes (not tile multiples, n = 1, d not a multiple of
// 8/16), all three element types, with poisoned outputs and bit-identical reruns. Exits 0 with
// "skipped: no CUDA device" for the device part where there is none.

#include <convirt/loss/infonce/cuda/launch.h>

#include "infonce_reference.h"

#if defined(CONVIRT_CUDA_EMULATE)
#include <convirt/loss/infonce/cuda/emulator.h>
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace ki = convirt::kernels::infonce;
using convirt::test::infonce_reference;

namespace {

int g_failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::printf("FAIL: %s\n", what.c_str());
  }
}

double rel_err(const std::vector<double>& out, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (!std::isfinite(out[i])) return INFINITY;  // NaN (poison left unwritten) never passes
    num += (out[i] - ref[i]) * (out[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::vector<double> random_unit_rows(int64_t n, int64_t d, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int64_t k = 0; k < d; ++k) norm += (x[i * d + k] = normal(rng)) * x[i * d + k];
    norm = std::sqrt(norm);
    for (int64_t k = 0; k < d; ++k) x[i * d + k] /= norm > 0 ? norm : 1.0;
  }
  return x;
}

// ---------------------------------------------------------------------------------------------
// CPU checks of the reference.

void check_reference_on_cpu() {
  // n = 1: the only logit is the diagonal, so every LSE equals it and loss and gradients vanish.
  {
    std::vector<double> a = {0.6, 0.8}, b = {1.0, 0.0};
    auto r = infonce_reference(a, b, 1, 2, 0.1, 0.75, 1.0);
    expect(std::fabs(r.loss) < 1e-15, "reference: n = 1 loss is 0");
    expect(std::fabs(r.row_lse[0] - 6.0) < 1e-12 && std::fabs(r.diag[0] - 6.0) < 1e-12,
           "reference: n = 1 lse = diag = <a, b> / tau");
    expect(std::fabs(r.grad_image[0]) + std::fabs(r.grad_text[1]) + std::fabs(r.grad_temperature) <
               1e-15,
           "reference: n = 1 gradients are 0");
  }
  // Identity embeddings, tau = 1: S = I, every LSE is log(e + n - 1), loss = log(e + n - 1) - 1.
  {
    const int64_t n = 3;
    std::vector<double> e(n * n, 0.0);
    for (int64_t i = 0; i < n; ++i) e[i * n + i] = 1.0;
    auto r = infonce_reference(e, e, n, n, 1.0, 0.3, 1.0);
    const double want = std::log(std::exp(1.0) + n - 1) - 1.0;
    expect(std::fabs(r.loss - want) < 1e-12, "reference: identity closed form");
    expect(r.row_max[1] == 1.0 && r.col_max[2] == 1.0, "reference: identity maxima");
  }
  // Finite differences of the loss against every analytic gradient (float64, central, h = 1e-6).
  {
    std::mt19937_64 rng(7);
    const int64_t n = 5, d = 3;
    const double tau = 0.2, lambda = 0.75, g = 1.7;
    auto a = random_unit_rows(n, d, rng), b = random_unit_rows(n, d, rng);
    auto r = infonce_reference(a, b, n, d, tau, lambda, g);
    const double h = 1e-6;
    double worst = 0;
    for (int side = 0; side < 2; ++side)
      for (int64_t k = 0; k < n * d; ++k) {
        auto ap = a, am = a, bp = b, bm = b;
        (side == 0 ? ap : bp)[k] += h;
        (side == 0 ? am : bm)[k] -= h;
        const double fd = g *
                          (infonce_reference(ap, bp, n, d, tau, lambda, 1).loss -
                           infonce_reference(am, bm, n, d, tau, lambda, 1).loss) /
                          (2 * h);
        const double an = side == 0 ? r.grad_image[k] : r.grad_text[k];
        worst = std::max(worst, std::fabs(fd - an));
      }
    const double fd_tau = g *
                          (infonce_reference(a, b, n, d, tau + h, lambda, 1).loss -
                           infonce_reference(a, b, n, d, tau - h, lambda, 1).loss) /
                          (2 * h);
    worst = std::max(worst, std::fabs(fd_tau - r.grad_temperature));
    expect(worst < 1e-6, "reference: finite differences (max error " + std::to_string(worst) + ")");
  }
  // Swapping the sides and lambda -> 1 - lambda transposes S: same loss, swapped gradients.
  {
    std::mt19937_64 rng(11);
    const int64_t n = 6, d = 4;
    auto a = random_unit_rows(n, d, rng), b = random_unit_rows(n, d, rng);
    auto r1 = infonce_reference(a, b, n, d, 0.1, 0.75, 1.0);
    auto r2 = infonce_reference(b, a, n, d, 0.1, 0.25, 1.0);
    expect(std::fabs(r1.loss - r2.loss) < 1e-12, "reference: symmetry of the loss");
    expect(rel_err(r1.grad_image, r2.grad_text) < 1e-12, "reference: symmetry of the gradients");
  }
}

// ---------------------------------------------------------------------------------------------
// Device checks.

#define CUDA_OK(expr)                                                                         \
  do {                                                                                        \
    cudaError_t err_ = (expr);                                                                \
    if (err_ != cudaSuccess) {                                                                \
      std::printf("CUDA error %s at %s:%d: %s\n", cudaGetErrorName(err_), __FILE__, __LINE__, \
                  cudaGetErrorString(err_));                                                  \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

// Host-side element conversions (round to nearest even, as the device does).
uint16_t to_bits(double x, ki::ScalarKind k) {
  if (k == ki::ScalarKind::kFloat16)
    return __half_as_ushort(__float2half_rn(static_cast<float>(x)));
  return __bfloat16_as_ushort(__float2bfloat16_rn(static_cast<float>(x)));
}
double from_bits(uint16_t v, ki::ScalarKind k) {
  if (k == ki::ScalarKind::kFloat16) return __half2float(__ushort_as_half(v));
  return __bfloat162float(__ushort_as_bfloat16(v));
}

/// Embeddings in the device type; `rounded` gets the values the device actually sees.
std::vector<unsigned char> encode(const std::vector<double>& x, ki::ScalarKind k,
                                  std::vector<double>& rounded) {
  const int es = ki::element_size(k);
  std::vector<unsigned char> bytes(x.size() * es);
  rounded.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (k == ki::ScalarKind::kFloat32) {
      const float f = static_cast<float>(x[i]);
      std::memcpy(&bytes[i * 4], &f, 4);
      rounded[i] = f;
    } else {
      const uint16_t v = to_bits(x[i], k);
      std::memcpy(&bytes[i * 2], &v, 2);
      rounded[i] = from_bits(v, k);
    }
  }
  return bytes;
}

std::vector<double> decode(const std::vector<unsigned char>& bytes, ki::ScalarKind k) {
  const int es = ki::element_size(k);
  std::vector<double> out(bytes.size() / es);
  for (size_t i = 0; i < out.size(); ++i) {
    if (k == ki::ScalarKind::kFloat32) {
      float f;
      std::memcpy(&f, &bytes[i * 4], 4);
      out[i] = f;
    } else {
      uint16_t v;
      std::memcpy(&v, &bytes[i * 2], 2);
      out[i] = from_bits(v, k);
    }
  }
  return out;
}

struct DeviceBuffer {
  void* ptr = nullptr;
  size_t bytes = 0;
  explicit DeviceBuffer(size_t n) : bytes(n) { CUDA_OK(cudaMalloc(&ptr, n > 0 ? n : 1)); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(ptr); }
  void poison() const { CUDA_OK(cudaMemset(ptr, 0xff, bytes)); }  // NaN in fp32, fp16 and bf16
  std::vector<unsigned char> raw() const {
    std::vector<unsigned char> h(bytes);
    CUDA_OK(cudaMemcpy(h.data(), ptr, bytes, cudaMemcpyDeviceToHost));
    return h;
  }
  std::vector<double> floats() const {
    std::vector<float> h(bytes / 4);
    CUDA_OK(cudaMemcpy(h.data(), ptr, bytes, cudaMemcpyDeviceToHost));
    return std::vector<double>(h.begin(), h.end());
  }
};

struct RunOutputs {
  std::vector<unsigned char> forward_raw, backward_raw;
  std::vector<double> loss, row_lse, col_lse, diag, row_max, col_max, grad_tau;
  std::vector<double> grad_image, grad_text;
};

RunOutputs run_device(const std::vector<unsigned char>& a, const std::vector<unsigned char>& b,
                      int64_t n, int64_t d, float tau, float lambda, float grad_loss,
                      ki::ScalarKind k) {
  const size_t nd_bytes = static_cast<size_t>(n * d) * ki::element_size(k);
  DeviceBuffer da(nd_bytes), db(nd_bytes), dtau(4), dg(4);
  CUDA_OK(cudaMemcpy(da.ptr, a.data(), nd_bytes, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(db.ptr, b.data(), nd_bytes, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dtau.ptr, &tau, 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemcpy(dg.ptr, &grad_loss, 4, cudaMemcpyHostToDevice));
  // One buffer for all forward outputs, so one poison and one compare cover them.
  DeviceBuffer fwd(4 * ki::forward_output_floats(n));
  fwd.poison();
  DeviceBuffer ws(ki::forward_workspace_bytes(n, k));
  ws.poison();
  ki::ForwardParams fp;
  fp.image = da.ptr;
  fp.text = db.ptr;
  fp.temperature = dtau.f();
  fp.n = n;
  fp.d = d;
  fp.image_to_text_weight = lambda;
  fp.dtype = k;
  ki::place_forward_outputs(fp, fwd.f());
  fp.workspace = ws.ptr;
  fp.workspace_bytes = ws.bytes;
  CUDA_OK(ki::forward(fp, nullptr));
  CUDA_OK(cudaDeviceSynchronize());

  DeviceBuffer gi(nd_bytes), gt(nd_bytes), gtau(4), bws(ki::backward_workspace_bytes(n, k));
  gi.poison();
  gt.poison();
  gtau.poison();
  bws.poison();
  ki::BackwardParams bp;
  bp.image = da.ptr;
  bp.text = db.ptr;
  bp.temperature = dtau.f();
  bp.grad_loss = dg.f();
  bp.row_lse = fp.row_lse;
  bp.col_lse = fp.col_lse;
  bp.n = n;
  bp.d = d;
  bp.image_to_text_weight = lambda;
  bp.dtype = k;
  bp.grad_image = gi.ptr;
  bp.grad_text = gt.ptr;
  bp.grad_temperature = gtau.f();
  bp.workspace = bws.ptr;
  bp.workspace_bytes = bws.bytes;
  CUDA_OK(ki::backward(bp, nullptr));
  CUDA_OK(cudaDeviceSynchronize());

  RunOutputs o;
  o.forward_raw = fwd.raw();
  auto all = fwd.floats();
  auto slice = [&](int64_t off, int64_t len) {
    return std::vector<double>(all.begin() + off, all.begin() + off + len);
  };
  o.loss = slice(0, 1);
  o.row_lse = slice(1, n);
  o.col_lse = slice(1 + n, n);
  o.diag = slice(1 + 2 * n, n);
  o.row_max = slice(1 + 3 * n, n);
  o.col_max = slice(1 + 4 * n, n);
  o.grad_tau = gtau.floats();
  auto gi_raw = gi.raw(), gt_raw = gt.raw();
  o.grad_image = decode(gi_raw, k);
  o.grad_text = decode(gt_raw, k);
  o.backward_raw = gi_raw;
  o.backward_raw.insert(o.backward_raw.end(), gt_raw.begin(), gt_raw.end());
  auto tau_raw = gtau.raw();
  o.backward_raw.insert(o.backward_raw.end(), tau_raw.begin(), tau_raw.end());
  return o;
}

/// Unit rows sharing a common direction u: x_i = normalize(offset u + z_i), z_i random unit rows.
/// Every logit then sits near offset^2 / (offset^2 + 1) / tau, far from zero, while their spread
/// (what the loss sees) stays moderate: the case where sum dS S cancels badly in fp32.
std::vector<double> offset_unit_rows(int64_t n, int64_t d, double offset, std::mt19937_64& rng) {
  const auto u = random_unit_rows(1, d, rng);
  auto z = random_unit_rows(n, d, rng);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) z[i * d + k] += offset * u[k];
  std::vector<double> x(z.size());
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int64_t k = 0; k < d; ++k) norm += z[i * d + k] * z[i * d + k];
    norm = std::sqrt(norm);
    for (int64_t k = 0; k < d; ++k) x[i * d + k] = z[i * d + k] / norm;
  }
  return x;
}

/// Rows e_0 + r / 16 with r_k in {-2, ..., 2} for k >= 1: a common direction with a small lattice
/// spread. Every product and dot product is a multiple of 2^-8 below 2^1, exact in fp32 (and in the
/// 3xTF32 and bf16 paths), so with a power-of-two tau every logit is exact and a case measures the
/// kernel's summations alone, not the rounding of S.
std::vector<double> lattice_rows(int64_t n, int64_t d, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> r(-2, 2);
  std::vector<double> x(static_cast<size_t>(n * d));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) x[i * d + k] = k == 0 ? 1.0 : r(rng) / 16.0;
  return x;
}

/// What a case draws besides its size: by default independent random unit rows and a random tau
/// in [0.05, 0.25]; `tau` > 0 fixes tau; `tau_grad_tol` > 0 checks the temperature gradient
/// against that tolerance instead of the backward's and prints its error.
enum class Rows { kRandomUnit, kCommonOffset, kLattice };
struct CaseInputs {
  Rows rows = Rows::kRandomUnit;
  double offset = 0;  ///< kCommonOffset's weight of the common direction
  double tau = 0;
  double tau_grad_tol = 0;
};

void check_case(int64_t n, int64_t d, ki::ScalarKind k, std::mt19937_64& rng,
                const CaseInputs& in = {}) {
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  const double drawn_tau = 0.05 + 0.2 * unif(rng);
  const double tau = in.tau > 0 ? in.tau : drawn_tau;
  const double lambda = unif(rng);
  const double g = 0.5 + unif(rng);
  auto rows = [&] {
    switch (in.rows) {
      case Rows::kCommonOffset:
        return offset_unit_rows(n, d, in.offset, rng);
      case Rows::kLattice:
        return lattice_rows(n, d, rng);
      case Rows::kRandomUnit:
        break;
    }
    return random_unit_rows(n, d, rng);
  };
  std::vector<double> ar, br;
  auto a = encode(rows(), k, ar);
  auto b = encode(rows(), k, br);
  // The reference sees what the device sees: inputs rounded to the element type, tau rounded to
  // fp32.
  const float tau_f = static_cast<float>(tau), lambda_f = static_cast<float>(lambda);
  const float g_f = static_cast<float>(g);
  auto ref = infonce_reference(ar, br, n, d, tau_f, lambda_f, g_f);
  auto out = run_device(a, b, n, d, tau_f, lambda_f, g_f, k);

  // Forward: fp32 accumulation of exactly representable products for every type (3xTF32 for fp32).
  const double fwd_tol = 2e-5;
  // Backward: dS is rounded to the element type before the second product, and the gradients are
  // stored in it: fp16 keeps 11 significant bits, bf16 8.
  const double bwd_tol =
      k == ki::ScalarKind::kFloat32 ? 1e-4 : (k == ki::ScalarKind::kFloat16 ? 4e-3 : 3e-2);
  const std::string tag =
      std::string(ki::to_string(k)) + " n=" + std::to_string(n) + " d=" + std::to_string(d) + " ";
  auto check = [&](const char* name, const std::vector<double>& o, const std::vector<double>& r,
                   double tol) {
    const double e = rel_err(o, r);
    char msg[64];
    std::snprintf(msg, sizeof msg, ": relative error %.3g > %.3g", e, tol);
    expect(e <= tol, tag + name + msg);
  };
  check("loss", out.loss, {ref.loss}, fwd_tol);
  check("row_lse", out.row_lse, ref.row_lse, fwd_tol);
  check("col_lse", out.col_lse, ref.col_lse, fwd_tol);
  check("diag", out.diag, ref.diag, fwd_tol);
  check("row_max", out.row_max, ref.row_max, fwd_tol);
  check("col_max", out.col_max, ref.col_max, fwd_tol);
  check("grad_image", out.grad_image, ref.grad_image, bwd_tol);
  check("grad_text", out.grad_text, ref.grad_text, bwd_tol);
  check("grad_temperature", out.grad_tau, {ref.grad_temperature},
        in.tau_grad_tol > 0 ? in.tau_grad_tol : bwd_tol);
  if (in.tau_grad_tol > 0) {
    std::printf("  %sgrad_temperature: relative error %.3g (reference %.6g)\n", tag.c_str(),
                rel_err(out.grad_tau, {ref.grad_temperature}), ref.grad_temperature);
  }

#if !defined(CONVIRT_CUDA_EMULATE)
  // The same inputs again: bit-identical outputs (no atomics, fixed reduction orders). The emulator
  // runs blocks in order, so a rerun there would prove nothing.
  auto again = run_device(a, b, n, d, tau_f, lambda_f, g_f, k);
  expect(again.forward_raw == out.forward_raw, tag + "forward is not bit-identical on rerun");
  expect(again.backward_raw == out.backward_raw, tag + "backward is not bit-identical on rerun");
#endif
}

void check_bad_params() {
  ki::ForwardParams fp;  // null pointers, n = 5
  fp.n = 5;
  fp.d = 4;
  float* loss = nullptr;
  CUDA_OK(cudaMalloc(&loss, 4));
  fp.loss = loss;
  expect(ki::forward(fp, nullptr) == cudaErrorInvalidValue, "forward rejects null inputs");
  fp.n = -1;
  expect(ki::forward(fp, nullptr) == cudaErrorInvalidValue, "forward rejects n < 0");
  // n = 0: the mean over no pairs is NaN, as torch.mean of an empty tensor.
  fp.n = 0;
  CUDA_OK(ki::forward(fp, nullptr));
  float h = 0;
  CUDA_OK(cudaMemcpy(&h, loss, 4, cudaMemcpyDeviceToHost));
  expect(std::isnan(h), "forward with n = 0 writes a NaN loss");
  cudaFree(loss);
}

/// tau <= 0 breaks the kernels' contract; they must not return plausible numbers for it, and the
/// torch glue relies on that instead of reading tau back to the host (docs/cuda_kernel.md).
void check_bad_temperature(std::mt19937_64& rng) {
  const int64_t n = 7, d = 5;
  const auto k = ki::ScalarKind::kFloat32;
  std::vector<double> ar, br;
  auto a = encode(random_unit_rows(n, d, rng), k, ar);
  auto b = encode(random_unit_rows(n, d, rng), k, br);
  for (const float tau : {0.0f, -0.1f}) {
    auto out = run_device(a, b, n, d, tau, 0.75f, 1.0f, k);
    bool all_nan = std::isnan(out.loss[0]) && std::isnan(out.grad_tau[0]);
    for (double x : out.row_lse) all_nan = all_nan && std::isnan(x);
    for (double x : out.grad_image) all_nan = all_nan && std::isnan(x);
    for (double x : out.grad_text) all_nan = all_nan && std::isnan(x);
    expect(all_nan, "tau = " + std::to_string(tau) + " gives NaN loss, statistics and gradients");
  }
}

}  // namespace

/// The temperature gradient where sum_ij dS_ij S_ij cancels: every logit near 128 (a common
/// direction, tau = 1/128), their spread a few units, so dS S terms of ~128 cancel to a much
/// smaller total. On lattice rows the logits are exact, so the error left is the kernel's
/// summation: the former fp32 sum of dS S was off by 3.7e-6 relative here, the sum of dS (S - lse)
/// by 7.8e-8 (emulator mutant 3 restores the former and must fail this check). Unit rows with a
/// common offset (tau = 0.01) show what real embeddings see, where the rounding of S itself
/// dominates.
void check_temperature_gradient(std::mt19937_64& rng) {
  for (auto k : {ki::ScalarKind::kFloat32, ki::ScalarKind::kBFloat16}) {
    check_case(384, 16, k, rng, CaseInputs{Rows::kLattice, 0, 1.0 / 128, 5e-7});
  }
  check_case(384, 16, ki::ScalarKind::kFloat32, rng,
             CaseInputs{Rows::kCommonOffset, 30, 0.01, 1e-5});
}

/// The emulator's cases (see docs/cuda_kernel.md, "Emulator"): every path of the kernels at sizes
/// a fiber-per-thread emulation runs in seconds. `quick`: the subset the mutants run; `small`: the
/// sanitizer pass's subset (n = 1, non-multiples of the tiles, two backward chunks); `long`: n >
/// 2048 in every dtype instead of bfloat16 only.
void run_emulated(const std::string& set) {
  std::mt19937_64 rng(20261203);
  if (set == "tau") {
    check_temperature_gradient(rng);
    return;
  }
  check_bad_params();
  check_bad_temperature(rng);
  struct Case {
    int64_t n, d;
    bool quick;
    bool small;
    bool every_dtype;  // false: bfloat16 only, unless `long`
  };
  // n = 1; n, d > 16 and not tile multiples; d not a multiple of the vector width (element-wise
  // loads); d > 256 (two backward chunks); n > 2048 (17 row blocks: each forward block sweeps two
  // column tiles and carries its row states across them; the same template code for every dtype,
  // and the costliest case, so bfloat16 only unless `long`).
  const Case cases[] = {{1, 1, false, true, true},     {1, 40, false, true, true},
                        {7, 5, false, true, true},     {129, 17, true, true, true},
                        {70, 264, false, true, true},  {200, 64, false, false, true},
                        {2100, 8, false, false, false}};
  for (auto k : {ki::ScalarKind::kFloat32, ki::ScalarKind::kFloat16, ki::ScalarKind::kBFloat16}) {
    for (const auto& c : cases) {
      if (set == "quick" && !c.quick) continue;
      if (set == "small" && !c.small) continue;
      if (set != "long" && !c.every_dtype && k != ki::ScalarKind::kBFloat16) continue;
      const auto t0 = std::chrono::steady_clock::now();
      check_case(c.n, c.d, k, rng);
      const std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
      std::printf("  %s n=%lld d=%lld: %.2f s\n", ki::to_string(k), static_cast<long long>(c.n),
                  static_cast<long long>(c.d), dt.count());
    }
  }
  if (set == "default" || set == "long") check_temperature_gradient(rng);
}

int main(int argc, char** argv) {
#if defined(CONVIRT_CUDA_EMULATE)
  const std::string set = argc > 1 ? argv[1] : "default";
  if (set != "quick" && set != "small" && set != "default" && set != "long" && set != "tau") {
    std::printf("usage: %s [quick|small|default|long|tau], got \"%s\"\n", argv[0], set.c_str());
    return 2;
  }
  if (set != "quick" && set != "tau") {
    check_reference_on_cpu();
    if (g_failures != 0) return 1;
  }
  run_emulated(set);
  std::printf("%s under the CUDA emulator (%d failures)\n",
              g_failures == 0 ? "all kernel checks passed" : "FAILED", g_failures);
  return g_failures == 0 ? 0 : 1;
#else
  (void)argc;
  (void)argv;
  check_reference_on_cpu();
  std::printf("reference checks on the CPU: %s\n", g_failures == 0 ? "passed" : "FAILED");
  if (g_failures != 0) return 1;

  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("skipped: no CUDA device (device checks of the kernels not run)\n");
    return 0;
  }
  cudaDeviceProp prop{};
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  if (prop.major < 8) {
    std::printf("skipped: %s is sm_%d%d; the kernels need sm_80 or newer\n", prop.name, prop.major,
                prop.minor);
    return 0;
  }
  const uint64_t seed = std::random_device{}();
  std::printf("device %s, seed %llu\n", prop.name, static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);

  check_bad_params();
  // Fixed edge sizes (n = 1, tile multiples and one-off, d odd / not a multiple of 8 or 16, d
  // larger than one backward chunk), then random sizes.
  const int64_t sizes[][2] = {{1, 1},    {1, 64},   {2, 3},    {7, 5},     {64, 64},
                              {127, 33}, {128, 64}, {129, 17}, {200, 300}, {257, 520}};
  std::uniform_int_distribution<int64_t> rn(1, 700), rd(1, 600);
  for (auto k : {ki::ScalarKind::kFloat32, ki::ScalarKind::kFloat16, ki::ScalarKind::kBFloat16}) {
    for (const auto& s : sizes) check_case(s[0], s[1], k, rng);
    for (int i = 0; i < 4; ++i) check_case(rn(rng), rd(rng), k, rng);
  }
  check_temperature_gradient(rng);
  std::printf("%s (%d failures)\n", g_failures == 0 ? "all device checks passed" : "FAILED",
              g_failures);
  return g_failures == 0 ? 0 : 1;
#endif
}
