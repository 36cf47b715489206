#pragma once
// t-SNE (van der Maaten and Hinton, 2008), exact O(N^2) form, for the paper's Figure 3 (image
// embeddings of a few hundred to a few thousand candidates). Implemented with Eigen on the CPU;
// deterministic for a seed.

#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>

namespace convirt::eval {

/// Options of tsne(). Defaults follow scikit-learn's TSNE (perplexity 30, early exaggeration 12 for
/// 250 iterations, "auto" learning rate, 1000 iterations).
///
/// Example:
///   auto r = convirt::eval::tsne(embeddings, convirt::eval::TSNEOptions().perplexity(20).seed(1));
struct TSNEOptions {
  /// Output dimensions (2 for a scatter plot).
  TORCH_ARG(int64_t, dims) = 2;
  /// Effective number of neighbours; must be > 0 and < N.
  TORCH_ARG(double, perplexity) = 30.0;
  TORCH_ARG(int64_t, max_iterations) = 1000;
  /// Gradient step; 0 = "auto": max(N / early_exaggeration / 4, 50) as scikit-learn.
  TORCH_ARG(double, learning_rate) = 0.0;
  TORCH_ARG(double, early_exaggeration) = 12.0;
  TORCH_ARG(int64_t, exaggeration_iterations) = 250;
  /// Momentum during the exaggeration phase, then after it.
  TORCH_ARG(double, initial_momentum) = 0.5;
  TORCH_ARG(double, final_momentum) = 0.8;
  /// L2-normalise the rows first, so distances are cosine distances as the retrieval uses.
  TORCH_ARG(bool, normalize) = false;
  /// Seeds the initial layout (N(0, 1e-4^2) per coordinate).
  TORCH_ARG(uint64_t, seed) = 0;
};

/// The layout and how well it fits.
struct TSNEResult {
  torch::Tensor embedding;     ///< [N, dims] float64
  double kl_divergence = 0.0;  ///< KL(P || Q) of the final layout
  int64_t iterations = 0;
};

/// Embeds the rows of `x` [N, D] (any floating dtype and device; computed in float64 on CPU).
///
/// Example:
///   auto layout = convirt::eval::tsne(image_emb).embedding;  // [N, 2]
TSNEResult tsne(const torch::Tensor& x, const TSNEOptions& options = TSNEOptions());

/// Fraction of each point's k nearest neighbours (Euclidean, excluding itself) that share its
/// label, averaged over points: 1 for perfectly separated categories, about 1/categories for mixed
/// ones. Used to quantify how well a layout (or an embedding) separates categories.
///
/// Example:
///   double purity = convirt::eval::knn_label_agreement(layout, labels, 10);
double knn_label_agreement(const torch::Tensor& points, const torch::Tensor& labels, int64_t k);

}  // namespace convirt::eval
