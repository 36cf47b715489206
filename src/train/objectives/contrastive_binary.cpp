#include <convirt/core/check.h>
#include <convirt/train/objectives/contrastive_binary.h>

#include <torch/torch.h>

namespace convirt::train {

ContrastiveBinaryObjectiveImpl::ContrastiveBinaryObjectiveImpl(const ObjectiveContext& context) {
  CONVIRT_CHECK_VALUE(!context.options.learn_temperature(),
                      "learn_temperature needs the convirt objective, got 'binary'");
  loss = register_module("loss",
                         ContrastiveBinaryLoss(ContrastiveBinaryOptions(context.embedding_dim)));
  loss->to(context.device, context.dtype);
}

torch::Tensor ContrastiveBinaryObjectiveImpl::forward(models::ConVIRTModelImpl& model,
                                                      const ObjectiveBatch& batch,
                                                      StepMetrics* metrics) {
  auto [v, u] = embed_pairs(model, batch);
  // Each rank's own shard: the fake pairs are drawn within it.
  auto out = loss->forward(v, u);
  if (metrics) metrics->loss = out.item<double>();
  return out;
}

void ContrastiveBinaryObjectiveImpl::save(torch::serialize::OutputArchive& archive) const {
  loss->save(archive);
}

void ContrastiveBinaryObjectiveImpl::load(torch::serialize::InputArchive& archive) {
  loss->load(archive);
}

}  // namespace convirt::train
