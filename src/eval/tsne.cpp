#include <convirt/core/check.h>
#include <convirt/eval/tsne.h>

#include <ATen/ATen.h>
#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

namespace convirt::eval {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

RowMatrix to_eigen(const torch::Tensor& t) {
  auto c = t.detach().to(at::kCPU).to(at::kDouble).contiguous();
  RowMatrix m(c.size(0), c.size(1));
  std::memcpy(m.data(), c.data_ptr<double>(), sizeof(double) * static_cast<size_t>(c.numel()));
  return m;
}

RowMatrix squared_distances(const RowMatrix& x) {
  Eigen::VectorXd sq = x.rowwise().squaredNorm();
  RowMatrix d = (-2.0 * (x * x.transpose())).eval();
  d.colwise() += sq;
  d.rowwise() += sq.transpose();
  // Rounding can make tiny distances negative; the diagonal is exactly zero by definition.
  d = d.cwiseMax(0.0);
  d.diagonal().setZero();
  return d;
}

// Conditional P_{j|i} with a per-row Gaussian precision found by bisection so that the row's
// entropy equals log(perplexity), then symmetrised: P = (P_cond + P_cond^T) / (2N).
RowMatrix joint_probabilities(const RowMatrix& d2, double perplexity) {
  const int64_t n = d2.rows();
  const double target = std::log(perplexity);
  RowMatrix p = RowMatrix::Zero(n, n);
  std::vector<double> row(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double beta = 1.0, lo = 0.0, hi = std::numeric_limits<double>::infinity();
    // Distances relative to the nearest neighbour keep exp() away from underflow for far points.
    double dmin = std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      if (j != i) dmin = std::min(dmin, d2(i, j));
    }
    for (int iter = 0; iter < 200; ++iter) {
      double sum = 0.0, weighted = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        if (j == i) {
          row[j] = 0.0;
          continue;
        }
        const double dj = d2(i, j) - dmin;
        row[j] = std::exp(-beta * dj);
        sum += row[j];
        weighted += row[j] * dj;
      }
      // Entropy H = log(sum) + beta * E[d].
      const double h = std::log(sum) + beta * weighted / sum;
      for (int64_t j = 0; j < n; ++j) row[j] /= sum;
      const double diff = h - target;
      if (std::abs(diff) < 1e-5) break;
      if (diff > 0) {  // too flat: sharpen
        lo = beta;
        beta = std::isinf(hi) ? beta * 2.0 : 0.5 * (beta + hi);
      } else {
        hi = beta;
        beta = 0.5 * (beta + lo);
      }
    }
    for (int64_t j = 0; j < n; ++j) p(i, j) = row[j];
  }
  RowMatrix sym = (p + p.transpose()) / (2.0 * static_cast<double>(n));
  return sym.cwiseMax(1e-12);
}

// Box-Muller from a 64-bit Mersenne Twister: the same numbers on every standard library (the
// distributions of <random> are implementation-defined, the engines are not).
RowMatrix random_init(int64_t n, int64_t dims, uint64_t seed) {
  std::mt19937_64 eng(seed);
  auto uniform = [&]() { return (static_cast<double>(eng() >> 11) + 0.5) * 0x1.0p-53; };
  RowMatrix y(n, dims);
  for (int64_t i = 0; i < n * dims; i += 2) {
    const double u1 = uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    y.data()[i] = 1e-4 * r * std::cos(2.0 * M_PI * u2);
    if (i + 1 < n * dims) y.data()[i + 1] = 1e-4 * r * std::sin(2.0 * M_PI * u2);
  }
  return y;
}

}  // namespace

TSNEResult tsne(const torch::Tensor& x, const TSNEOptions& options) {
  CONVIRT_CHECK_VALUE(x.defined() && x.dim() == 2, "x must be 2-D [N, D], got ",
                      x.defined() ? detail::shape_str(x.sizes()) : std::string("undefined"));
  CONVIRT_CHECK_TYPE(at::isFloatingType(x.scalar_type()), "x must be floating, got ",
                     x.scalar_type());
  const int64_t n = x.size(0);
  CONVIRT_CHECK_VALUE(n >= 2, "t-SNE needs at least 2 points, got ", n);
  CONVIRT_CHECK_VALUE(options.dims() >= 1, "dims must be >= 1, got ", options.dims());
  CONVIRT_CHECK_VALUE(options.perplexity() > 0 && options.perplexity() < static_cast<double>(n),
                      "perplexity must be in (0, N = ", n, "), got ", options.perplexity());
  CONVIRT_CHECK_VALUE(options.max_iterations() >= 1, "max_iterations must be >= 1, got ",
                      options.max_iterations());
  CONVIRT_CHECK_VALUE(options.learning_rate() >= 0, "learning_rate must be >= 0 (0 = auto), got ",
                      options.learning_rate());
  CONVIRT_CHECK_VALUE(options.early_exaggeration() >= 1, "early_exaggeration must be >= 1, got ",
                      options.early_exaggeration());
  CONVIRT_CHECK_VALUE(options.exaggeration_iterations() >= 0,
                      "exaggeration_iterations must be >= 0, got ",
                      options.exaggeration_iterations());
  auto input = x.detach().to(at::kCPU).to(at::kDouble);
  CONVIRT_CHECK_VALUE(at::isfinite(input).all().item<bool>(), "x must be finite");
  if (options.normalize()) input = input / input.norm(2, {1}, true).clamp_min(1e-12);

  const RowMatrix p = joint_probabilities(squared_distances(to_eigen(input)), options.perplexity());
  const int64_t dims = options.dims();
  const double lr =
      options.learning_rate() > 0
          ? options.learning_rate()
          : std::max(static_cast<double>(n) / options.early_exaggeration() / 4.0, 50.0);
  RowMatrix y = random_init(n, dims, options.seed());
  RowMatrix update = RowMatrix::Zero(n, dims);
  RowMatrix gains = RowMatrix::Ones(n, dims);
  RowMatrix num(n, n), grad(n, dims);

  for (int64_t it = 0; it < options.max_iterations(); ++it) {
    const bool exaggerating = it < options.exaggeration_iterations();
    const double exaggeration = exaggerating ? options.early_exaggeration() : 1.0;
    const double momentum = exaggerating ? options.initial_momentum() : options.final_momentum();
    // Student-t kernel num_ij = 1 / (1 + |y_i - y_j|^2); Q = num / sum(num).
    num = squared_distances(y);
    num = (1.0 + num.array()).inverse().matrix();
    num.diagonal().setZero();
    const double z = num.sum();
    // grad_i = 4 sum_j (e P_ij - Q_ij) num_ij (y_i - y_j)
    RowMatrix w = ((exaggeration * p.array() - num.array() / z) * num.array()).matrix();
    w.diagonal().setZero();
    Eigen::VectorXd wsum = w.rowwise().sum();
    grad = 4.0 * (wsum.asDiagonal() * y - w * y);
    // Per-coordinate adaptive gains (Jacobs, 1988), as in the reference implementation.
    for (int64_t k = 0; k < n * dims; ++k) {
      double& g = gains.data()[k];
      const bool same_sign = (grad.data()[k] > 0) == (update.data()[k] > 0);
      g = same_sign ? std::max(g * 0.8, 0.01) : g + 0.2;
    }
    update = momentum * update - lr * gains.cwiseProduct(grad);
    y += update;
    y.rowwise() -= y.colwise().mean();
  }

  // Final KL(P || Q).
  num = squared_distances(y);
  num = (1.0 + num.array()).inverse().matrix();
  num.diagonal().setZero();
  const double z = num.sum();
  double kl = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const double q = std::max(num(i, j) / z, 1e-12);
      kl += p(i, j) * std::log(p(i, j) / q);
    }
  }
  TSNEResult r;
  r.embedding = at::empty({n, dims}, at::TensorOptions().dtype(at::kDouble));
  std::memcpy(r.embedding.data_ptr<double>(), y.data(),
              sizeof(double) * static_cast<size_t>(n * dims));
  r.kl_divergence = kl;
  r.iterations = options.max_iterations();
  return r;
}

double knn_label_agreement(const torch::Tensor& points, const torch::Tensor& labels, int64_t k) {
  CONVIRT_CHECK_VALUE(
      points.defined() && points.dim() == 2, "points must be 2-D [N, D], got ",
      points.defined() ? detail::shape_str(points.sizes()) : std::string("undefined"));
  const int64_t n = points.size(0);
  CONVIRT_CHECK_VALUE(
      labels.defined() && labels.dim() == 1 && labels.size(0) == n,
      "labels must be [N] with N = ", n, ", got ",
      labels.defined() ? detail::shape_str(labels.sizes()) : std::string("undefined"));
  CONVIRT_CHECK_VALUE(k >= 1 && k < n, "k must be in [1, N - 1 = ", n - 1, "], got ", k);
  auto d2 = at::cdist(points.detach().to(at::kCPU).to(at::kDouble),
                      points.detach().to(at::kCPU).to(at::kDouble));
  // The point itself must not count as its own neighbour.
  d2.fill_diagonal_(std::numeric_limits<double>::infinity());
  auto nn = std::get<1>(d2.topk(k, 1, /*largest=*/false, /*sorted=*/true));
  auto lab = labels.detach().to(at::kCPU).to(at::kLong);
  auto same = lab.index_select(0, nn.reshape({-1})).reshape({n, k}).eq(lab.unsqueeze(1));
  return same.to(at::kDouble).mean().item<double>();
}

}  // namespace convirt::eval
