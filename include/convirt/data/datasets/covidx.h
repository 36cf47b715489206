#pragma once
// COVIDx (v4 layout): train.txt / test.txt with lines "patient_id filename label source", images in
// train/ and test/.

#include <convirt/data/datasets/labeled.h>
#include <torch/arg.h>

#include <string>
#include <vector>

namespace convirt::data {

/// Options of CovidxDataset.
/// Example: convirt::data::CovidxDataset ds("/data/covidx", "train.txt");
struct CovidxOptions {
  /// Class names in output order (matched case-insensitively); the paper's three by default.
  TORCH_ARG(std::vector<std::string>, classes) = std::vector<std::string>{"COVID-19", "pneumonia",
                                                                          "normal"};
  /// Image folder; "" means <root>/train for train.txt and <root>/test for test.txt (else <root>).
  TORCH_ARG(std::string, images_dir) = "";
  TORCH_ARG(ImageTransform, transform) = {};
  TORCH_ARG(int64_t, channels) = 3;
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  /// A line of the split file that is ragged or holds invalid UTF-8 is an error naming the file,
  /// the line and the column (false), or is skipped, listed in skipped() and counted against
  /// max_bad_fraction (true: for tables known to be dirty).
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// COVIDx as a multi-class task: labels are one-hot over `classes` (argmax = class index). Lines
/// with an unknown class, too few fields or a missing image are skipped and listed in skipped().
class CovidxDataset : public LabeledDataset {
 public:
  CovidxDataset(const std::string& root, const std::string& split_file = "train.txt",
                CovidxOptions options = {});

 private:
  CovidxOptions options_;
};

}  // namespace convirt::data
