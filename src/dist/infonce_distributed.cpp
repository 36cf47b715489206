// gather_with_grad (an autograd node whose backward is an all-reduce) and the global-negatives
// InfoNCE loss built on it.

#include <convirt/core/check.h>
#include <convirt/dist/gather.h>
#include <convirt/dist/infonce.h>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/grad_mode.h>

#include <memory>
#include <numeric>
#include <utility>
#include <vector>

namespace convirt::dist {
namespace {

using torch::autograd::variable_list;

// Backward of the all-gather: each rank holds dLoss_r/dGathered; the sum over ranks, restricted
// to this rank's rows, is the gradient of sum_r Loss_r with respect to the local shard.
struct GatherWithGradBackward : public torch::autograd::Node {
  GatherWithGradBackward(DistributedContext ctx, int64_t offset, int64_t rows,
                         std::vector<int64_t> gathered_shape, at::TensorOptions options)
      : ctx_(std::move(ctx)),
        offset_(offset),
        rows_(rows),
        gathered_shape_(std::move(gathered_shape)),
        options_(options) {}

  variable_list apply(variable_list&& grads) override {
    // Every rank must take part in the all-reduce, also one whose loss ignored the gathered
    // tensor (its gradient is then undefined and counts as zeros).
    at::Tensor g =
        grads[0].defined() ? grads[0].contiguous().clone() : at::zeros(gathered_shape_, options_);
    ctx_.all_reduce_(g, ReduceOp::kSum);
    return {g.narrow(0, offset_, rows_)};
  }

  std::string name() const override { return "convirt::dist::GatherWithGradBackward"; }

 private:
  DistributedContext ctx_;
  int64_t offset_;
  int64_t rows_;
  std::vector<int64_t> gathered_shape_;
  at::TensorOptions options_;
};

at::Tensor gather_with_grad_sized(const at::Tensor& local, const DistributedContext& ctx,
                                  const std::vector<int64_t>& sizes) {
  if (ctx.world_size() == 1) return local;
  at::Tensor gathered;
  {
    at::NoGradGuard no_grad;
    gathered = ctx.all_gather_rows(local.detach(), sizes);
  }
  if (torch::autograd::compute_requires_grad(local)) {
    const int64_t offset = std::accumulate(sizes.begin(), sizes.begin() + ctx.rank(), int64_t{0});
    auto node = std::shared_ptr<GatherWithGradBackward>(
        new GatherWithGradBackward(ctx, offset, local.size(0), gathered.sizes().vec(),
                                   gathered.options()),
        torch::autograd::deleteNode);
    node->set_next_edges(torch::autograd::collect_next_edges(local));
    torch::autograd::set_history(gathered, node);
  }
  return gathered;
}

void check_embedding(const at::Tensor& t, const char* name) {
  CONVIRT_CHECK_VALUE(t.defined(), name, " must be a defined tensor");
  CONVIRT_CHECK_VALUE(t.dim() == 2, name, " must be 2-D [n, D], got ",
                      convirt::detail::shape_str(t.sizes()));
  CONVIRT_CHECK_TYPE(t.is_floating_point(), name,
                     " must be floating point (float32, float64, float16 or bfloat16), got ",
                     t.scalar_type());
}

at::Tensor l2_normalize(const at::Tensor& x, double eps) {
  return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(eps).expand_as(x);
}

InfoNCEOutput compute(const at::Tensor& image, const at::Tensor& text, const InfoNCEOptions& o,
                      const DistributedContext& ctx, bool with_stats) {
  check_embedding(image, "image_emb");
  check_embedding(text, "text_emb");
  CONVIRT_CHECK_VALUE(image.size(0) == text.size(0),
                      "image_emb and text_emb must have the same number of rows n, got ",
                      image.size(0), " and ", text.size(0));
  CONVIRT_CHECK_VALUE(image.size(1) >= 1 && image.size(1) == text.size(1),
                      "image_emb and text_emb must have the same width D >= 1, got ",
                      convirt::detail::shape_str(image.sizes()), " and ",
                      convirt::detail::shape_str(text.sizes()));
  CONVIRT_CHECK_TYPE(image.scalar_type() == text.scalar_type(),
                     "image_emb and text_emb must have the same dtype, got ", image.scalar_type(),
                     " and ", text.scalar_type());
  CONVIRT_CHECK_VALUE(image.device() == text.device(),
                      "image_emb and text_emb must be on the same device, got ", image.device(),
                      " and ", text.device());
  const double weight = o.image_to_text_weight();
  CONVIRT_CHECK_VALUE(weight >= 0 && weight <= 1, "image_to_text_weight must be in [0, 1], got ",
                      weight);
  CONVIRT_CHECK_VALUE(o.eps() >= 0, "eps must be >= 0, got ", o.eps());
  at::Tensor tau = o.learnable_temperature().defined()
                       ? o.learnable_temperature()
                       : at::scalar_tensor(o.temperature(), at::kDouble);
  CONVIRT_CHECK_VALUE(tau.numel() == 1, "temperature must be a single value, got shape ",
                      convirt::detail::shape_str(tau.sizes()));
  CONVIRT_CHECK_TYPE(tau.is_floating_point(), "temperature must be floating point, got ",
                     tau.scalar_type());
  CONVIRT_CHECK_VALUE(tau.item<double>() > 0, "temperature must be > 0, got ", tau.item<double>());

  // Every rank learns every rank's n before any rank can fail a check that depends on the global
  // batch, so all of them raise the same error rather than some waiting at a collective.
  const auto sizes = ctx.all_gather_sizes(image.size(0));
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  CONVIRT_CHECK_VALUE(total >= 1, "the global batch must have at least one row, got 0 on all ",
                      ctx.world_size(), " ranks");
  const int64_t offset = std::accumulate(sizes.begin(), sizes.begin() + ctx.rank(), int64_t{0});

  const auto acc = image.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  tau = tau.reshape({}).to(image.device(), acc);
  at::Tensor a = image.to(acc);
  at::Tensor b = text.to(acc);
  if (o.normalize()) {
    a = l2_normalize(a, o.eps());
    b = l2_normalize(b, o.eps());
  }
  const int64_t d = a.size(1);
  // One collective for both modalities.
  const at::Tensor gathered = gather_with_grad_sized(at::cat({a, b}, 1), ctx, sizes);
  const at::Tensor all_a = gathered.narrow(1, 0, d);
  const at::Tensor all_b = gathered.narrow(1, d, d);

  // Local rows against all columns: images -> all reports, reports -> all images.
  const at::Tensor logits_v = at::mm(a, all_b.t()) / tau;
  const at::Tensor logits_u = at::mm(b, all_a.t()) / tau;
  const int64_t n = a.size(0);
  const at::Tensor diag_v = logits_v.narrow(1, offset, n).diagonal();
  const at::Tensor diag_u = logits_u.narrow(1, offset, n).diagonal();
  const at::Tensor i2t_sum = (at::logsumexp(logits_v, {1}) - diag_v).sum();
  const at::Tensor t2i_sum = (at::logsumexp(logits_u, {1}) - diag_u).sum();
  const at::Tensor part =
      (weight * i2t_sum + (1.0 - weight) * t2i_sum) / static_cast<double>(total);

  std::vector<at::Tensor> pieces{part.detach(), i2t_sum.detach(), t2i_sum.detach()};
  if (with_stats) {
    at::NoGradGuard no_grad;
    const auto zero_if_empty = [&](const at::Tensor& logits, const at::Tensor& diag) {
      if (n == 0) return at::zeros({}, diag.options());
      return (diag >= std::get<0>(logits.max(1))).to(acc).sum();
    };
    pieces.push_back(zero_if_empty(logits_v.detach(), diag_v.detach()));
    pieces.push_back(zero_if_empty(logits_u.detach(), diag_u.detach()));
  }
  at::Tensor global = at::stack(pieces);
  ctx.all_reduce_(global, ReduceOp::kSum);

  InfoNCEOutput out;
  // The value is the global loss, bit-identical on every rank; (part - part.detach()) is exactly
  // zero and carries this rank's share of the gradient.
  out.loss = global[0] + (part - part.detach());
  out.image_to_text = global[1] / static_cast<double>(total);
  out.text_to_image = global[2] / static_cast<double>(total);
  if (with_stats) {
    out.image_to_text_accuracy = global[3] / static_cast<double>(total);
    out.text_to_image_accuracy = global[4] / static_cast<double>(total);
  }
  return out;
}

}  // namespace

torch::Tensor gather_with_grad(const torch::Tensor& local, const DistributedContext& ctx) {
  CONVIRT_CHECK_VALUE(local.defined(), "local must be a defined tensor");
  CONVIRT_CHECK_VALUE(local.dim() >= 1, "local must have at least 1 dim [n, ...], got ",
                      convirt::detail::shape_str(local.sizes()));
  if (ctx.world_size() == 1) return local;
  return gather_with_grad_sized(local, ctx, ctx.all_gather_sizes(local.size(0)));
}

torch::Tensor infonce_loss_distributed(const torch::Tensor& image_emb,
                                       const torch::Tensor& text_emb, const InfoNCEOptions& options,
                                       const DistributedContext& ctx) {
  return compute(image_emb, text_emb, options, ctx, /*with_stats=*/false).loss;
}

InfoNCEOutput infonce_loss_distributed_with_stats(const torch::Tensor& image_emb,
                                                  const torch::Tensor& text_emb,
                                                  const InfoNCEOptions& options,
                                                  const DistributedContext& ctx) {
  return compute(image_emb, text_emb, options, ctx, /*with_stats=*/true);
}

namespace {

class ProcessGroupBatch final : public GlobalBatch {
 public:
  explicit ProcessGroupBatch(DistributedContext ctx) : ctx_(std::move(ctx)) {}
  int64_t rank() const override { return ctx_.rank(); }
  int64_t world_size() const override { return ctx_.world_size(); }
  InfoNCEOutput infonce(const torch::Tensor& image_emb, const torch::Tensor& text_emb,
                        const InfoNCEOptions& options, bool with_stats) const override {
    return compute(image_emb, text_emb, options, ctx_, with_stats);
  }

 private:
  DistributedContext ctx_;
};

}  // namespace

std::shared_ptr<const GlobalBatch> global_batch(DistributedContext ctx) {
  return std::make_shared<ProcessGroupBatch>(std::move(ctx));
}

}  // namespace convirt::dist
