#include <convirt/core/check.h>
#include <convirt/data/subsets.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <unordered_map>

#include "common.h"

namespace convirt::data {
namespace {

void shuffle(std::vector<int64_t>& v, uint64_t seed) {
  uint64_t state = seed;
  for (size_t i = v.size(); i > 1; --i) {
    state = detail::mix64(state);
    std::swap(v[i - 1], v[detail::bounded(state, i)]);
  }
}

// [N, L] float, 0/1 after thresholding at 0.5.
at::Tensor as_matrix(const at::Tensor& labels) {
  CONVIRT_CHECK_VALUE(labels.defined() && (labels.dim() == 1 || labels.dim() == 2),
                      "labels must be [N] or [N, L], got ",
                      labels.defined() ? detail::shape_str(labels.sizes()) : "undefined");
  auto m = labels.dim() == 1 ? labels.unsqueeze(1) : labels;
  return m.to(at::kFloat).gt(0.5).to(at::kByte).contiguous();
}

std::vector<std::string> strata_keys(const at::Tensor& m) {
  const auto n = m.size(0), l = m.size(1);
  auto a = m.accessor<uint8_t, 2>();
  std::vector<std::string> keys(static_cast<size_t>(n), std::string(static_cast<size_t>(l), '0'));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < l; ++j)
      keys[static_cast<size_t>(i)][static_cast<size_t>(j)] = a[i][j] ? '1' : '0';
  }
  return keys;
}

}  // namespace

SubsetDataset::SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
    : base_(std::move(base)), indices_(std::move(indices)) {
  CONVIRT_CHECK_VALUE(base_ != nullptr, "SubsetDataset: base must not be null");
  for (auto i : indices_) {
    CONVIRT_CHECK_INDEX(i >= 0 && i < base_->size(), "SubsetDataset: indices must be in [0, ",
                        base_->size(), "), got ", i);
  }
}

Example SubsetDataset::get(int64_t index, uint64_t seed) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  Example e = base_->get(indices_[static_cast<size_t>(index)], seed);
  e.index = index;
  return e;
}

std::string SubsetDataset::source(int64_t index) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  return base_->source(indices_[static_cast<size_t>(index)]);
}

at::Tensor SubsetDataset::labels() const {
  auto all = base_->labels();
  if (!all.defined()) return all;
  auto idx = at::from_blob(const_cast<int64_t*>(indices_.data()), {size()}, at::kLong);
  return all.index_select(0, idx);
}

std::vector<int64_t> label_fraction_indices(const at::Tensor& labels, double fraction,
                                            uint64_t seed) {
  CONVIRT_CHECK_VALUE(fraction > 0.0 && fraction <= 1.0, "fraction must be in (0, 1], got ",
                      fraction);
  auto m = as_matrix(labels);
  const int64_t n = m.size(0), l = m.size(1);
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  if (fraction >= 1.0 || n == 0) return all;
  const auto keys = strata_keys(m);
  std::map<std::string, std::vector<int64_t>> strata;  // ordered: deterministic allocation
  for (int64_t i = 0; i < n; ++i) strata[keys[static_cast<size_t>(i)]].push_back(i);
  uint64_t s = detail::mix64(seed, 0xF4AC);
  struct Share {
    std::vector<int64_t>* rows;
    int64_t take;
    double remainder;
  };
  std::vector<Share> shares;
  int64_t target = std::max<int64_t>(1, std::llround(fraction * static_cast<double>(n)));
  int64_t given = 0;
  for (auto& [key, rows] : strata) {
    shuffle(rows, detail::mix64(s, detail::fnv1a(key)));
    double exact = fraction * static_cast<double>(rows.size());
    auto take = static_cast<int64_t>(std::floor(exact));
    shares.push_back({&rows, take, exact - static_cast<double>(take)});
    given += take;
  }
  // Largest remainder; ties broken by the larger stratum, then the key order (stable sort).
  std::vector<size_t> order(shares.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (shares[a].remainder != shares[b].remainder)
      return shares[a].remainder > shares[b].remainder;
    return shares[a].rows->size() > shares[b].rows->size();
  });
  for (size_t k = 0; given < target && k < order.size(); ++k) {
    auto& sh = shares[order[k]];
    if (sh.take < static_cast<int64_t>(sh.rows->size())) {
      ++sh.take;
      ++given;
    }
  }
  // Every label column that has both values in the full set keeps both in the subset.
  auto acc = m.accessor<uint8_t, 2>();
  auto has = [&](int64_t col, bool value) {
    for (const auto& sh : shares) {
      for (int64_t t = 0; t < sh.take; ++t) {
        if ((acc[(*sh.rows)[static_cast<size_t>(t)]][col] != 0) == value) return true;
      }
    }
    return false;
  };
  for (int64_t col = 0; col < l; ++col) {
    for (bool value : {true, false}) {
      if (has(col, value)) continue;
      for (size_t k = 0; k < order.size(); ++k) {
        auto& sh = shares[order[k]];
        if (sh.take < static_cast<int64_t>(sh.rows->size()) &&
            (acc[(*sh.rows)[static_cast<size_t>(sh.take)]][col] != 0) == value) {
          ++sh.take;
          break;
        }
      }
    }
  }
  std::vector<int64_t> out;
  for (const auto& sh : shares) out.insert(out.end(), sh.rows->begin(), sh.rows->begin() + sh.take);
  std::sort(out.begin(), out.end());
  return out;
}

std::shared_ptr<SubsetDataset> label_fraction_subset(std::shared_ptr<const Dataset> dataset,
                                                     double fraction, uint64_t seed) {
  CONVIRT_CHECK_VALUE(dataset != nullptr, "label_fraction_subset: dataset must not be null");
  auto labels = dataset->labels();
  CONVIRT_CHECK_VALUE(labels.defined(), "label_fraction_subset: the dataset must have labels");
  return std::make_shared<SubsetDataset>(dataset, label_fraction_indices(labels, fraction, seed));
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> stratified_split(
    const at::Tensor& labels, double first_fraction, uint64_t seed,
    const std::vector<std::string>& groups) {
  CONVIRT_CHECK_VALUE(first_fraction >= 0.0 && first_fraction <= 1.0,
                      "first_fraction must be in [0, 1], got ", first_fraction);
  auto m = as_matrix(labels);
  const int64_t n = m.size(0);
  CONVIRT_CHECK_VALUE(groups.empty() || static_cast<int64_t>(groups.size()) == n,
                      "groups must be empty or have one id per row (", n, "), got ", groups.size());
  const auto keys = strata_keys(m);
  // Units are groups (or single rows); each unit is stratified by its first row.
  std::vector<std::vector<int64_t>> units;
  std::unordered_map<std::string, size_t> unit_of;
  for (int64_t i = 0; i < n; ++i) {
    if (groups.empty()) {
      units.push_back({i});
      continue;
    }
    auto [it, inserted] = unit_of.try_emplace(groups[static_cast<size_t>(i)], units.size());
    if (inserted) units.emplace_back();
    units[it->second].push_back(i);
  }
  std::map<std::string, std::vector<int64_t>> strata;
  for (size_t u = 0; u < units.size(); ++u)
    strata[keys[static_cast<size_t>(units[u][0])]].push_back(static_cast<int64_t>(u));
  std::vector<int64_t> first, rest;
  for (auto& [key, us] : strata) {
    shuffle(us, detail::mix64(detail::mix64(seed, 0x5B1F), detail::fnv1a(key)));
    auto take = static_cast<size_t>(std::llround(first_fraction * static_cast<double>(us.size())));
    for (size_t k = 0; k < us.size(); ++k) {
      auto& dst = k < take ? first : rest;
      for (auto row : units[static_cast<size_t>(us[k])]) dst.push_back(row);
    }
  }
  std::sort(first.begin(), first.end());
  std::sort(rest.begin(), rest.end());
  return {first, rest};
}

}  // namespace convirt::data
