#pragma once
// A generic paired dataset: a CSV with image path(s) and the report, either inline or as a file
// path.

#include <convirt/data/datasets/paired.h>
#include <torch/arg.h>

#include <string>

namespace convirt::data {

/// Options of CsvPairsDataset.
/// Example:
///   auto ds = convirt::data::CsvPairsDataset("pairs.csv",
///       convirt::data::CsvPairsOptions().image_column("image").text_column("report"));
struct CsvPairsOptions {
  /// Column with one image path, or several separated by `path_separator` (the views of a study).
  TORCH_ARG(std::string, image_column) = "image";
  TORCH_ARG(std::string, path_separator) = ";";
  /// Column with the report text inline. Used when present in the header.
  TORCH_ARG(std::string, text_column) = "text";
  /// Column with the path of a report file. Used when `text_column` is not in the header.
  TORCH_ARG(std::string, report_file_column) = "report_file";
  /// Optional columns for grouping ("" or absent: the row number is the study, the study the
  /// patient).
  TORCH_ARG(std::string, study_column) = "study";
  TORCH_ARG(std::string, patient_column) = "patient";
  /// Relative paths are resolved against this folder; "" means the CSV file's folder.
  TORCH_ARG(std::string, root) = "";
  /// Whether to keep only FINDINGS + IMPRESSION (reports with headers) and the token minimum.
  TORCH_ARG(ReportPolicy, report_policy) = ReportPolicy{};
  TORCH_ARG(ImageTransform, transform) = {};
  TORCH_ARG(int64_t, channels) = 3;
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  /// A row of the table that is ragged or holds invalid UTF-8 is an error naming the file,
  /// the line and the column (false), or is skipped, listed in skipped() and counted against
  /// max_bad_fraction (true: for tables known to be dirty).
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// Paired dataset from a CSV file. Rows naming missing image or report files, empty or too short
/// reports, or invalid UTF-8 are skipped and listed in skipped().
class CsvPairsDataset : public PairedDataset {
 public:
  explicit CsvPairsDataset(const std::string& csv_path, CsvPairsOptions options = {});
  const CsvPairsOptions& options() const { return options_; }

 private:
  CsvPairsOptions options_;
};

}  // namespace convirt::data
