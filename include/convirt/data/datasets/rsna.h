#pragma once
// RSNA Pneumonia Detection: stage_2_train_labels.csv (patientId, x, y, width, height, Target; one
// row per box, so a patient can appear several times) and DICOM images
// <images_dir>/<patientId>.dcm.

#include <convirt/data/datasets/labeled.h>
#include <torch/arg.h>

#include <string>

namespace convirt::data {

/// Options of RsnaDataset.
/// Example: convirt::data::RsnaDataset ds("/data/rsna",
/// convirt::data::RsnaOptions().transform(eval_tf));
struct RsnaOptions {
  TORCH_ARG(std::string, labels_csv) = "stage_2_train_labels.csv";
  TORCH_ARG(std::string, images_dir) = "stage_2_train_images";
  TORCH_ARG(std::string, extension) = ".dcm";
  TORCH_ARG(ImageTransform, transform) = {};
  TORCH_ARG(int64_t, channels) = 3;
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  /// A row of the table that is ragged or holds invalid UTF-8 is an error naming the file,
  /// the line and the column (false), or is skipped, listed in skipped() and counted against
  /// max_bad_fraction (true: for tables known to be dirty).
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// RSNA Pneumonia as a binary task: one sample per patientId (label "Pneumonia" = 1 when any of its
/// rows has Target 1), in order of first appearance.
class RsnaDataset : public LabeledDataset {
 public:
  explicit RsnaDataset(const std::string& root, RsnaOptions options = {});

 private:
  RsnaOptions options_;
};

}  // namespace convirt::data
