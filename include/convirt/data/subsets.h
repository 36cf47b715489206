#pragma once
// Label-fraction subsets (paper section 6: 1%, 10% and all of the training labels), seeded and
// stratified, and index views over a dataset.

#include <convirt/data/sample.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace convirt::data {

/// A dataset restricted to some indices of another (shares the base; thread-safe like it).
/// Example:
///   auto sub = std::make_shared<convirt::data::SubsetDataset>(base, std::vector<int64_t>{0, 5,
///   9});
class SubsetDataset : public Dataset {
 public:
  /// Every index must be in [0, base->size()) (IndexError otherwise).
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  /// The base's sample indices_[index]; Example::index is the subset's index.
  Example get(int64_t index, uint64_t seed) const override;
  std::string source(int64_t index) const override;
  std::vector<std::string> label_names() const override { return base_->label_names(); }
  at::Tensor labels() const override;
  const std::vector<int64_t>& indices() const { return indices_; }
  const std::shared_ptr<const Dataset>& base() const { return base_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};

/// Indices of a seeded, stratified `fraction` of the rows of `labels` ([N] or [N, L]; a row's
/// stratum is its pattern of labels > 0.5). Strata get round-to-nearest shares by the
/// largest-remainder method so the total is round(fraction * N) (at least 1); then every label
/// column that has positives (and negatives) in the full set is given at least one of each, so a 1%
/// subset of a rare label still has an AUC (this may add up to two rows per label column beyond the
/// target). fraction must be in (0, 1]; 1 returns every index. Sorted ascending. Example:
///   auto idx = convirt::data::label_fraction_indices(ds->labels(), 0.01, /*seed=*/0);
std::vector<int64_t> label_fraction_indices(const at::Tensor& labels, double fraction,
                                            uint64_t seed);

/// SubsetDataset over label_fraction_indices(dataset->labels(), fraction, seed). The dataset must
/// have labels (ValueError otherwise). Example: auto ten_percent =
/// convirt::data::label_fraction_subset(chexpert, 0.1, 0);
std::shared_ptr<SubsetDataset> label_fraction_subset(std::shared_ptr<const Dataset> dataset,
                                                     double fraction, uint64_t seed);

/// A seeded, stratified split of the rows of `labels` into (first, rest) with `first_fraction` of
/// each stratum in the first part (e.g. train / validation). Both sorted ascending. When `groups`
/// is given (one id per row, e.g. patients), whole groups move together so no patient is on both
/// sides; the stratum of a group is that of its first row.
std::pair<std::vector<int64_t>, std::vector<int64_t>> stratified_split(
    const at::Tensor& labels, double first_fraction, uint64_t seed,
    const std::vector<std::string>& groups = {});

}  // namespace convirt::data
