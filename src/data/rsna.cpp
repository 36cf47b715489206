#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/rsna.h>
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

RsnaDataset::RsnaDataset(const std::string& root, RsnaOptions options)
    : options_(std::move(options)) {
  label_names_ = {"Pneumonia"};
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "RsnaDataset");
  const fs::path base(root);
  auto table = detail::read_table((base / options_.labels_csv()).string(), options_.skip_bad_rows(),
                                  skipped_);
  const auto c_id = table.require_column("patientId");
  const auto c_target = table.require_column("Target");
  std::vector<std::string> order;
  std::unordered_map<std::string, int> target;
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    const std::string id = detail::trim(row[c_id]);
    const std::string t = detail::trim(row[c_target]);
    if (id.empty() || (t != "0" && t != "1")) {
      skipped_.record({-1, table.where(i),
                       "patientId must be set and Target 0 or 1, got '" + id + "', '" + t + "'"});
      continue;
    }
    auto [it, inserted] = target.try_emplace(id, 0);
    if (inserted) order.push_back(id);
    it->second = std::max(it->second, t == "1" ? 1 : 0);
  }
  for (const auto& id : order) {
    const fs::path img = base / options_.images_dir() / (id + options_.extension());
    if (!file_exists(img)) {
      skipped_.record({-1, img.string(), "missing file"});
      continue;
    }
    records_.push_back({img.string(), {static_cast<float>(target[id])}, {}, id, id});
  }
  skipped_.check_threshold(static_cast<int64_t>(order.size() + table.skipped.size()),
                           options_.max_bad_fraction(), "RsnaDataset(" + root + ")");
}

}  // namespace convirt::data
