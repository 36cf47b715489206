// Synchronised BatchNorm: global per-channel statistics from every rank's (count, mean, M2),
// combined in rank order; a custom autograd Function whose backward combines the per-channel
// sums of grad_output and grad_output * x_hat the same way; and the conversion of a module tree.

#include <convirt/core/check.h>
#include <convirt/dist/sync_batch_norm.h>

#include <ATen/core/ivalue.h>
#include <torch/autograd.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <utility>
#include <vector>

namespace convirt::dist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The process group travels to backward in the Function's saved data, which holds IValues only:
// a capsule carries any CustomClassHolder without registering a TorchScript class.
struct ContextCapsule : torch::CustomClassHolder {
  explicit ContextCapsule(DistributedContext c) : ctx(std::move(c)) {}
  DistributedContext ctx;
};

// Statistics are accumulated in float64 whatever the input; normalisation runs in the input's
// dtype, or fp32 for fp16/bf16 (as BatchNorm does).
at::ScalarType compute_type(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

std::vector<int64_t> reduce_dims(const at::Tensor& t) {
  std::vector<int64_t> dims{0};
  for (int64_t d = 2; d < t.dim(); ++d) dims.push_back(d);
  return dims;
}

std::vector<int64_t> channel_shape(const at::Tensor& t) {
  std::vector<int64_t> shape(static_cast<size_t>(t.dim()), 1);
  shape[1] = t.size(1);
  return shape;
}

// Every rank's `local` ([k] float64) added up in rank order: one all-gather, then a fixed sequence
// of additions, so every rank gets bit-identical sums whatever order the messages came in (an
// all-reduce's summation order is the backend's).
at::Tensor sum_in_rank_order(const at::Tensor& local, const DistributedContext& ctx) {
  if (ctx.world_size() == 1) return local;
  const auto parts = ctx.all_gather(local.contiguous());
  at::Tensor total = parts[0].clone();
  for (size_t r = 1; r < parts.size(); ++r) total.add_(parts[r]);
  return total;
}

// y = (x - mean) * invstd * weight + bias with the global mean and invstd; backward needs two
// per-channel sums over the global batch.
struct SyncBatchNormFunction : public torch::autograd::Function<SyncBatchNormFunction> {
  static at::Tensor forward(AutogradContext* actx, const at::Tensor& input,
                            const at::Tensor& weight, const at::Tensor& bias,
                            const at::Tensor& mean, const at::Tensor& invstd, double count,
                            const DistributedContext& ctx) {
    const auto acc = compute_type(input);
    const auto shape = channel_shape(input);
    at::Tensor y = (input.to(acc) - mean.view(shape)) * invstd.view(shape);
    if (weight.defined()) y = y * weight.to(acc).view(shape) + bias.to(acc).view(shape);
    actx->save_for_backward({input, weight, mean, invstd});
    // Elements per channel over all ranks: the backward's mean of the gradient sums divides by it.
    actx->saved_data["elements_per_channel"] = count;
    actx->saved_data["ctx"] = c10::IValue::make_capsule(c10::make_intrusive<ContextCapsule>(ctx));
    return y.to(input.scalar_type());
  }

  static variable_list backward(AutogradContext* actx, variable_list grads) {
    const auto saved = actx->get_saved_variables();
    const at::Tensor& input = saved[0];
    const at::Tensor& weight = saved[1];
    const at::Tensor& mean = saved[2];
    const at::Tensor& invstd = saved[3];
    const double elements_per_channel = actx->saved_data["elements_per_channel"].toDouble();
    const auto capsule =
        c10::static_intrusive_pointer_cast<ContextCapsule>(actx->saved_data["ctx"].toCapsule());
    const auto acc = compute_type(input);
    const auto shape = channel_shape(input);
    const auto dims = reduce_dims(input);
    const int64_t channels = input.size(1);
    // Every rank takes part in the collective, also one whose loss ignored this layer's output.
    const at::Tensor g = grads[0].defined() ? grads[0].to(acc)
                                            : at::zeros(input.sizes(), input.options().dtype(acc));
    const at::Tensor x_hat = (input.to(acc) - mean.view(shape)) * invstd.view(shape);
    const at::Tensor sum_dy = g.sum(dims);
    const at::Tensor sum_dy_xhat = (g * x_hat).sum(dims);
    const at::Tensor global =
        sum_in_rank_order(at::cat({sum_dy, sum_dy_xhat}).to(at::kDouble), capsule->ctx);
    const at::Tensor mean_dy = (global.narrow(0, 0, channels) / elements_per_channel).to(acc);
    const at::Tensor mean_dy_xhat =
        (global.narrow(0, channels, channels) / elements_per_channel).to(acc);
    at::Tensor scale = invstd;
    if (weight.defined()) scale = scale * weight.to(acc);
    const at::Tensor grad_input =
        ((g - mean_dy.view(shape) - x_hat * mean_dy_xhat.view(shape)) * scale.view(shape))
            .to(input.scalar_type());
    // This rank's share of the parameter gradients; the ranks' shares add up to the global one.
    at::Tensor grad_weight, grad_bias;
    if (weight.defined()) {
      grad_weight = sum_dy_xhat.to(weight.scalar_type());
      grad_bias = sum_dy.to(weight.scalar_type());
    }
    return {grad_input,   grad_weight,  grad_bias,   at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

void convert_children(torch::nn::Module& parent, const std::string& prefix,
                      const std::shared_ptr<models::BatchNormStatistics>& stats, bool apply,
                      int64_t* count);

}  // namespace

torch::Tensor sync_batch_norm(const torch::Tensor& input, const torch::Tensor& weight,
                              const torch::Tensor& bias, torch::Tensor running_mean,
                              torch::Tensor running_var, double momentum, double eps,
                              const DistributedContext& ctx) {
  CONVIRT_CHECK_VALUE(input.defined() && input.dim() >= 2,
                      "sync_batch_norm: input must be [n, C, ...] with at least 2 dims, got ",
                      input.defined() ? convirt::detail::shape_str(input.sizes()) : "undefined");
  CONVIRT_CHECK_TYPE(input.is_floating_point(),
                     "sync_batch_norm: input must be floating point, got ", input.scalar_type());
  const int64_t channels = input.size(1);
  CONVIRT_CHECK_VALUE(weight.defined() == bias.defined(),
                      "sync_batch_norm: weight and bias must be both given or both undefined");
  for (const at::Tensor* t :
       std::initializer_list<const at::Tensor*>{&weight, &bias, &running_mean, &running_var}) {
    CONVIRT_CHECK_VALUE(!t->defined() || (t->dim() == 1 && t->size(0) == channels),
                        "sync_batch_norm: weight, bias and running statistics must be [C] = [",
                        channels, "] for input ", convirt::detail::shape_str(input.sizes()),
                        ", got ", convirt::detail::shape_str(t->sizes()));
  }
  CONVIRT_CHECK_VALUE(running_mean.defined() == running_var.defined(),
                      "sync_batch_norm: running_mean and running_var must be both given or both "
                      "undefined");
  CONVIRT_CHECK_VALUE(eps >= 0, "sync_batch_norm: eps must be >= 0, got ", eps);

  at::Tensor mean, invstd;
  double count = 0;
  {
    at::NoGradGuard no_grad;
    const auto acc = compute_type(input);
    const int64_t local = channels > 0 ? input.numel() / channels : 0;
    at::Tensor local_mean, local_m2;
    if (local > 0) {
      auto [var, m] = at::var_mean(input.to(acc), reduce_dims(input), /*unbiased=*/false);
      local_mean = m.to(at::kDouble);
      local_m2 = var.to(at::kDouble) * static_cast<double>(local);
    } else {
      local_mean = at::zeros({channels}, input.options().dtype(at::kDouble));
      local_m2 = at::zeros({channels}, input.options().dtype(at::kDouble));
    }
    const at::Tensor mine = at::cat(
        {at::full({1}, static_cast<double>(local), local_mean.options()), local_mean, local_m2});
    std::vector<at::Tensor> parts{mine};
    if (ctx.world_size() > 1) parts = ctx.all_gather(mine);
    // Chan et al.'s pairwise combination of (count, mean, M2), rank after rank: stable (no
    // E[x^2] - E[x]^2 cancellation) and the same sequence of operations on every rank.
    at::Tensor m2;
    for (const auto& part : parts) {
      const double n = part[0].item<double>();
      if (n == 0) continue;
      const at::Tensor part_mean = part.narrow(0, 1, channels);
      const at::Tensor part_m2 = part.narrow(0, 1 + channels, channels);
      if (count == 0) {
        mean = part_mean.clone();
        m2 = part_m2.clone();
        count = n;
        continue;
      }
      const double total = count + n;
      const at::Tensor delta = part_mean - mean;
      mean = mean + delta * (n / total);
      m2 = m2 + part_m2 + delta * delta * (count * n / total);
      count = total;
    }
    // Raised on every rank alike (all of them know the global count).
    CONVIRT_CHECK_VALUE(count > 1,
                        "sync_batch_norm: expected more than 1 value per channel in the global "
                        "batch (all ranks together) when training, got ",
                        count, " (input ", convirt::detail::shape_str(input.sizes()), " on rank ",
                        ctx.rank(), " of ", ctx.world_size(), ")");
    const at::Tensor var = m2 / count;
    if (running_mean.defined()) {
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum)
          .add_((m2 / (count - 1)).to(running_var.scalar_type()), momentum);
    }
    invstd = (var + eps).rsqrt().to(acc);
    mean = mean.to(acc);
  }
  // Function::apply needs defined tensors: a layer without affine parameters gets a constant scale
  // of 1 and shift of 0 (which change no value) and no gradient.
  if (!weight.defined()) {
    const auto options = mean.options();
    return SyncBatchNormFunction::apply(input, at::ones({channels}, options),
                                        at::zeros({channels}, options), mean, invstd, count, ctx);
  }
  return SyncBatchNormFunction::apply(input, weight, bias, mean, invstd, count, ctx);
}

torch::Tensor SyncBatchNormStatistics::forward(torch::nn::BatchNorm2dImpl& layer,
                                               const torch::Tensor& input) {
  CONVIRT_CHECK_VALUE(input.dim() == 4, "BatchNorm2d expects a 4-D input [n, C, H, W], got ",
                      convirt::detail::shape_str(input.sizes()));
  const auto& o = layer.options;
  double factor = o.momentum().has_value() ? *o.momentum() : 0.0;
  torch::Tensor running_mean, running_var;
  if (o.track_running_stats()) {
    running_mean = layer.running_mean;
    running_var = layer.running_var;
    if (layer.num_batches_tracked.defined()) {
      torch::NoGradGuard no_grad;
      layer.num_batches_tracked += 1;
      // momentum unset: the cumulative average, as torch::nn::BatchNorm2d.
      if (!o.momentum().has_value()) factor = 1.0 / layer.num_batches_tracked.item<double>();
    }
  }
  return sync_batch_norm(input, layer.weight, layer.bias, running_mean, running_var, factor,
                         o.eps(), ctx_);
}

std::string SyncBatchNormStatistics::describe() const {
  return "synchronised over " + std::to_string(ctx_.world_size()) + " rank(s)";
}

SyncBatchNormImpl::SyncBatchNormImpl(const torch::nn::BatchNorm2dOptions& options,
                                     const DistributedContext& ctx)
    : models::BatchNorm2dImpl(options) {
  set_statistics(std::make_shared<SyncBatchNormStatistics>(ctx));
}

namespace {

// Finds (apply = false: checks) or converts (apply = true) the BatchNorm2d layers under `parent`.
void convert_children(torch::nn::Module& parent, const std::string& prefix,
                      const std::shared_ptr<models::BatchNormStatistics>& stats, bool apply,
                      int64_t* count) {
  for (const auto& item : parent.named_children()) {
    const std::string path = prefix.empty() ? item.key() : prefix + "." + item.key();
    std::shared_ptr<torch::nn::Module> child = item.value();
    if (auto* own = child->as<models::BatchNorm2d>()) {
      if (apply) own->set_statistics(stats);
      ++*count;
      continue;
    }
    if (child->as<torch::nn::BatchNorm2d>() == nullptr) {
      convert_children(*child, path, stats, apply, count);
      continue;
    }
    ++*count;
    // A plain torch::nn::BatchNorm2d: replaced under its name, and in the container's own list.
    auto* sequential = parent.as<torch::nn::Sequential>();
    auto* list = parent.as<torch::nn::ModuleList>();
    // References the replacement can reach: the parent's registry, the container's list, and the
    // two here (`item` in the copied registry, `child`). Any other one is a handle the parent (or
    // the caller) would go on calling, and that layer would silently stay unsynchronised.
    const long reachable = 3 + ((sequential != nullptr || list != nullptr) ? 1 : 0);
    CONVIRT_CHECK_VALUE(child.use_count() <= reachable, "convert_sync_batch_norm: '", path,
                        "' is a torch::nn::BatchNorm2d that is also held outside the module "
                        "registry (a member handle its parent calls in forward()?), which this "
                        "function cannot re-point; build it as convirt::models::BatchNorm2d "
                        "(convirt/models/batch_norm.h) so it can be synchronised in place");
    if (!apply) continue;
    auto replacement = std::make_shared<models::BatchNorm2dImpl>(
        static_cast<const torch::nn::BatchNorm2dImpl&>(*child->as<torch::nn::BatchNorm2d>()));
    replacement->set_statistics(stats);
    if (sequential != nullptr) {
      for (auto it = sequential->begin(); it != sequential->end(); ++it) {
        if (it->ptr() == child) *it = torch::nn::AnyModule(replacement);
      }
    }
    if (list != nullptr) {
      for (auto it = list->begin(); it != list->end(); ++it) {
        if (*it == child) *it = replacement;
      }
    }
    parent.replace_module(item.key(), replacement);
  }
}

}  // namespace

int64_t convert_sync_batch_norm(torch::nn::Module& module, const DistributedContext& ctx) {
  CONVIRT_CHECK_VALUE(
      module.as<torch::nn::BatchNorm2d>() == nullptr || module.as<models::BatchNorm2d>() != nullptr,
      "convert_sync_batch_norm: a torch::nn::BatchNorm2d cannot be converted in "
      "place; pass the module that holds it, or use convirt::dist::SyncBatchNorm");
  auto stats = std::make_shared<SyncBatchNormStatistics>(ctx);
  // Checked in full first, so a refused module is left as it was.
  int64_t checked = 0;
  convert_children(module, "", stats, /*apply=*/false, &checked);
  int64_t count = 0;
  convert_children(module, "", stats, /*apply=*/true, &count);
  if (auto* own = module.as<models::BatchNorm2d>()) {
    own->set_statistics(stats);
    ++count;
  }
  return count;
}

int64_t revert_sync_batch_norm(torch::nn::Module& module) {
  int64_t count = 0;
  auto revert = [&](torch::nn::Module& m) {
    if (auto* own = m.as<models::BatchNorm2d>()) {
      if (std::dynamic_pointer_cast<SyncBatchNormStatistics>(own->statistics())) {
        own->set_statistics(nullptr);
        ++count;
      }
    }
  };
  revert(module);
  for (const auto& m : module.modules(/*include_self=*/false)) revert(*m);
  return count;
}

int64_t count_batch_norm(const torch::nn::Module& module) {
  int64_t count = module.as<torch::nn::BatchNorm2d>() != nullptr ? 1 : 0;
  for (const auto& m : module.modules(/*include_self=*/false))
    if (m->as<torch::nn::BatchNorm2d>() != nullptr) ++count;
  return count;
}

}  // namespace convirt::dist
