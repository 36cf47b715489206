#pragma once
// What the linear and fine-tuning protocols share (paper section 6): the labelled data they read,
// the classifier recipe's options, the result they report, the label-fraction subsampling and the
// (fractions x seeds) sweep that gives the tables' mean and standard deviation.

#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace convirt::eval {

/// The two kinds of downstream task in the paper's tables.
enum class ClassificationTask {
  kMultiLabel,  ///< one sigmoid per label, BCE (RSNA: 1 label, CheXpert: 5, MURA: 1); metric AUC
  kMultiClass,  ///< one softmax over classes, cross-entropy (COVIDx: 3 classes); metric accuracy
};

/// "multilabel" / "multiclass" (also "binary" = multilabel); anything else is a ValueError.
ClassificationTask parse_classification_task(const std::string& name);
std::string to_string(ClassificationTask task);

/// The metric a protocol selects checkpoints on and reports.
enum class ClassifierMetric {
  kAuto,      ///< multi-class: accuracy; multi-label: group AUC when `groups` is set, else mean AUC
  kMeanAUC,   ///< mean ROC-AUC over labels (labels with one class only are left out)
  kAccuracy,  ///< multi-class accuracy
  kGroupAUC,  ///< AUC over groups of mean image probabilities (MURA's patient level)
};

/// "auto", "mean_auc", "accuracy", "group_auc"; anything else is a ValueError.
ClassifierMetric parse_classifier_metric(const std::string& name);
std::string to_string(ClassifierMetric metric);

/// A labelled split. `inputs` is either precomputed features [N, D] (linear protocol) or images
/// [N, C, H, W] (fine-tuning, or feature extraction). `targets`: multi-label 0/1 floats [N, L]
/// (a [N] vector is read as one label); multi-class int64 class ids [N].
/// `mask` (optional, multi-label only) [N, L], nonzero = the label is known: masked entries add no
/// loss and are left out of the AUC (CheXpert's "ignore" policy for uncertain labels).
/// `groups` (optional) [N] integer ids of the patient/study each example belongs to (MURA).
///
/// Example:
///   convirt::eval::LabeledSet train{features, labels};
struct LabeledSet {
  torch::Tensor inputs;
  torch::Tensor targets;
  torch::Tensor mask = {};
  torch::Tensor groups = {};

  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
  /// The rows `index` (int64 [K]) of every defined field.
  LabeledSet select(const torch::Tensor& index) const;
};

/// Checks a split for a task: shapes agree, targets hold valid values. `name` appears in messages
/// ("val.targets must ..."). Called by every protocol on its inputs.
void check_labeled_set(const LabeledSet& set, ClassificationTask task, const std::string& name);

/// Number of outputs a head needs: labels (multi-label) or classes (multi-class; max id + 1 over
/// the given splits, at least 2).
int64_t infer_num_outputs(ClassificationTask task, const std::vector<const LabeledSet*>& sets);

/// The paper's classifier recipe (App. B-D) with the budgets that the demo needs to be fast.
///
/// Example:
///   auto opts = convirt::eval::ClassifierOptions(convirt::eval::ClassificationTask::kMultiLabel)
///                   .max_epochs(50).seed(3);
struct ClassifierOptions {
  explicit ClassifierOptions(ClassificationTask task = ClassificationTask::kMultiLabel)
      : task_(task) {}
  TORCH_ARG(ClassificationTask, task);
  /// Outputs of the head; 0 = inferred from the targets (infer_num_outputs).
  TORCH_ARG(int64_t, num_outputs) = 0;
  TORCH_ARG(ClassifierMetric, metric) = ClassifierMetric::kAuto;
  /// Adam learning rate. Paper: 1e-4 (1e-3 for COVIDx).
  TORCH_ARG(double, learning_rate) = 1e-4;
  /// Adam weight decay (L2 added to the gradient, as torch.optim.Adam). Paper: 1e-6.
  TORCH_ARG(double, weight_decay) = 1e-6;
  /// Dropout before the last (linear) layer. Paper: 0.2.
  TORCH_ARG(double, dropout) = 0.2;
  TORCH_ARG(int64_t, batch_size) = 64;
  /// Batch size for validation/test forward passes (no gradient, so it can be larger).
  TORCH_ARG(int64_t, eval_batch_size) = 256;
  /// Learning rate x lr_decay after this many epochs without validation improvement. Paper: 3, 0.5.
  TORCH_ARG(int64_t, lr_patience) = 3;
  TORCH_ARG(double, lr_decay) = 0.5;
  /// Stop after this many epochs without validation improvement. Paper: 10.
  TORCH_ARG(int64_t, early_stop_patience) = 10;
  /// Budgets (the paper has none; the demo needs them). 0 = unlimited steps.
  TORCH_ARG(int64_t, max_epochs) = 100;
  TORCH_ARG(int64_t, max_steps) = 0;
  /// An improvement must exceed this (metric units) to reset the patience counters.
  TORCH_ARG(double, min_delta) = 0.0;
  /// Seeds the head's initialisation, the shuffling and the dropout masks (a local generator: the
  /// global torch RNG is left alone).
  TORCH_ARG(uint64_t, seed) = 0;
  /// LibTorch intra-op threads for the duration of the call (restored afterwards); 0 = leave the
  /// current setting. The linear protocol's batches are tiny ([64, D]): on a busy 2-core machine 1
  /// thread ran it 13x faster than 2 (OpenMP regions waiting on a descheduled thread). Changes a
  /// process-wide setting, so do not combine with concurrent LibTorch work on other threads.
  TORCH_ARG(int, num_threads) = 0;
  /// Print one line per epoch to stderr.
  TORCH_ARG(bool, verbose) = false;
};

/// One epoch of a protocol's history.
struct EpochLog {
  int64_t epoch = 0;
  int64_t steps = 0;  ///< optimiser steps so far
  double train_loss = 0.0;
  double val_loss = 0.0;
  double val_metric = 0.0;
  double learning_rate = 0.0;
};

/// What a protocol run reports. Metrics are fractions in [0, 1] (tables print percent).
struct ClassifierResult {
  /// The reported number: the selected metric of the best-validation checkpoint on the test split.
  double test_metric = 0.0;
  ClassifierMetric metric = ClassifierMetric::kAuto;  ///< resolved metric (never kAuto)
  double best_val_metric = 0.0;
  int64_t best_epoch = 0;
  double test_loss = 0.0;
  /// Multi-label: AUC of each label on test (NaN where undefined). Empty for multi-class.
  std::vector<double> test_per_label_auc;
  /// Multi-label: mean AUC on test; multi-class: NaN.
  double test_mean_auc = 0.0;
  /// Multi-class: accuracy on test; multi-label: NaN.
  double test_accuracy = 0.0;
  /// Group AUC on test when test.groups is set, else NaN.
  double test_group_auc = 0.0;
  /// Probabilities of the best checkpoint on test: sigmoid [N, L] or softmax [N, C].
  torch::Tensor test_probabilities;
  int64_t epochs = 0;
  int64_t steps = 0;
  std::vector<EpochLog> history;
};

/// A random `fraction` (0, 1] of `set`'s rows without replacement, at least `min_examples` (capped
/// at the set's size); fraction 1 returns the set unchanged. Deterministic for a seed.
///
/// Example:
///   auto one_percent = convirt::eval::subsample(train, 0.01, /*seed=*/0);
LabeledSet subsample(const LabeledSet& set, double fraction, uint64_t seed,
                     int64_t min_examples = 1);

/// The rows subsample() keeps out of `n` (int64 [K], ascending), for sets that are not LabeledSets
/// (a StreamedSet): the same (n, fraction, seed, min_examples) selects the same rows.
///
/// Example:
///   auto rows = convirt::eval::subsample_indices(train.size(), 0.1, /*seed=*/2);
torch::Tensor subsample_indices(int64_t n, double fraction, uint64_t seed,
                                int64_t min_examples = 1);

/// One cell of a label-fraction sweep: the metric of each seed, their mean and sample standard
/// deviation (n - 1 in the denominator; 0 for a single seed).
struct SweepCell {
  double fraction = 1.0;
  std::vector<double> values;
  double mean = 0.0;
  double stddev = 0.0;
};

/// Mean and sample standard deviation of `values` (stddev 0 for fewer than 2 values).
SweepCell summarize(const std::vector<double>& values, double fraction = 1.0);

/// Runs `run(subsample(train, fraction, seed), seed)` for every fraction and seed and aggregates
/// per fraction. `run` returns the number to report (e.g. ClassifierResult::test_metric). The paper
/// uses fractions {0.01, 0.1, 1} and 5 seeds.
///
/// Example:
///   auto cells = convirt::eval::label_fraction_sweep(train, {0.01, 0.1, 1.0}, {0, 1, 2, 3, 4},
///       [&](const convirt::eval::LabeledSet& sub, uint64_t seed) {
///         return convirt::eval::train_linear_probe(sub, val, test, opts.seed(seed)).test_metric;
///       });
std::vector<SweepCell> label_fraction_sweep(
    const LabeledSet& train, const std::vector<double>& fractions,
    const std::vector<uint64_t>& seeds,
    const std::function<double(const LabeledSet& train_subset, uint64_t seed)>& run);

}  // namespace convirt::eval
