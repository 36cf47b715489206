#pragma once
// MURA v1.1: <split>_image_paths.csv (one relative PNG path per line, no header) and
// <split>_labeled_studies.csv ("study path/,0|1"), paths relative to the folder above MURA-v1.1.

#include <convirt/data/datasets/labeled.h>
#include <torch/arg.h>

#include <string>

namespace convirt::data {

/// Options of MuraDataset.
/// Example: convirt::data::MuraDataset ds("/data/MURA-v1.1", "valid");
struct MuraOptions {
  TORCH_ARG(ImageTransform, transform) = {};
  TORCH_ARG(int64_t, channels) = 3;
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  /// A row of the table that is ragged or holds invalid UTF-8 is an error naming the file,
  /// the line and the column (false), or is skipped, listed in skipped() and counted against
  /// max_bad_fraction (true: for tables known to be dirty).
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// MURA as a binary task (label "Abnormal"). Each image takes its study's label; study = the study
/// folder ("XR_SHOULDER/patient00001/study1_positive"), patient = "XR_SHOULDER/patient00001" (the
/// paper scores at patient level by averaging image probabilities per group). `root` is the
/// MURA-v1.1 folder or the folder holding it.
class MuraDataset : public LabeledDataset {
 public:
  MuraDataset(const std::string& root, const std::string& split = "train",
              MuraOptions options = {});

 private:
  MuraOptions options_;
};

}  // namespace convirt::data
