#pragma once
// Float64 reference of the bidirectional InfoNCE loss and its gradients, written from the
// definition (materialised logits), for the standalone CUDA test. Plain C++: no Torch, no CUDA.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace convirt::test {

struct InfoNCEReference {
  double loss = 0;
  std::vector<double> row_lse, col_lse, diag, row_max, col_max;
  std::vector<double> grad_image, grad_text;  // [n * d]
  double grad_temperature = 0;
};

/// a, b: [n, d] row-major. S = a b^T / tau; loss and gradients as in the op's schema.
inline InfoNCEReference infonce_reference(const std::vector<double>& a,
                                          const std::vector<double>& b, int64_t n, int64_t d,
                                          double tau, double lambda, double grad_loss) {
  InfoNCEReference r;
  std::vector<double> s(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < d; ++k) acc += a[i * d + k] * b[j * d + k];
      s[i * n + j] = acc / tau;
    }
  const double ninf = -std::numeric_limits<double>::infinity();
  r.row_lse.assign(n, 0);
  r.col_lse.assign(n, 0);
  r.diag.assign(n, 0);
  r.row_max.assign(n, ninf);
  r.col_max.assign(n, ninf);
  for (int64_t i = 0; i < n; ++i) {
    r.diag[i] = s[i * n + i];
    for (int64_t j = 0; j < n; ++j) {
      r.row_max[i] = std::max(r.row_max[i], s[i * n + j]);
      r.col_max[j] = std::max(r.col_max[j], s[i * n + j]);
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    double rs = 0, cs = 0;
    for (int64_t j = 0; j < n; ++j) {
      rs += std::exp(s[i * n + j] - r.row_max[i]);
      cs += std::exp(s[j * n + i] - r.col_max[i]);
    }
    r.row_lse[i] = r.row_max[i] + std::log(rs);
    r.col_lse[i] = r.col_max[i] + std::log(cs);
  }
  r.loss = 0;
  for (int64_t i = 0; i < n; ++i) {
    r.loss += lambda * (r.row_lse[i] - r.diag[i]) + (1 - lambda) * (r.col_lse[i] - r.diag[i]);
  }
  r.loss /= static_cast<double>(n);

  r.grad_image.assign(static_cast<size_t>(n * d), 0);
  r.grad_text.assign(static_cast<size_t>(n * d), 0);
  double dot = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) {
      const double sij = s[i * n + j];
      const double delta = i == j ? 1.0 : 0.0;
      const double ds = grad_loss *
                        (lambda * (std::exp(sij - r.row_lse[i]) - delta) +
                         (1 - lambda) * (std::exp(sij - r.col_lse[j]) - delta)) /
                        static_cast<double>(n);
      dot += ds * sij;
      for (int64_t k = 0; k < d; ++k) {
        r.grad_image[i * d + k] += ds * b[j * d + k] / tau;
        r.grad_text[j * d + k] += ds * a[i * d + k] / tau;
      }
    }
  r.grad_temperature = -dot / tau;
  return r;
}

}  // namespace convirt::test
