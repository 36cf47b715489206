#pragma once
// The paper's objective: bidirectional InfoNCE between the image and text projections (eq. 2-3),
// tau fixed (the paper) or learned in log space (PretrainOptions::learn_temperature), over the
// whole global batch in a distributed job.

#include <convirt/loss/infonce.h>
#include <convirt/train/objective.h>

#include <string>
#include <vector>

namespace convirt::train {

/// The "convirt" objective. Its one module is an InfoNCELoss: with learn_temperature it holds the
/// parameter log_temperature (optimised without weight decay, checkpointed as "objective_loss");
/// otherwise it has no parameters and the checkpoint no entry for it.
///
/// Example:
///   auto objective = convirt::train::make_objective("convirt", context);
class ConVIRTObjectiveImpl : public PretrainObjectiveImpl {
 public:
  explicit ConVIRTObjectiveImpl(const ObjectiveContext& context);
  std::string name() const override { return "convirt"; }
  torch::Tensor forward(models::ConVIRTModelImpl& model, const ObjectiveBatch& batch,
                        StepMetrics* metrics) override;
  std::vector<torch::Tensor> no_decay_parameters() override;
  bool spans_global_batch() const override { return true; }
  std::string progress(const StepMetrics& metrics) const override;
  std::string checkpoint_key() const override { return "objective_loss"; }
  // The checkpoint entry is the InfoNCELoss's own archive (as before objectives were modules), so
  // checkpoints of either kind load into the other.
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  InfoNCELoss loss{nullptr};

 private:
  bool learn_temperature_ = false;
};

}  // namespace convirt::train
