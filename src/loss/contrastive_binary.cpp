#include <convirt/core/check.h>
#include <convirt/loss/contrastive_binary.h>

#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

namespace convirt {

ContrastiveBinaryLossImpl::ContrastiveBinaryLossImpl(ContrastiveBinaryOptions options_)
    : options(std::move(options_)) {
  reset();
}

void ContrastiveBinaryLossImpl::reset() {
  CONVIRT_CHECK_VALUE(options.embedding_dim() >= 1, "embedding_dim must be >= 1, got ",
                      options.embedding_dim());
  CONVIRT_CHECK_VALUE(options.hidden_dim() >= 1, "hidden_dim must be >= 1, got ",
                      options.hidden_dim());
  mlp = register_module(
      "mlp",
      torch::nn::Sequential(torch::nn::Linear(2 * options.embedding_dim(), options.hidden_dim()),
                            torch::nn::ReLU(), torch::nn::Linear(options.hidden_dim(), 1)));
}

namespace {

void check_pair(const torch::Tensor& v, const torch::Tensor& u, int64_t d) {
  CONVIRT_CHECK_VALUE(v.dim() == 2 && u.dim() == 2 && v.size(0) == u.size(0) && v.size(0) >= 1,
                      "image_emb and text_emb must be [N, D] with the same N >= 1, got ",
                      detail::shape_str(v.sizes()), " and ", detail::shape_str(u.sizes()));
  CONVIRT_CHECK_VALUE(v.size(1) == d && u.size(1) == d, "embeddings must have width ", d,
                      " (embedding_dim), got ", detail::shape_str(v.sizes()), " and ",
                      detail::shape_str(u.sizes()));
}

}  // namespace

torch::Tensor ContrastiveBinaryLossImpl::score(const torch::Tensor& image_emb,
                                               const torch::Tensor& text_emb) {
  check_pair(image_emb, text_emb, options.embedding_dim());
  return torch::sigmoid(mlp->forward(torch::cat({image_emb, text_emb}, 1)).squeeze(1));
}

torch::Tensor ContrastiveBinaryLossImpl::forward(const torch::Tensor& image_emb,
                                                 const torch::Tensor& text_emb) {
  check_pair(image_emb, text_emb, options.embedding_dim());
  const int64_t n = image_emb.size(0);
  auto real = mlp->forward(torch::cat({image_emb, text_emb}, 1)).squeeze(1);
  auto ones = torch::ones_like(real);
  if (n == 1) return torch::nn::functional::binary_cross_entropy_with_logits(real, ones);
  // Another pair's report for every image: a random shift in [1, N-1] of a random permutation has
  // no fixed point.
  auto perm = torch::randperm(n, torch::TensorOptions().dtype(torch::kLong));
  const int64_t shift = torch::randint(1, n, {1}, torch::kLong).item<int64_t>();
  auto fake_index = torch::empty_like(perm);
  fake_index.index_put_({perm}, perm.roll(shift));
  auto fake =
      mlp->forward(
             torch::cat({image_emb, text_emb.index_select(0, fake_index.to(text_emb.device()))}, 1))
          .squeeze(1);
  auto logits = torch::cat({real, fake});
  auto targets = torch::cat({ones, torch::zeros_like(fake)});
  return torch::nn::functional::binary_cross_entropy_with_logits(logits, targets);
}

}  // namespace convirt
