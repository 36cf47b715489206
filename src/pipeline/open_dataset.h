#pragma once
// Internal to the pipeline area: opening one of the paper's labelled datasets from the dataset
// options that pipeline::evaluate and pipeline::zero_shot share, so the two read the same files the
// same way. The options structs keep their fields flat (they are the Python and command-line option
// names); each caller copies them into a DatasetFiles.

#include <convirt/data/datasets/labeled.h>
#include <convirt/data/sample.h>
#include <convirt/eval/protocol.h>
#include <convirt/pipeline/evaluate.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace convirt::pipeline::detail {

/// The dataset fields of EvaluateOptions and ZeroShotOptions (they mean what they mean there).
struct DatasetFiles {
  DatasetKind dataset = DatasetKind::kChexpert;
  std::string train_csv, test_csv, image_root, data_root;
  std::vector<std::string> labels;
  std::string uncertain = "zeros";
  std::string mura_level = "patient";
  bool skip_bad_rows = false;
};

/// The dataset fields that EvaluateOptions and ZeroShotOptions share (same names, same meaning),
/// copied from either; the caller adds what only it has (train_csv, skip_bad_rows).
template <typename Options>
DatasetFiles dataset_files(const Options& o) {
  DatasetFiles files;
  files.dataset = o.dataset();
  files.test_csv = o.test_csv();
  files.image_root = o.image_root();
  files.data_root = o.data_root();
  files.labels = o.labels();
  files.uncertain = o.uncertain();
  files.mura_level = o.mura_level();
  return files;
}

/// A dataset's opened tables, before any row is split off or any image read.
struct OpenedDataset {
  /// Null unless asked for. RSNA has one labelled set: `train` and `test` are then the same object
  /// (the caller carves the test rows out of it).
  std::shared_ptr<data::LabeledDataset> train;
  std::shared_ptr<data::LabeledDataset> test;
  eval::ClassificationTask task = eval::ClassificationTask::kMultiLabel;
  /// CheXpert's uncertain-label mask is meaningful; the other datasets' masks are all ones.
  bool keep_mask = false;
  /// MURA at patient or study level: the record field that groups images ("" = no groups).
  std::string group_level;
};

/// Checks the paths the dataset needs (ValueError naming the option: "test_csv must be set for
/// dataset chexpert") and opens its test table, and its training table when `with_train`.
OpenedDataset open_dataset(const DatasetFiles& files, data::ImageTransform transform,
                           int64_t channels, bool with_train);

}  // namespace convirt::pipeline::detail
