#pragma once
// One function for the paper's classification experiments (Table 1): a pretrained checkpoint, one
// of the paper's labelled datasets (CheXpert, RSNA Pneumonia, COVIDx, MURA) and a protocol (linear
// or fine-tuning) give a label-fraction x seed sweep in eval::Results. The `convirt eval
// linear|finetune` command, the example programs and the Python bindings all call it.

#include <convirt/eval/protocol.h>
#include <convirt/eval/tables.h>
#include <torch/arg.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace convirt::pipeline {

/// The labelled datasets of the paper's Table 1, each with its task and metric (paper section 6):
enum class DatasetKind {
  kChexpert,  ///< 5 labels (multi-label), mean AUC; train.csv (split train/val), valid.csv as test
  kRsna,      ///< pneumonia (binary), AUC; stage_2_train_labels.csv split train/val/test by patient
  kCovidx,    ///< COVID-19 / pneumonia / normal (multi-class), accuracy; train.txt and test.txt
  kMura,      ///< abnormal (binary), patient-level AUC; MURA-v1.1 train (split train/val) and valid
};

/// "chexpert", "rsna", "covidx", "mura"; anything else is a ValueError naming the accepted values.
DatasetKind parse_dataset_kind(const std::string& name);
std::string to_string(DatasetKind kind);
/// The task name of a dataset in the tables and results.json ("CheXpert", "RSNA", "COVIDx",
/// "MURA").
std::string task_name(DatasetKind kind);

/// The two protocols of Table 1.
enum class Protocol {
  kLinear,    ///< frozen encoder, linear head on features extracted once (Table 1a)
  kFinetune,  ///< head warm-up, then the whole network (Table 1b)
};

/// "linear" or "finetune"; anything else is a ValueError.
Protocol parse_protocol(const std::string& name);
std::string to_string(Protocol protocol);

/// How the images of the classification sets are held while a protocol runs.
enum class DataMode {
  kAuto,      ///< in memory when the decoded images fit in max_memory_bytes, else streamed
  kInMemory,  ///< decode every image once and keep the tensors
  kStream,    ///< decode batches on demand through the threaded loader (fine-tuning only: the
              ///< linear protocol keeps features, never images, so it needs no streaming)
};

/// "auto", "memory", "stream"; anything else is a ValueError.
DataMode parse_data_mode(const std::string& name);
std::string to_string(DataMode mode);

/// What pipeline::evaluate runs. Only model_path and the dataset's paths are required; every other
/// default is the paper's recipe.
///
/// Example:
///   auto opts = convirt::pipeline::EvaluateOptions("runs/mimic/model.pt")
///                   .dataset(convirt::pipeline::DatasetKind::kRsna)
///                   .data_root("/data/rsna")
///                   .protocol(convirt::pipeline::Protocol::kLinear);
///   auto results = convirt::pipeline::evaluate(opts);
struct EvaluateOptions {
  explicit EvaluateOptions(std::string model_path = "") : model_path_(std::move(model_path)) {}
  /// A convirt checkpoint (io::save_convirt, `convirt pretrain`'s model.pt).
  TORCH_ARG(std::string, model_path);
  /// Method name in the tables; "" = the checkpoint's file stem.
  TORCH_ARG(std::string, method_name) = "";
  TORCH_ARG(DatasetKind, dataset) = DatasetKind::kChexpert;
  TORCH_ARG(Protocol, protocol) = Protocol::kLinear;

  // Where the data is.
  /// CheXpert: train.csv and the test CSV (valid.csv, the expert-labelled set the paper tests on).
  TORCH_ARG(std::string, train_csv) = "";
  TORCH_ARG(std::string, test_csv) = "";
  /// CheXpert: folder the CSV paths are relative to ("" = found next to the CSV).
  TORCH_ARG(std::string, image_root) = "";
  /// RSNA: the folder holding stage_2_train_labels.csv and stage_2_train_images/; COVIDx: the
  /// folder holding train.txt, test.txt, train/ and test/; MURA: MURA-v1.1 or the folder above it.
  TORCH_ARG(std::string, data_root) = "";
  /// CheXpert label columns (default: the paper's five) and the uncertain-label policy
  /// ("zeros", "ones", "ignore").
  TORCH_ARG(std::vector<std::string>, labels) = std::vector<std::string>{};
  TORCH_ARG(std::string, uncertain) = "zeros";
  /// MURA: the level the AUC is computed at, "patient" (the paper), "study" or "image".
  TORCH_ARG(std::string, mura_level) = "patient";
  /// Skip and count (instead of refusing) table rows that are ragged or hold invalid UTF-8; they
  /// are listed with the dataset's other skipped samples (data::ChexpertOptions::skip_bad_rows).
  TORCH_ARG(bool, skip_bad_rows) = false;

  // Splits. Validation (model selection) is always carved out of the training data, stratified by
  // label and, where patients are known, with no patient on both sides.
  TORCH_ARG(double, val_fraction) = 0.15;
  /// RSNA only (its public labels are the training set): the share held out as the test set.
  /// Paper: 3000 of 29684 images.
  TORCH_ARG(double, test_fraction) = 0.1;
  /// Seed of the splits (the label-fraction subsets and the classifiers use `seeds`).
  TORCH_ARG(uint64_t, split_seed) = 0;

  // The sweep.
  /// Label fractions; empty = the paper's (1%, 10%, 100%; COVIDx 10%, 100%).
  TORCH_ARG(std::vector<double>, fractions) = std::vector<double>{};
  /// Runs per fraction, with seeds first_seed, first_seed + 1, ... (paper: 5).
  TORCH_ARG(int64_t, seeds) = 5;
  TORCH_ARG(uint64_t, first_seed) = 0;

  // The classifier recipe (eval::ClassifierOptions; 0 = the paper's value).
  /// Adam learning rate; 0 = the paper's (1e-4, COVIDx 1e-3).
  TORCH_ARG(double, learning_rate) = 0;
  TORCH_ARG(int64_t, batch_size) = 64;
  TORCH_ARG(int64_t, max_epochs) = 100;
  /// Step budget of each run, warm-up included (0 = none: early stopping ends it).
  TORCH_ARG(int64_t, max_steps) = 0;
  /// Fine-tuning: head-only warm-up steps at warmup_learning_rate before all layers train.
  TORCH_ARG(int64_t, warmup_steps) = 200;
  TORCH_ARG(double, warmup_learning_rate) = 1e-3;

  // Images and compute.
  /// Model input side in pixels; 0 = the checkpoint's configured image size.
  TORCH_ARG(int64_t, image_size) = 0;
  TORCH_ARG(DataMode, data_mode) = DataMode::kAuto;
  /// kAuto streams when train + val + test images would take more than this many bytes.
  TORCH_ARG(int64_t, max_memory_bytes) = int64_t{4} << 30;
  /// Intra-op threads (0 = all cores) and image-decoding threads.
  TORCH_ARG(int64_t, threads) = 0;
  TORCH_ARG(int64_t, workers) = 2;
  /// Print one line per run to stderr.
  TORCH_ARG(bool, verbose) = false;
};

/// One finished run of the sweep, as reported to the progress callback.
struct EvaluateProgress {
  std::string method;
  std::string task;
  std::string protocol;
  double fraction = 1.0;
  uint64_t seed = 0;
  int64_t run = 0;         ///< 1-based index of this run
  int64_t total_runs = 0;  ///< fractions x seeds
  double metric = 0.0;     ///< the run's test metric, in [0, 1]
  int64_t train_examples = 0;
  bool streamed = false;  ///< whether the images were streamed (DataMode::kStream)
  /// Images of the train, val and test splits skipped as unreadable (truncated, not an image,
  /// missing since indexing), counted the same way in every data mode; more than 5% of a split is
  /// an error.
  int64_t bad_images = 0;
  double seconds = 0.0;  ///< wall time of the run
};

using EvaluateCallback = std::function<void(const EvaluateProgress&)>;

/// Loads the model and the dataset, runs the protocol for every label fraction and seed and returns
/// the table cells (percent, mean and sample standard deviation over seeds) under
/// results.classification(to_string(protocol), method, task_name(dataset), fraction_key(f)).
/// `on_run` (optional) is called after each run. Errors (missing paths, a dataset with no readable
/// image, bad options) are ValueErrors naming the option.
///
/// Example:
///   auto results = convirt::pipeline::evaluate(
///       convirt::pipeline::EvaluateOptions("model.pt").train_csv("train.csv").test_csv("valid.csv"),
///       [](const convirt::pipeline::EvaluateProgress& p) { std::cerr << p.metric << "\n"; });
///   std::cout << convirt::eval::format_classification_table(results, "linear");
eval::Results evaluate(const EvaluateOptions& options, const EvaluateCallback& on_run = nullptr);

/// The method name used when none is given: the run folder of a `model.pt` / `best_model.pt`,
/// else the file stem ("runs/convirt/model.pt" -> "convirt", "ckpt/step100.pt" -> "step100").
std::string method_name_for(const std::string& model_path);

}  // namespace convirt::pipeline
