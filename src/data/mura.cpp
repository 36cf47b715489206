#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/mura.h>
#include <convirt/data/limits.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "labeled_internal.h"

namespace fs = std::filesystem;

namespace convirt::data {
using detail::chexpert_groups;
using detail::file_exists;
using detail::parse_label;
using detail::RecordList;

MuraDataset::MuraDataset(const std::string& root, const std::string& split, MuraOptions options)
    : options_(std::move(options)) {
  label_names_ = {"Abnormal"};
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "MuraDataset");
  CONVIRT_CHECK_VALUE(split == "train" || split == "valid",
                      "MuraDataset: split must be 'train' or 'valid', got '", split, "'");
  fs::path base(root);
  if (!file_exists(base / (split + "_image_paths.csv")) &&
      file_exists(base / "MURA-v1.1" / (split + "_image_paths.csv"))) {
    base = base / "MURA-v1.1";
  }
  auto paths = detail::read_table((base / (split + "_image_paths.csv")).string(),
                                  options_.skip_bad_rows(), skipped_, /*has_header=*/false);
  auto studies = detail::read_table((base / (split + "_labeled_studies.csv")).string(),
                                    options_.skip_bad_rows(), skipped_, /*has_header=*/false);
  auto norm = [](std::string s) {
    s = detail::trim(s);
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
  };
  std::unordered_map<std::string, int> study_label;
  for (const auto& row : studies.rows) {
    if (row.size() >= 2) study_label[norm(row[0])] = detail::trim(row[1]) == "1" ? 1 : 0;
  }
  for (const auto& row : paths.rows) {
    if (row.empty() || detail::trim(row[0]).empty()) continue;
    const std::string rel = detail::trim(row[0]);
    const std::string study_path = norm(fs::path(rel).parent_path().string());
    auto it = study_label.find(study_path);
    const auto img = detail::resolve_path(base, rel);
    if (it == study_label.end()) {
      skipped_.record({-1, img.string(), "study not in " + split + "_labeled_studies.csv"});
      continue;
    }
    if (!file_exists(img)) {
      skipped_.record({-1, img.string(), "missing file"});
      continue;
    }
    // ".../XR_SHOULDER/patient00001/study1_positive": the last three components.
    std::vector<std::string> parts;
    for (const auto& p : fs::path(study_path)) parts.push_back(p.string());
    const size_t n = parts.size();
    std::string patient = n >= 3 ? parts[n - 3] + "/" + parts[n - 2] : study_path;
    std::string study = n >= 3 ? patient + "/" + parts[n - 1] : study_path;
    records_.push_back({img.string(), {static_cast<float>(it->second)}, {}, study, patient});
  }
  skipped_.check_threshold(
      static_cast<int64_t>(paths.rows.size() + paths.skipped.size() + studies.skipped.size()),
      options_.max_bad_fraction(), "MuraDataset(" + root + ")");
}

}  // namespace convirt::data
