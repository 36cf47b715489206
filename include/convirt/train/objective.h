#pragma once
// The pretraining objective: what the Pretrainer minimises, as a module of its own.
//
// The trainer owns everything that is the same for every objective (data, tokenisation, devices,
// precision, the optimiser and its schedule, gradient exchange, checkpoints, stopping rules); an
// objective owns the loss: how a batch becomes a number to minimise, the parameters that number
// has besides the model's (a learned temperature, a classifier head), and the metrics it reports.
// It is given the model and the batch rather than (v, u), so objectives that need more than the
// two projections (an image-captioning baseline that decodes the report from the image encoder's
// features) are written the same way.
//
// Objectives are chosen by name (PretrainOptions::objective, `convirt pretrain --objective`, the
// job JSON's "objective"); register_objective() adds one without touching the library. The
// built-ins are "convirt" (convirt/train/objectives/convirt.h) and "binary", also spelled
// "contrastive-binary" (convirt/train/objectives/contrastive_binary.h).

#include <convirt/models/convirt.h>
#include <convirt/train/pretrainer.h>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace convirt::train {

/// One batch as an objective sees it: on the training device, images in the model's dtype. In a
/// distributed job it is this rank's shard of the global batch and may have 0 rows (every pair of
/// the shard was unreadable); the token tensors are then undefined.
struct ObjectiveBatch {
  torch::Tensor images;          ///< [n, C, H, W]
  torch::Tensor input_ids;       ///< [n, L] int64
  torch::Tensor attention_mask;  ///< [n, L], 1 on real tokens
  /// The model's BatchNorm layers are synchronised over the ranks (collectives): a rank must run
  /// the image encoder whenever the others do, even on 0 rows. embed_pairs() takes care of it.
  bool sync_batch_norm = false;
  int64_t size() const { return images.defined() ? images.size(0) : 0; }
};

/// What a factory is given to build an objective for one run (valid during that call only: copy
/// what the objective keeps).
struct ObjectiveContext {
  const PretrainOptions& options;  ///< temperature, image_to_text_weight, learn_temperature, ...
  int64_t embedding_dim;           ///< the model's output_dim (width of v and u)
  torch::Device device;            ///< where the model lives
  torch::ScalarType dtype;         ///< the model parameters' floating type
};

/// The abstract pretraining objective. A torch::nn::Module, so that its own parameters are
/// optimised with the model's (with weight decay unless no_decay_parameters() lists them), kept
/// identical on every rank, and saved in the trainer's checkpoint under checkpoint_key().
///
/// Requirements: forward() draws any random numbers from the default CPU generator (the trainer
/// seeds it and checkpoints it, so a resumed run draws the same ones); it is called in training
/// mode with gradients for each step and in eval mode under NoGradGuard for the validation loss.
///
/// Example (a user objective, registered from the program that trains with it):
///   struct CosineImpl : convirt::train::PretrainObjectiveImpl {
///     std::string name() const override { return "cosine"; }
///     torch::Tensor forward(convirt::models::ConVIRTModelImpl& model,
///                           const convirt::train::ObjectiveBatch& batch,
///                           convirt::train::StepMetrics* metrics) override {
///       auto [v, u] = convirt::train::embed_pairs(model, batch);
///       auto loss = 1 - torch::cosine_similarity(v, u).mean();
///       if (metrics) metrics->loss = loss.item<double>();
///       return loss;
///     }
///   };
///   convirt::train::register_objective("cosine", [](const convirt::train::ObjectiveContext&) {
///     return std::make_shared<CosineImpl>();
///   });
///   // then PretrainOptions(out).objective("cosine")
class PretrainObjectiveImpl : public torch::nn::Module {
 public:
  /// The name recorded in run_options.json and in checkpoints (the registered name).
  virtual std::string name() const = 0;
  /// The 0-dim loss of `batch` for `model`, differentiable with respect to the model's and this
  /// module's parameters. With `metrics` (null during validation) it sets at least
  /// metrics->loss, and whichever other fields it has (directional losses, accuracies, tau).
  virtual torch::Tensor forward(models::ConVIRTModelImpl& model, const ObjectiveBatch& batch,
                                StepMetrics* metrics) = 0;
  /// This module's parameters optimised without weight decay (e.g. a learned temperature, which
  /// decay would pull towards 1). The rest of its parameters are decayed as the model's are.
  virtual std::vector<torch::Tensor> no_decay_parameters() { return {}; }
  /// How the loss spans a distributed job. true: it is the loss of the whole global batch on
  /// every rank (each rank's rows scored against every rank's, per-rank gradients summing to the
  /// one-process gradient); every rank calls forward(), even with 0 rows. false (the default):
  /// each rank's mean over its own shard; gradients and the logged loss are averaged over ranks,
  /// and a rank with fewer than 2 pairs sits the step out. Same result in a single process.
  virtual bool spans_global_batch() const { return false; }
  /// Text added to the progress line after the loss (e.g. " | acc i2t 0.50 t2i 0.48").
  virtual std::string progress(const StepMetrics& /*metrics*/) const { return {}; }
  /// The checkpoint entry that holds this module (save()/load()); written only when the module
  /// has parameters or buffers. Must not be one of the trainer's own entries ("model",
  /// "optimizer", "objective", "objective_name", ...).
  virtual std::string checkpoint_key() const { return "objective_state"; }
};
using PretrainObjective = std::shared_ptr<PretrainObjectiveImpl>;

/// Builds an objective for a run. Called once per Pretrainer, on every rank, after the model is
/// on its device and with the default generator seeded from PretrainOptions::seed (so a
/// randomly initialised head starts alike on every rank, and rank 0's is broadcast anyway).
using ObjectiveFactory = std::function<PretrainObjective(const ObjectiveContext&)>;

/// Makes `name` (and each of `aliases`) a value of PretrainOptions::objective. A ValueError when
/// a name is empty or already registered (the built-ins cannot be replaced). Thread-safe.
///
/// Example:
///   convirt::train::register_objective("cosine", make_cosine_objective);
void register_objective(const std::string& name, ObjectiveFactory factory,
                        const std::vector<std::string>& aliases = {});

/// The registered name `name` stands for (an alias resolved: "contrastive-binary" -> "binary");
/// a ValueError listing the known names when it is not registered.
std::string objective_name(const std::string& name);

/// Every registered name and alias, sorted.
std::vector<std::string> objective_names();

/// Builds the objective `name` stands for; throws as objective_name() does, or what the factory
/// throws (e.g. options it does not support).
PretrainObjective make_objective(const std::string& name, const ObjectiveContext& context);

/// The image and text projections (v, u) of a batch, [n, D] each, as the loss should see them:
/// fp16/bf16 outputs are cast to fp32, fp32 and fp64 ones are left as they are. A batch of 0
/// rows gives two [0, D] tensors (after running the image encoder when sync_batch_norm).
std::pair<torch::Tensor, torch::Tensor> embed_pairs(models::ConVIRTModelImpl& model,
                                                    const ObjectiveBatch& batch);

}  // namespace convirt::train
