#pragma once
// ConVIRT pretraining (paper appendix A): Adam, validation loss every K steps on held-out pairs,
// learning rate halved after `lr_patience` evaluations without improvement, stop after a budget of
// evaluations or steps, keep the checkpoint with the lowest validation loss.
//
// Everything a resumed run needs lives in one TrainState checkpoint (model, objective head,
// optimiser, scheduler, RNG state, loader position, counters), written atomically; a run killed at
// any moment and resumed from its last checkpoint ends with the same weights as one that was never
// interrupted.
//
// Data parallel over a convirt::dist job (PretrainOptions::distributed): every rank reads its own
// shard of each global batch of batch_size * world_size pairs, the loss takes its negatives from
// the whole global batch, gradients are exchanged so every rank applies the same update, and only
// rank 0 logs and writes files. k steps on W ranks equal k steps of one process with a W times
// larger batch_size.

#include <convirt/data/loader.h>
#include <convirt/dist/process_group.h>
#include <convirt/loss/infonce.h>
#include <convirt/models/convirt.h>
#include <convirt/text/wordpiece.h>
#include <convirt/train/precision.h>

#include <torch/types.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace convirt::train {

class PretrainObjectiveImpl;  // convirt/train/objective.h
struct ObjectiveBatch;

/// Whether BatchNorm layers normalise with the whole global batch in a distributed job
/// (convirt/dist/sync_batch_norm.h).
enum class SyncBatchNormMode {
  kAuto,  ///< on when more than one rank trains a model with BatchNorm layers (a layer that cannot
          ///< be synchronised then leaves all of them per rank, with a warning)
  kOn,    ///< as auto, but a layer that cannot be synchronised is an error
  kOff,   ///< each rank normalises with its own shard (the ranks then only approximate one process)
};
SyncBatchNormMode parse_sync_batch_norm(const std::string& name);  ///< "auto", "on" or "off"
std::string to_string(SyncBatchNormMode mode);

/// The optimisers PretrainOptions::optimizer names: "adam" (the paper's), "adamw" (decoupled weight
/// decay), "sgd" (momentum 0.9).
const std::vector<std::string>& optimizer_names();
/// A ValueError unless `name` is one of optimizer_names().
void check_optimizer(const std::string& name);

/// Example:
///   auto opts = convirt::train::PretrainOptions("runs/demo").eval_every(200).max_steps(2000);
struct PretrainOptions {
  explicit PretrainOptions(std::string out_dir) : out_dir_(std::move(out_dir)) {}
  /// Folder for checkpoints (last.ckpt, best.ckpt), metrics.jsonl and the final model.
  TORCH_ARG(std::string, out_dir);
  /// The pretraining objective by its registered name (train/objective.h): "convirt"
  /// (bidirectional InfoNCE, the paper's method), "binary" or "contrastive-binary" (the
  /// Contrastive-Binary-Loss baseline), or a name given to register_objective().
  TORCH_ARG(std::string, objective) = "convirt";
  /// "adam" (the paper's), "adamw" (decoupled weight decay) or "sgd" (momentum 0.9), each with
  /// weight_decay on the model's parameters and none on those the objective exempts (a learned
  /// temperature). Its state is checkpointed; a resume must use the same one.
  TORCH_ARG(std::string, optimizer) = "adam";
  TORCH_ARG(double, learning_rate) = 1e-4;
  TORCH_ARG(double, weight_decay) = 1e-6;
  /// Pairs per step on each rank: a step's global batch (the loss's negatives) is
  /// batch_size * distributed.world_size() pairs.
  TORCH_ARG(int64_t, batch_size) = 32;
  /// tau and lambda of the loss: InfoNCEOptions' defaults (the paper's 0.1 and 0.75).
  TORCH_ARG(double, temperature) = InfoNCEOptions().temperature();
  TORCH_ARG(double, image_to_text_weight) = InfoNCEOptions().image_to_text_weight();
  /// Learn tau, starting at `temperature`, as CLIP learns its logit scale: in log space, clamped to
  /// [0.01, 100] (loss/infonce.h), without weight decay, checkpointed with the run. The paper keeps
  /// tau fixed (off). ConVIRT objective only.
  TORCH_ARG(bool, learn_temperature) = false;
  /// Validation (and checkpoint) period in steps (paper: 5000).
  TORCH_ARG(int64_t, eval_every) = 5000;
  /// Evaluations without improvement before the learning rate is multiplied by lr_decay (paper: 5).
  TORCH_ARG(int64_t, lr_patience) = 5;
  TORCH_ARG(double, lr_decay) = 0.5;
  /// Stop after this many evaluations (paper: 200); 0 = no limit.
  TORCH_ARG(int64_t, max_evals) = 200;
  /// Stop after this many steps; 0 = no limit.
  TORCH_ARG(int64_t, max_steps) = 0;
  /// Stop (after checkpointing) once this much wall time has passed in this process; 0 = no limit.
  /// A time budget is the one stopping rule that is not reproducible step for step.
  TORCH_ARG(double, max_seconds) = 0;
  /// Clip the global gradient norm to this value; 0 = off.
  TORCH_ARG(double, grad_clip_norm) = 0;
  /// Forward-pass precision (precision.h): auto = bf16 autocast on CUDA, fp32 on CPU; bf16 also
  /// runs on CPU; fp16 (CUDA only) adds dynamic loss scaling. The loss is computed in fp32.
  TORCH_ARG(Precision, precision) = Precision::kAuto;
  /// Consecutive non-finite losses after which the run stops with an error (each one is skipped).
  TORCH_ARG(int64_t, max_bad_steps) = 20;
  /// Tokens per sentence; <= 0 takes the model config's max_length (paper preset 128).
  TORCH_ARG(int64_t, max_length) = 0;
  /// Largest fraction of the training pairs the loader may skip as unreadable (each skip is
  /// recorded); more stops the run with the list. Negative: no limit.
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  TORCH_ARG(int64_t, log_every) = 20;
  /// Print the progress line to stderr.
  TORCH_ARG(bool, verbose) = true;
  TORCH_ARG(uint64_t, seed) = 0;
  TORCH_ARG(int64_t, workers) = 2;
  /// Continue from out_dir/last.ckpt when it exists. The resume must have the options recorded in
  /// out_dir/run_options.json (see train/run_folder.h); a difference is a ValueError listing each.
  TORCH_ARG(bool, resume) = true;
  /// Let a resume change the budgets (max_steps, max_evals, max_seconds, log_every, verbose,
  /// workers, max_bad_fraction); every other recorded option must still match.
  TORCH_ARG(bool, allow_option_change) = false;
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  /// BatchNorm statistics over the global batch on several ranks, so that W ranks with batch_size
  /// b train exactly as one process with W * b (convirt::dist::convert_sync_batch_norm, applied
  /// before the weights are broadcast; one all-gather of 2C+1 numbers per layer in forward and of
  /// 2C in backward). No effect in a single process.
  TORCH_ARG(SyncBatchNormMode, sync_batch_norm) = SyncBatchNormMode::kAuto;
  /// The job this process belongs to; the default is a single process. Every rank must be given
  /// the same options (out_dir on a file system they all see) and the same datasets.
  TORCH_ARG(dist::DistributedContext, distributed) = dist::DistributedContext();
};

/// The record a model keeps of the tokenizer it is trained with
/// (models::ConVIRTModelImpl::set_vocabulary); the Pretrainer records it on its model.
models::VocabularyRecord vocabulary_record(const text::WordPieceTokenizer& tokenizer);

/// Sentences as the text encoder reads them: input_ids int64 [n, L] and attention_mask [n, L]
/// (1 on real tokens, 0 on padding), L <= the max_length asked for.
struct TokenBatch {
  torch::Tensor input_ids;
  torch::Tensor attention_mask;
};

/// The Pretrainer's text side: a batch of sentences to a TokenBatch of at most `max_length` tokens
/// per row. Called on the training thread, one batch at a time; must be deterministic (a resumed
/// run redoes steps).
using TokenizeFn =
    std::function<TokenBatch(const std::vector<std::string>& texts, int64_t max_length)>;

/// The WordPiece tokenizer as a TokenizeFn (rows padded to the longest sentence of the batch).
TokenizeFn wordpiece_tokenize(std::shared_ptr<const text::WordPieceTokenizer> tokenizer);

/// What a step or an evaluation reports to a callback (and to metrics.jsonl).
struct StepMetrics {
  int64_t step = 0;
  double loss = 0;
  double image_to_text = 0;  ///< directional losses (ConVIRT objective only)
  double text_to_image = 0;
  double image_to_text_accuracy = 0;
  double text_to_image_accuracy = 0;
  double learning_rate = 0;
  double temperature = 0;  ///< tau of this step (the learned value with learn_temperature)
  double images_per_second = 0;
  double eta_seconds = -1;
  bool is_eval = false;
  double val_loss = 0;  ///< set when is_eval
};

struct PretrainResult {
  int64_t steps = 0;
  int64_t evaluations = 0;
  double best_val_loss = 0;
  int64_t best_step = 0;
  int64_t skipped_steps = 0;                     ///< non-finite losses skipped
  int64_t bad_samples = 0;                       ///< samples the loader skipped (all ranks)
  std::vector<data::BadSample> skipped_samples;  ///< this rank's skipped samples, with reasons
  std::string best_checkpoint;  ///< convirt model checkpoint (io::save_convirt) of the best model
  std::string stop_reason;
};

/// Runs pretraining. The model is trained in place; at the end it holds the best-validation
/// weights. With options.distributed() of several ranks, construct and run() it on every rank:
/// rank 0's initial weights are broadcast, and run() returns on all ranks at the same step (or
/// throws on all of them, within the context's timeout when a rank dies).
///
/// Example:
///   convirt::train::Pretrainer trainer(model, tokenizer, train_set, val_set, opts);
///   auto result = trainer.run();
class Pretrainer {
 public:
  /// With any text function. `vocabulary`, when given, is recorded on the model (so saved models
  /// carry it) and, as size and hash, in run_options.json; without one the model's is left as it
  /// is.
  Pretrainer(models::ConVIRTModel model, TokenizeFn tokenize,
             std::optional<models::VocabularyRecord> vocabulary,
             std::shared_ptr<const data::Dataset> train, std::shared_ptr<const data::Dataset> val,
             PretrainOptions options);
  /// The WordPiece tokenizer as the text side (wordpiece_tokenize), its vocabulary recorded.
  Pretrainer(models::ConVIRTModel model, std::shared_ptr<const text::WordPieceTokenizer> tokenizer,
             std::shared_ptr<const data::Dataset> train, std::shared_ptr<const data::Dataset> val,
             PretrainOptions options);
  ~Pretrainer();

  /// Trains until a stopping rule fires. `callback` sees every logged step and every evaluation;
  /// returning false stops the run cleanly (checkpoint written first).
  PretrainResult run(const std::function<bool(const StepMetrics&)>& callback = {});

  /// Asks a running run() to stop after the current step (safe from a signal handler or another
  /// thread). The run writes its checkpoint and returns normally. In a distributed job a request
  /// on any rank stops every rank at the same step.
  void request_stop() { stop_requested_.store(true); }

  /// Validation loss of the current model on the held-out set (deterministic). In a distributed
  /// job it is a collective: each rank scores its shard of every global batch and all get the
  /// loss of the whole set.
  double validation_loss();

  const PretrainOptions& options() const { return options_; }
  models::ConVIRTModel model() const { return model_; }
  /// The objective this trainer minimises (built from options().objective()).
  std::shared_ptr<PretrainObjectiveImpl> objective() const;

 private:
  struct State;
  struct Run;
  // The phases of run(), each a function of its own (see the comments on their definitions).
  void start_or_resume(Run& run);
  std::string stop_reason_now(Run& run);
  std::optional<StepMetrics> step(Run& run);
  bool log_step(Run& run, StepMetrics metrics);
  bool evaluate_and_checkpoint(Run& run);
  PretrainResult finish(Run& run, const std::string& stop_reason);
  void save_state(const std::string& path);
  void write_state(const std::string& path, const torch::Tensor& rng_ranks);
  void load_state(const std::string& path);
  ObjectiveBatch objective_batch(const data::Batch& batch);

  models::ConVIRTModel model_;
  TokenizeFn tokenize_;
  std::optional<models::VocabularyRecord> vocabulary_;
  std::shared_ptr<const data::Dataset> train_;
  std::shared_ptr<const data::Dataset> val_;
  PretrainOptions options_;
  std::unique_ptr<State> state_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace convirt::train
