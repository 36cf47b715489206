#include <convirt/core/check.h>
#include <convirt/data/datasets/labeled.h>

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

UncertainPolicy parse_uncertain_policy(const std::string& name) {
  const std::string n = detail::lower(name);
  if (n == "zeros" || n == "zero" || n == "u-zeros") return UncertainPolicy::kZeros;
  if (n == "ones" || n == "one" || n == "u-ones") return UncertainPolicy::kOnes;
  if (n == "ignore" || n == "mask") return UncertainPolicy::kIgnore;
  CONVIRT_CHECK_VALUE(false, "uncertain policy must be one of 'zeros', 'ones', 'ignore', got '",
                      name, "'");
  return UncertainPolicy::kZeros;
}

std::string to_string(UncertainPolicy policy) {
  switch (policy) {
    case UncertainPolicy::kZeros:
      return "zeros";
    case UncertainPolicy::kOnes:
      return "ones";
    case UncertainPolicy::kIgnore:
      return "ignore";
  }
  return "zeros";
}

LabeledDataset::LabeledDataset(std::vector<LabeledRecord> records,
                               std::vector<std::string> label_names, ImageTransform transform,
                               int64_t channels)
    : records_(std::move(records)),
      label_names_(std::move(label_names)),
      transform_(std::move(transform)),
      channels_(channels) {
  validate();
}

void LabeledDataset::validate() const {
  detail::check_channels(channels_, "LabeledDataset");
  for (size_t i = 0; i < records_.size(); ++i) {
    const auto& r = records_[i];
    CONVIRT_CHECK_VALUE(r.labels.size() == label_names_.size(), "LabeledDataset: record ", i,
                        " must have ", label_names_.size(), " labels, got ", r.labels.size());
    CONVIRT_CHECK_VALUE(r.mask.empty() || r.mask.size() == r.labels.size(),
                        "LabeledDataset: record ", i, " mask must be empty or have ",
                        r.labels.size(), " entries, got ", r.mask.size());
  }
}

Example LabeledDataset::get(int64_t index, uint64_t seed) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  const auto& r = records_[static_cast<size_t>(index)];
  Example e;
  e.path = r.image;
  e.image = detail::finish_image(detail::load_image(r.image, channels_), transform_,
                                 detail::mix64(seed, 3), channels_, r.image);
  const auto n = static_cast<int64_t>(r.labels.size());
  e.labels = at::from_blob(const_cast<float*>(r.labels.data()), {n}, at::kFloat).clone();
  e.mask = r.mask.empty()
               ? at::ones({n}, at::kFloat)
               : at::from_blob(const_cast<float*>(r.mask.data()), {n}, at::kFloat).clone();
  e.study = r.study;
  e.patient = r.patient;
  e.index = index;
  return e;
}

std::string LabeledDataset::source(int64_t index) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  return records_[static_cast<size_t>(index)].image;
}

at::Tensor LabeledDataset::labels() const {
  const auto n = size();
  const auto l = static_cast<int64_t>(label_names_.size());
  auto out = at::zeros({n, l}, at::kFloat);
  auto a = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < l; ++j)
      a[i][j] = records_[static_cast<size_t>(i)].labels[static_cast<size_t>(j)];
  }
  return out;
}

at::Tensor LabeledDataset::masks() const {
  const auto n = size();
  const auto l = static_cast<int64_t>(label_names_.size());
  auto out = at::ones({n, l}, at::kFloat);
  auto a = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& m = records_[static_cast<size_t>(i)].mask;
    for (int64_t j = 0; j < l && !m.empty(); ++j) a[i][j] = m[static_cast<size_t>(j)];
  }
  return out;
}

}  // namespace convirt::data
