#pragma once
// The one pretraining pipeline: `convirt pretrain`, Python's convirt.train.pretrain and the main
// job
// (`convirt reproduce`) each translate their options into a PretrainJob and call pretrain(), so the
// three cannot disagree on what a run reads, builds or writes. Every default lives in PretrainJob
// or in the structs it nests (train::PretrainOptions, train::InitialWeightsOptions); the JSON form
// (to_json / from_json) is how Python reads those defaults and how a job is passed across.
//
// A run, in order: lock the run folder (a second run on it fails at once); check the options that
// would fail late (device, precision, init files, vocabulary); read the pairs; build or read the
// vocabulary; build the model (preset or config, the paper's initial weights); print a summary
// (pairs used and skipped by reason, vocabulary, parameters, device, precision, batch) and write
// the skipped samples to out_dir/skipped.tsv; train (resuming from out_dir/last.ckpt); write
// out_dir/model.pt with the vocabulary embedded.

#include <convirt/models/convirt.h>
#include <convirt/text/wordpiece.h>
#include <convirt/train/initial_weights.h>
#include <convirt/train/precision.h>
#include <convirt/train/pretrainer.h>

#include <functional>
#include <string>

namespace convirt::pipeline {

/// Everything a pretraining run is made of.
///
/// Example:
///   auto job = convirt::pipeline::PretrainJob("runs/demo").data("mimic-cxr-jpg");
///   job.trainer().max_steps(2000).eval_every(200);
///   auto run = convirt::pipeline::pretrain(job);
struct PretrainJob {
  explicit PretrainJob(std::string out_dir = "runs/pretrain") : trainer_(std::move(out_dir)) {}

  /// The pairs: a MIMIC-CXR-JPG-layout root (splits "train" and "validate") ...
  TORCH_ARG(std::string, data) = "";
  /// ... or two CSV files of image path(s) and report text (data::CsvPairsDataset).
  TORCH_ARG(std::string, train_csv) = "";
  TORCH_ARG(std::string, val_csv) = "";
  TORCH_ARG(std::string, image_column) = "image";
  TORCH_ARG(std::string, text_column) = "text";
  /// Skip and count (instead of refusing) table rows that are ragged or hold invalid UTF-8; they
  /// are skipped pairs like the others (OUT/skipped.tsv, max_bad_fraction).
  TORCH_ARG(bool, skip_bad_rows) = false;
  /// The paper's augmentation on the training images; off, they get the evaluation preprocessing.
  TORCH_ARG(bool, augment) = true;
  /// The model: a preset name ("small", "paper"), a ModelConfig JSON file (*.json) or JSON text.
  TORCH_ARG(std::string, model) = "small";
  /// Model input side in pixels; 0 = the model config's (small 64, paper 224). The saved model
  /// records the size it was trained at, and evaluation reads it back.
  TORCH_ARG(int64_t, image_size) = 0;
  /// An existing vocab.txt. "" builds one of at most vocab_size tokens from the training reports
  /// into out_dir/vocab.txt (a later run on the folder reuses it); with init.text_init the BERT
  /// folder's vocabulary is used.
  TORCH_ARG(std::string, vocab) = "";
  TORCH_ARG(int64_t, vocab_size) = 2048;
  /// The paper's initial weights (ImageNet ResNet, ClinicalBERT).
  TORCH_ARG(train::InitialWeightsOptions, init) = {};
  /// "auto" (CUDA when present) | "cpu" | "cuda" | "cuda:N"; a distributed rank takes its local
  /// rank's GPU.
  TORCH_ARG(std::string, device) = train::kDefaultDevice;
  /// Intra-op threads; 0 = CONVIRT_NUM_THREADS or every core.
  TORCH_ARG(int64_t, threads) = 0;
  /// The trainer's options; its out_dir is the run folder, its max_bad_fraction also bounds the
  /// pairs skipped while the data is indexed. device and distributed are set by pretrain().
  TORCH_ARG(train::PretrainOptions, trainer);

 public:
  const std::string& out_dir() const { return trainer_.out_dir(); }
  /// Every option as one flat JSON object (the names Python and config files use).
  std::string to_json() const;
  /// Reads to_json()'s form; absent keys keep their defaults, an unknown key or a value of the
  /// wrong type is a ValueError naming it.
  static PretrainJob from_json(const std::string& text);
};

/// What pretrain() returns.
struct PretrainRun {
  train::PretrainResult result;
  /// The trained model (best validation weights), its tokenizer and its config.
  models::ConVIRTModel model{nullptr};
  std::shared_ptr<const text::WordPieceTokenizer> tokenizer;
  /// out_dir/model.pt; "" on ranks other than 0 and after an interrupted run.
  std::string model_path;
  /// The vocabulary file the run used (also embedded in model.pt).
  std::string vocab_path;
  bool interrupted = false;
  /// Rank 0 of the job (or a single process): the rank that logs and writes files.
  bool is_main = true;
};

/// How a front end follows and stops a run.
struct PretrainHooks {
  /// Sees every logged step and evaluation; returning false stops the run after a checkpoint.
  std::function<bool(const train::StepMetrics&)> on_step;
  /// Called with the trainer before it runs and with nullptr once it has returned, so that a
  /// signal handler can call request_stop() on it.
  std::function<void(train::Pretrainer*)> on_trainer;
  /// Asked once the trainer has returned: true means the run was interrupted (a signal, Ctrl-C,
  /// an exception in a callback), so no model.pt is written and PretrainRun::interrupted is set.
  std::function<bool()> interrupted;
};

/// Runs the job (see the top of this file). On every rank of a distributed job (the environment
/// set by `convirt launch`, torchrun or Slurm) call it with the same job.
PretrainRun pretrain(const PretrainJob& job, const PretrainHooks& hooks = {});

/// The model config a job trains: its preset or config with image_size applied, its vocabulary
/// size fitted to `vocab_size` (a JSON config given with an existing vocabulary must already
/// match).
models::ModelConfig job_model_config(const PretrainJob& job, int64_t vocab_size);

}  // namespace convirt::pipeline
