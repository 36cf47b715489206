#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/chexpert.h>
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

std::vector<std::string> chexpert_paper_labels() {
  return {"Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"};
}

std::vector<std::string> chexpert_all_labels() {
  return {"No Finding",       "Enlarged Cardiomediastinum",
          "Cardiomegaly",     "Lung Opacity",
          "Lung Lesion",      "Edema",
          "Consolidation",    "Pneumonia",
          "Atelectasis",      "Pneumothorax",
          "Pleural Effusion", "Pleural Other",
          "Fracture",         "Support Devices"};
}

ChexpertDataset::ChexpertDataset(const std::string& csv_path, ChexpertOptions options)
    : options_(std::move(options)) {
  label_names_ = options_.labels();
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "ChexpertDataset");
  CONVIRT_CHECK_VALUE(!label_names_.empty(), "ChexpertDataset: labels must not be empty");
  auto table = detail::read_table(csv_path, options_.skip_bad_rows(), skipped_);
  const auto c_path = table.require_column("Path");
  const auto c_frontal = table.column("Frontal/Lateral");
  std::vector<int64_t> cols;
  for (const auto& l : label_names_) cols.push_back(table.require_column(l));
  const fs::path root = options_.image_root().empty() ? fs::path(csv_path).parent_path()
                                                      : fs::path(options_.image_root());
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    if (options_.frontal_only() && c_frontal >= 0 && row[c_frontal] != "Frontal") continue;
    const auto path = detail::resolve_path(root, row[c_path]);
    if (!file_exists(path)) {
      skipped_.record({-1, path.string(), "missing file"});
      continue;
    }
    LabeledRecord r;
    r.image = path.string();
    bool ok = true;
    for (size_t j = 0; j < cols.size() && ok; ++j) {
      double v = 0;
      if (!parse_label(row[cols[j]], &v)) {
        skipped_.record({-1, table.where(i),
                         "label '" + label_names_[j] + "' must be 1.0, 0.0, -1.0 or blank, got '" +
                             row[cols[j]] + "'"});
        ok = false;
        break;
      }
      float label = 0.f, mask = 1.f;
      if (std::isnan(v)) {
        mask = options_.blank_is_negative() ? 1.f : 0.f;
      } else if (v == -1.0) {
        switch (options_.uncertain()) {
          case UncertainPolicy::kZeros:
            label = 0.f;
            break;
          case UncertainPolicy::kOnes:
            label = 1.f;
            break;
          case UncertainPolicy::kIgnore:
            mask = 0.f;
            break;
        }
      } else {
        label = static_cast<float>(v);
      }
      r.labels.push_back(label);
      r.mask.push_back(mask);
    }
    if (!ok) continue;
    std::tie(r.study, r.patient) = chexpert_groups(row[c_path]);
    records_.push_back(std::move(r));
  }
  skipped_.check_threshold(static_cast<int64_t>(table.rows.size() + table.skipped.size()),
                           options_.max_bad_fraction(), "ChexpertDataset(" + csv_path + ")");
}

}  // namespace convirt::data
