#pragma once
// The common shape of the evaluation datasets (paper section 6): one image file per sample with a
// label vector, a mask (0 = label unknown, ignored by the loss and the metric) and study/patient
// ids.

#include <convirt/data/sample.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::data {

/// One sample of a labelled dataset.
struct LabeledRecord {
  std::string image;
  std::vector<float> labels;
  std::vector<float> mask;  ///< same length as labels; empty means all known
  std::string study;
  std::string patient;
};

/// What a CheXpert uncertain label (-1) becomes (the paper does not say; reproductions use zeros).
enum class UncertainPolicy {
  kZeros,   ///< -1 -> 0 (U-Zeros)
  kOnes,    ///< -1 -> 1 (U-Ones)
  kIgnore,  ///< -1 -> label 0 with mask 0: left out of the loss and the metric
};

/// "zeros", "ones" or "ignore"; anything else is a ValueError naming the accepted values.
UncertainPolicy parse_uncertain_policy(const std::string& name);
std::string to_string(UncertainPolicy policy);

/// A labelled dataset over explicit records; every reader below builds one.
///
/// Example:
///   convirt::data::LabeledDataset ds({{"a.png", {1.f}, {}, "s1", "p1"}}, {"Pneumonia"});
///   auto ex = ds.get(0, 0);  // ex.labels == [1], ex.mask == [1]
class LabeledDataset : public Dataset {
 public:
  LabeledDataset(std::vector<LabeledRecord> records, std::vector<std::string> label_names,
                 ImageTransform transform = {}, int64_t channels = 3);

  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  Example get(int64_t index, uint64_t seed) const override;
  std::string source(int64_t index) const override;
  std::vector<std::string> label_names() const override { return label_names_; }
  /// [N, L] float32.
  at::Tensor labels() const override;
  /// [N, L] float32, 1 = known.
  at::Tensor masks() const;
  const std::vector<LabeledRecord>& records() const { return records_; }
  /// Replaces the transform (e.g. augmentation for training, none for evaluation on the same
  /// files).
  void set_transform(ImageTransform transform) { transform_ = std::move(transform); }

 protected:
  LabeledDataset() = default;
  void validate() const;
  std::vector<LabeledRecord> records_;
  std::vector<std::string> label_names_;
  ImageTransform transform_;
  int64_t channels_ = 3;
};

}  // namespace convirt::data
