#pragma once
// The Contrastive-Binary-Loss baseline of the paper's tables: an MLP over the concatenated image
// and text projections predicts whether a pair is real or fake, a fake pair being the image with
// another report of the batch (text replaced at random); binary cross-entropy over both.

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace convirt {

/// Example:
///   convirt::ContrastiveBinaryLoss criterion(convirt::ContrastiveBinaryOptions(512));
///   auto loss = criterion(v, u);  // v, u: [N, 512]
struct ContrastiveBinaryOptions {
  explicit ContrastiveBinaryOptions(int64_t embedding_dim) : embedding_dim_(embedding_dim) {}
  /// Width d of each projection; the MLP reads 2d.
  TORCH_ARG(int64_t, embedding_dim);
  /// Hidden width of the MLP (Linear -> ReLU -> Linear -> 1 logit).
  TORCH_ARG(int64_t, hidden_dim) = 512;
};

class ContrastiveBinaryLossImpl : public torch::nn::Cloneable<ContrastiveBinaryLossImpl> {
 public:
  explicit ContrastiveBinaryLossImpl(ContrastiveBinaryOptions options);
  void reset() override;
  /// Mean BCE over the N real pairs and N fake pairs (drawn with the default generator, so runs are
  /// reproducible from torch::manual_seed). N = 1 has no fake pair: only the real term.
  torch::Tensor forward(const torch::Tensor& image_emb, const torch::Tensor& text_emb);
  /// Probability that each (image_emb[i], text_emb[i]) is a real pair: [N].
  torch::Tensor score(const torch::Tensor& image_emb, const torch::Tensor& text_emb);

  ContrastiveBinaryOptions options;
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(ContrastiveBinaryLoss);

}  // namespace convirt
