#pragma once
// MIMIC-CXR-JPG 2.0.0 with the MIMIC-CXR reports (paper section 8): images at
// files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg, reports at files/pXX/pSUBJECT/sSTUDY.txt, and the
// mimic-cxr-2.0.0-{metadata,split}.csv tables.

#include <convirt/data/datasets/paired.h>
#include <torch/arg.h>

#include <string>
#include <vector>

namespace convirt::data {

/// Options of MimicCxrDataset.
/// Example:
///   auto ds = convirt::data::MimicCxrDataset("/data/mimic-cxr-jpg",
///       convirt::data::MimicCxrOptions().split("train").frontal_only(true).transform(aug));
struct MimicCxrOptions {
  /// Rows of mimic-cxr-2.0.0-split.csv to keep: "train", "validate", "test"; "" keeps every study.
  TORCH_ARG(std::string, split) = "train";
  /// Keep only frontal views (ViewPosition in `frontal_views`); studies left without a view are
  /// skipped.
  TORCH_ARG(bool, frontal_only) = false;
  TORCH_ARG(std::vector<std::string>, frontal_views) = std::vector<std::string>{"PA", "AP"};
  /// Folder holding files/pXX/pSUBJECT/sSTUDY.txt; "" means the dataset root (reports unpacked
  /// beside the images).
  TORCH_ARG(std::string, reports_dir) = "";
  /// Image file extension tried first; ".png" and ".jpg" are tried after it.
  TORCH_ARG(std::string, image_extension) = ".jpg";
  TORCH_ARG(ReportPolicy, report_policy) = ReportPolicy{};
  TORCH_ARG(ImageTransform, transform) = {};
  /// 0 as decoded, 1 gray, 3 gray replicated after the transform.
  TORCH_ARG(int64_t, channels) = 3;
  /// Construction fails when more than this fraction of studies had to be skipped; < 0 disables.
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  /// A row of the table that is ragged or holds invalid UTF-8 is an error naming the file,
  /// the line and the column (false), or is skipped, listed in skipped() and counted against
  /// max_bad_fraction (true: for tables known to be dirty).
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// Paired pretraining dataset over a MIMIC-CXR-JPG folder. One record per study: its (frontal)
/// views and the sentences of FINDINGS + IMPRESSION. Studies with a missing report, invalid UTF-8,
/// empty text or fewer than 3 tokens, or without an existing image, are skipped and listed in
/// skipped().
///
/// Example:
///   convirt::data::MimicCxrDataset ds(root, convirt::data::MimicCxrOptions().split("train"));
///   auto ex = ds.get(0, 123);  // one view, one sentence
class MimicCxrDataset : public PairedDataset {
 public:
  explicit MimicCxrDataset(const std::string& root, MimicCxrOptions options = {});
  const MimicCxrOptions& options() const { return options_; }

 private:
  MimicCxrOptions options_;
};

/// The MIMIC-CXR relative path stem of a study: "files/p10/p10000032/s50414267".
std::string mimic_study_dir(const std::string& subject_id, const std::string& study_id);

}  // namespace convirt::data
