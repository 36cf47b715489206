// Fused CPU path of the bidirectional InfoNCE loss.
//
// The N x N logit matrix is never held: rows are processed in panels of P rows (P x N logits, a
// bounded buffer). For each panel one GEMM (OpenBLAS, multithreaded) gives the raw dot products;
// then
//   - each row's log-sum-exp is complete within the panel (two passes over the row: max, sum of
//   exp),
//   - each column's log-sum-exp is merged online into a running (max, sum) state
//   (tile_math::lse_merge).
// The backward recomputes each panel from the stored row/column log-sum-exps (FlashAttention
// style), turns it into dL/dS in place and accumulates grad_image = dS B / tau (panel rows) and
// grad_text += dS^T A / tau with two more GEMMs. Extra memory: O(N D + P N).
//
// Every reduction runs in a fixed order that does not depend on the thread count (each row or
// column is owned by one thread; partial sums are combined sequentially), so results are run-to-run
// identical.

#include "infonce_cpu_kernels.h"
#include "infonce_cpu_loops.h"

#include <convirt/core/check.h>
#include <convirt/loss/tile_math.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

namespace convirt::detail {
namespace tm = convirt::tile_math;

namespace {

constexpr int64_t kDefaultPanelBytes = int64_t{64} << 20;  // 64 MiB of logits per panel
constexpr int64_t kColumnChunk = 512;                      // columns per task in the column pass

int64_t panel_budget_bytes() {
  // Tests set this small to exercise many panels on small inputs.
  if (const char* v = std::getenv("CONVIRT_INFONCE_PANEL_BYTES")) {
    long long b = std::atoll(v);
    if (b > 0) return b;
  }
  return kDefaultPanelBytes;
}

template <typename T>
const InfoNCELoops<T>& loops();
template <>
const InfoNCELoops<float>& loops<float>() {
  return infonce_loops_float();
}
template <>
const InfoNCELoops<double>& loops<double>() {
  return infonce_loops_double();
}

template <typename T>
void forward_impl(const at::Tensor& a, const at::Tensor& b, T inv_tau, T lambda, at::Tensor& loss,
                  at::Tensor& row_lse, at::Tensor& col_lse, at::Tensor& diag, at::Tensor& row_max,
                  at::Tensor& col_max) {
  const int64_t n = a.size(0);
  const int64_t panel_rows = infonce_panel_rows(n, sizeof(T), panel_budget_bytes());
  at::Tensor panel = at::empty({panel_rows, n}, a.options());
  at::Tensor col_sum_t = at::zeros({n}, a.options());
  col_max.fill_(-std::numeric_limits<T>::infinity());

  T* rl = row_lse.data_ptr<T>();
  T* rm = row_max.data_ptr<T>();
  T* dg = diag.data_ptr<T>();
  T* cm = col_max.data_ptr<T>();
  T* cs = col_sum_t.data_ptr<T>();
  const at::Tensor bt = b.t();
  const InfoNCELoops<T>& L = loops<T>();

  for (int64_t r0 = 0; r0 < n; r0 += panel_rows) {
    const int64_t rows = std::min(panel_rows, n - r0);
    at::Tensor p = panel.narrow(0, 0, rows);
    at::mm_out(p, a.narrow(0, r0, rows), bt);
    T* pp = p.data_ptr<T>();

    at::parallel_for(0, rows, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T* row = pp + i * n;
        tm::LseState<T> st = L.scale_row_and_reduce(row, n, inv_tau);
        rl[r0 + i] = tm::lse_value(st);
        rm[r0 + i] = st.max;
        dg[r0 + i] = row[r0 + i];
      }
    });

    const int64_t chunks = (n + kColumnChunk - 1) / kColumnChunk;
    at::parallel_for(0, chunks, 1, [&](int64_t k0, int64_t k1) {
      std::vector<T> scratch(kColumnChunk);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t c0 = k * kColumnChunk;
        const int64_t c1 = std::min(n, c0 + kColumnChunk);
        L.merge_columns(pp, rows, n, c0, c1, cm, cs, scratch.data());
      }
    });
  }

  T* cl = col_lse.data_ptr<T>();
  double total = 0;  // sequential sum: deterministic and accurate
  for (int64_t i = 0; i < n; ++i) {
    cl[i] = tm::lse_value(tm::LseState<T>{cm[i], cs[i]});
    total += static_cast<double>(tm::example_loss(rl[i], cl[i], dg[i], lambda));
  }
  loss.fill_(total / static_cast<double>(n));
}

template <typename T>
void backward_impl(const at::Tensor& a, const at::Tensor& b, T inv_tau, T lambda, T grad_loss,
                   const at::Tensor& row_lse, const at::Tensor& col_lse, at::Tensor& grad_a,
                   at::Tensor& grad_b, double& grad_tau) {
  const int64_t n = a.size(0);
  const int64_t panel_rows = infonce_panel_rows(n, sizeof(T), panel_budget_bytes());
  at::Tensor panel = at::empty({panel_rows, n}, a.options());
  std::vector<double> row_dot(panel_rows);  // per-row sum of dS_ij * S_ij, for the temperature
  const tm::GradWeights<T> w = tm::grad_weights(grad_loss, lambda, n);
  const T* rl = row_lse.data_ptr<T>();
  const T* cl = col_lse.data_ptr<T>();
  const at::Tensor bt = b.t();
  const InfoNCELoops<T>& L = loops<T>();
  double dot_total = 0;

  for (int64_t r0 = 0; r0 < n; r0 += panel_rows) {
    const int64_t rows = std::min(panel_rows, n - r0);
    at::Tensor p = panel.narrow(0, 0, rows);
    at::Tensor a_rows = a.narrow(0, r0, rows);
    at::mm_out(p, a_rows, bt);
    T* pp = p.data_ptr<T>();

    at::parallel_for(0, rows, 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        T* row = pp + i * n;
        const T r = rl[r0 + i];
        const T s_diag = row[r0 + i] * inv_tau;  // read before the row is overwritten with dS
        T acc = L.gradient_row(row, cl, n, r, inv_tau, w);
        // The diagonal's -(w_row + w_col) term, applied once outside the vectorised loop.
        const T delta = w.row + w.col;
        row[r0 + i] -= delta;
        acc -= delta * s_diag;
        row_dot[i] = static_cast<double>(acc);
      }
    });
    for (int64_t i = 0; i < rows; ++i) dot_total += row_dot[i];

    at::Tensor grad_rows = grad_a.narrow(0, r0, rows);
    at::mm_out(grad_rows, p, b);
    grad_b.addmm_(p.t(), a_rows);
  }
  grad_a.mul_(inv_tau);
  grad_b.mul_(inv_tau);
  grad_tau = -dot_total * static_cast<double>(inv_tau);
}

at::ScalarType acc_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

}  // namespace

const InfoNCELoops<float>& infonce_loops_float() {
#if CONVIRT_HAVE_AVX2_LOOPS
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (avx2) return loops_avx2::kFloat;
#endif
  return loops_default::kFloat;
}

const InfoNCELoops<double>& infonce_loops_double() {
  return loops_default::kDouble;
}

int64_t infonce_panel_rows(int64_t n, int64_t element_size, int64_t budget_bytes) {
  int64_t rows = budget_bytes / std::max<int64_t>(1, n * element_size);
  return std::max<int64_t>(1, std::min(rows, n));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
infonce_forward_cpu(const at::Tensor& image, const at::Tensor& text, const at::Tensor& temperature,
                    double image_to_text_weight) {
  const auto acc = acc_type(image.scalar_type());
  const at::Tensor a = image.to(acc).contiguous();
  const at::Tensor b = text.to(acc).contiguous();
  const int64_t n = a.size(0);
  auto opts = a.options();
  at::Tensor loss = at::empty({}, opts);
  at::Tensor row_lse = at::empty({n}, opts), col_lse = at::empty({n}, opts);
  at::Tensor diag = at::empty({n}, opts), row_max = at::empty({n}, opts);
  at::Tensor col_max = at::empty({n}, opts);
  const double inv_tau = 1.0 / temperature.item<double>();
  AT_DISPATCH_FLOATING_TYPES(acc, "infonce_forward_cpu", [&] {
    forward_impl<scalar_t>(a, b, static_cast<scalar_t>(inv_tau),
                           static_cast<scalar_t>(image_to_text_weight), loss, row_lse, col_lse,
                           diag, row_max, col_max);
  });
  return {loss, row_lse, col_lse, diag, row_max, col_max};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> infonce_backward_cpu(
    const at::Tensor& grad_loss, const at::Tensor& image, const at::Tensor& text,
    const at::Tensor& temperature, double image_to_text_weight, const at::Tensor& row_lse,
    const at::Tensor& col_lse) {
  const auto acc = acc_type(image.scalar_type());
  const at::Tensor a = image.to(acc).contiguous();
  const at::Tensor b = text.to(acc).contiguous();
  at::Tensor grad_a = at::empty_like(a);
  at::Tensor grad_b = at::zeros_like(b);
  double grad_tau = 0;
  const double inv_tau = 1.0 / temperature.item<double>();
  const double g = grad_loss.item<double>();
  AT_DISPATCH_FLOATING_TYPES(acc, "infonce_backward_cpu", [&] {
    backward_impl<scalar_t>(a, b, static_cast<scalar_t>(inv_tau),
                            static_cast<scalar_t>(image_to_text_weight), static_cast<scalar_t>(g),
                            row_lse.to(acc).contiguous(), col_lse.to(acc).contiguous(), grad_a,
                            grad_b, grad_tau);
  });
  at::Tensor grad_temperature = at::full({}, grad_tau, temperature.options());
  return {grad_a.to(image.scalar_type()), grad_b.to(text.scalar_type()), grad_temperature};
}

}  // namespace convirt::detail
