#pragma once
// The Contrastive-Binary-Loss baseline of the paper's tables as a pretraining objective: an MLP
// over the concatenated projections tells real pairs from fake ones (convirt/loss/
// contrastive_binary.h), each rank scoring its own shard.

#include <convirt/loss/contrastive_binary.h>
#include <convirt/train/objective.h>

#include <string>

namespace convirt::train {

/// The "binary" objective (also spelled "contrastive-binary"). Its MLP is trained with weight
/// decay and checkpointed as "objective_head"; the fake pairs are drawn from the default
/// generator within each rank's shard. It has no temperature: learn_temperature is a ValueError.
///
/// Example:
///   auto objective = convirt::train::make_objective("binary", context);
class ContrastiveBinaryObjectiveImpl : public PretrainObjectiveImpl {
 public:
  explicit ContrastiveBinaryObjectiveImpl(const ObjectiveContext& context);
  std::string name() const override { return "binary"; }
  torch::Tensor forward(models::ConVIRTModelImpl& model, const ObjectiveBatch& batch,
                        StepMetrics* metrics) override;
  std::string checkpoint_key() const override { return "objective_head"; }
  // The checkpoint entry is the ContrastiveBinaryLoss's own archive, as before objectives were
  // modules.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  ContrastiveBinaryLoss loss{nullptr};
};

}  // namespace convirt::train
