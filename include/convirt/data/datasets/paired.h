#pragma once
// The common shape of image-report datasets: each record is one study (one or more image files)
// with the sentences of its kept report text. A sample draws one view and one sentence uniformly
// from its seed (paper sections 4 and 5: one view per study per step, one sentence per example per
// step).

#include <convirt/data/sample.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::data {

/// One study of a paired dataset.
struct PairRecord {
  std::vector<std::string> images;     ///< image files of the study (views); at least one
  std::vector<std::string> sentences;  ///< sentences of the kept report text; at least one
  std::string study;
  std::string patient;
};

/// How report text becomes the sentences a sample draws from.
struct ReportPolicy {
  /// Keep only FINDINGS and IMPRESSION (paper section 5). When false the whole report is used.
  bool sections_only = true;
  /// Drop the pair when the kept text has fewer tokens than this (paper: 3).
  int64_t min_tokens = 3;
};

/// Turns a report into the sentences a pair keeps. Returns an empty string on success and the
/// reason for skipping otherwise ("invalid UTF-8", "empty report text", "fewer than 3 tokens").
/// Example:
///   std::vector<std::string> s;
///   if (auto why = convirt::data::report_sentences(report, {}, &s); !why.empty()) skip(why);
std::string report_sentences(const std::string& report, const ReportPolicy& policy,
                             std::vector<std::string>* sentences);

/// A paired dataset over explicit records; the MIMIC-CXR and CSV readers build one of these.
///
/// Example:
///   convirt::data::PairedDataset ds({{{"a.png"}, {"No effusion."}, "s1", "p1"}}, transform);
///   auto ex = ds.get(0, /*seed=*/7);  // ex.image, ex.text
class PairedDataset : public Dataset {
 public:
  /// `channels`: 0 as decoded, 1 gray, 3 gray replicated after the transform (for ImageNet-shaped
  /// encoders).
  explicit PairedDataset(std::vector<PairRecord> records, ImageTransform transform = {},
                         int64_t channels = 3);

  int64_t size() const override { return static_cast<int64_t>(records_.size()); }
  /// Draws view = U{0..views-1} and sentence = U{0..sentences-1} from `seed`, decodes the view and
  /// applies the transform with a seed derived from `seed`.
  Example get(int64_t index, uint64_t seed) const override;
  std::string source(int64_t index) const override;

  const std::vector<PairRecord>& records() const { return records_; }
  /// Total number of image files over all records.
  int64_t num_images() const;

 protected:
  PairedDataset() = default;
  std::vector<PairRecord> records_;
  ImageTransform transform_;
  int64_t channels_ = 3;
};

}  // namespace convirt::data
