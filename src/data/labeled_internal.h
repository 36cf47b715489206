#pragma once
// Internals shared by the labelled-dataset readers (chexpert.cpp, rsna.cpp, covidx.cpp, mura.cpp,
// retrieval_set.cpp); not installed.

#include <convirt/data/datasets/labeled.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace convirt::data::detail {

inline bool file_exists(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

// CheXpert label cell: "1.0", "0.0", "-1.0", "" or (some exports) "1", "0", "-1".
inline bool parse_label(const std::string& cell, double* value) {
  std::string s = trim(cell);
  if (s.empty()) {
    *value = std::nan("");
    return true;
  }
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size() || !(v == 1.0 || v == 0.0 || v == -1.0)) return false;
    *value = v;
    return true;
  } catch (...) {
    return false;
  }
}

// "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg" -> ("patient00001/study1",
// "patient00001"); paths without that shape fall back to the parent folder.
inline std::pair<std::string, std::string> chexpert_groups(const std::string& path) {
  std::vector<std::string> parts;
  for (const auto& p : std::filesystem::path(path)) parts.push_back(p.string());
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i].rfind("patient", 0) == 0) {
      std::string study = i + 2 < parts.size() ? parts[i] + "/" + parts[i + 1] : parts[i];
      return {study, parts[i]};
    }
  }
  std::string parent = std::filesystem::path(path).parent_path().string();
  return {parent, parent};
}

// A LabeledDataset that readers without their own class fill record by record.
class RecordList : public LabeledDataset {
 public:
  RecordList(std::vector<std::string> names, ImageTransform transform, int64_t channels) {
    label_names_ = std::move(names);
    transform_ = std::move(transform);
    channels_ = channels;
  }
  void add(LabeledRecord r) { records_.push_back(std::move(r)); }
  /// Reads a table whose left-out rows (skip_bad_rows) are listed among this set's skipped samples.
  CsvTable read(const std::string& path, bool skip_bad_rows) {
    return read_table(path, skip_bad_rows, skipped_);
  }
  void skip(const std::string& path, const std::string& reason) {
    skipped_.record({-1, path, reason});
  }
  void finish(int64_t total, double max_bad_fraction, const std::string& what) {
    validate();
    skipped_.check_threshold(total, max_bad_fraction, what);
  }
};

}  // namespace convirt::data::detail
