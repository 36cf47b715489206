#pragma once
// CheXpert / CheXpert-v1.0-small: train.csv / valid.csv with Path, Sex, Age, Frontal/Lateral, AP/PA
// and 14 observation columns holding 1.0, 0.0, -1.0 (uncertain) or blank (not mentioned).

#include <convirt/data/datasets/labeled.h>
#include <torch/arg.h>

#include <string>
#include <vector>

namespace convirt::data {

/// The five CheXpert labels the paper evaluates (section 6).
std::vector<std::string> chexpert_paper_labels();
/// The 14 CheXpert observation columns, in the official order.
std::vector<std::string> chexpert_all_labels();

/// Options of ChexpertDataset.
/// Example:
///   auto ds = convirt::data::ChexpertDataset("/data/CheXpert-v1.0-small/train.csv",
///       convirt::data::ChexpertOptions().uncertain(convirt::data::UncertainPolicy::kIgnore));
struct ChexpertOptions {
  /// Label columns, in output order (default: the paper's five).
  TORCH_ARG(std::vector<std::string>, labels) = chexpert_paper_labels();
  TORCH_ARG(UncertainPolicy, uncertain) = UncertainPolicy::kZeros;
  /// Whether a blank (unmentioned) label counts as a known negative (true, the common reading) or
  /// is masked out.
  TORCH_ARG(bool, blank_is_negative) = true;
  TORCH_ARG(bool, frontal_only) = false;
  /// Folder the CSV paths are relative to; "" means the CSV's folder or its parent, whichever has
  /// the files (the CSVs name "CheXpert-v1.0-small/train/...").
  TORCH_ARG(std::string, image_root) = "";
  TORCH_ARG(ImageTransform, transform) = {};
  TORCH_ARG(int64_t, channels) = 3;
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  /// A row of the table that is ragged or holds invalid UTF-8 is an error naming the file,
  /// the line and the column (false), or is skipped, listed in skipped() and counted against
  /// max_bad_fraction (true: for tables known to be dirty).
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// CheXpert reader. Study = "patientXXXXX/studyN", patient = "patientXXXXX" (from the path). Rows
/// naming missing files or holding unparseable labels are skipped and listed in skipped().
class ChexpertDataset : public LabeledDataset {
 public:
  explicit ChexpertDataset(const std::string& csv_path, ChexpertOptions options = {});
  const ChexpertOptions& options() const { return options_; }

 private:
  ChexpertOptions options_;
};

}  // namespace convirt::data
