#include <convirt/dist/infonce.h>
#include <convirt/train/objectives/convirt.h>

#include <fmt/format.h>
#include <torch/torch.h>

namespace convirt::train {

ConVIRTObjectiveImpl::ConVIRTObjectiveImpl(const ObjectiveContext& context)
    : learn_temperature_(context.options.learn_temperature()) {
  const auto& o = context.options;
  // A learned tau starts at `temperature` and lives in log space in the loss module.
  const auto loss_options =
      learn_temperature_
          ? InfoNCEOptions()
                .learnable_temperature(torch::scalar_tensor(o.temperature(), torch::kFloat))
                .image_to_text_weight(o.image_to_text_weight())
          : InfoNCEOptions()
                .temperature(o.temperature())
                .image_to_text_weight(o.image_to_text_weight());
  const auto& ctx = o.distributed();
  // Distributed: this rank's rows against the whole global batch's columns; the value (and the
  // statistics) are the global batch's on every rank.
  loss = register_module(
      "loss", InfoNCELoss(loss_options, ctx.is_distributed() ? dist::global_batch(ctx) : nullptr));
  loss->to(context.device);
}

torch::Tensor ConVIRTObjectiveImpl::forward(models::ConVIRTModelImpl& model,
                                            const ObjectiveBatch& batch, StepMetrics* metrics) {
  auto [v, u] = embed_pairs(model, batch);
  auto out = loss->forward_with_stats(v, u);
  if (metrics) {
    metrics->loss = out.loss.item<double>();
    metrics->image_to_text = out.image_to_text.item<double>();
    metrics->text_to_image = out.text_to_image.item<double>();
    metrics->image_to_text_accuracy = out.image_to_text_accuracy.item<double>();
    metrics->text_to_image_accuracy = out.text_to_image_accuracy.item<double>();
    metrics->temperature = loss->temperature().item<double>();
  }
  return out.loss;
}

// The learned temperature is optimised without weight decay (as CLIP's logit scale): decay would
// pull log tau towards 0, i.e. tau towards 1.
std::vector<torch::Tensor> ConVIRTObjectiveImpl::no_decay_parameters() {
  return loss->parameters();
}

std::string ConVIRTObjectiveImpl::progress(const StepMetrics& m) const {
  std::string out = fmt::format(" | acc i2t {:.2f} t2i {:.2f}", m.image_to_text_accuracy,
                                m.text_to_image_accuracy);
  // A learned tau is part of what moves: shown beside the loss it scales.
  if (learn_temperature_) out += fmt::format(" | tau {:.4f}", m.temperature);
  return out;
}

void ConVIRTObjectiveImpl::save(torch::serialize::OutputArchive& archive) const {
  loss->save(archive);
}

void ConVIRTObjectiveImpl::load(torch::serialize::InputArchive& archive) {
  loss->load(archive);
}

}  // namespace convirt::train
