#pragma once
// What every dataset reader produces and what the loader collates: one Example type for paired
// (image, sentence) pretraining data and for labelled evaluation data, so that one compiled loader
// serves both, plus the record of skipped samples that bad input produces instead of a crash or a
// silent drop.

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace convirt::data {

/// A caller-supplied image transform: takes a decoded image [C, H, W] (float32 in [0, 1]) and a
/// seed from which it must draw all of its randomness, so the same (image, seed) always gives the
/// same output. Example:
///   convirt::data::ImageTransform t = [](const at::Tensor& img, uint64_t seed) {
///     return my_augment(img, seed);
///   };
using ImageTransform = std::function<at::Tensor(const at::Tensor& image, uint64_t seed)>;

/// One sample. Paired datasets fill `text`; labelled datasets fill `labels` and `mask`.
struct Example {
  at::Tensor image;     ///< [C, H, W] float32, after the dataset's transform
  std::string text;     ///< the sampled sentence (paired datasets); empty otherwise
  at::Tensor labels;    ///< [L] float32 (labelled datasets); undefined otherwise
  at::Tensor mask;      ///< [L] float32, 1 = label known, 0 = ignore (uncertain policy "ignore")
  std::string study;    ///< study id (groups views of one study; MURA study-level grouping)
  std::string patient;  ///< patient id (MURA patient-level AUC, leakage-free splits)
  std::string path;     ///< the image file the sample was decoded from
  int64_t index = -1;   ///< index in the dataset
};

/// A collated batch. Rows of every field correspond.
struct Batch {
  at::Tensor images;                  ///< [B, C, H, W] float32
  std::vector<std::string> texts;     ///< B sentences (empty strings for labelled data)
  at::Tensor labels;                  ///< [B, L] float32, undefined when the dataset has no labels
  at::Tensor mask;                    ///< [B, L] float32, undefined when the dataset has no labels
  std::vector<std::string> studies;   ///< B study ids
  std::vector<std::string> patients;  ///< B patient ids
  std::vector<std::string> paths;     ///< B image paths
  std::vector<int64_t> indices;       ///< B dataset indices
  int64_t epoch = 0;                  ///< the loader position this batch was produced at
  int64_t step = 0;
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

/// Stacks examples into a Batch. All images must share one shape (use a transform that resizes),
/// and all label vectors one length; a mismatch is a ValueError naming the first offending example.
Batch collate(std::vector<Example> examples);

/// Why a sample could not be used, and where it came from.
struct BadSample {
  int64_t index = -1;  ///< dataset index, or -1 when the row never became a sample (construction)
  std::string path;    ///< the file or CSV row at fault
  std::string reason;  ///< human-readable cause ("missing file", "cannot decode image: ...", ...)
};

/// Thrown by Dataset::get for a sample that must be skipped. The loader catches it and records it.
class BadSampleError : public std::runtime_error {
 public:
  BadSampleError(std::string path, std::string reason)
      : std::runtime_error(path + ": " + reason),
        path_(std::move(path)),
        reason_(std::move(reason)) {}
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

/// A thread-safe record of skipped samples. Readers fill one while indexing (missing files, empty
/// reports, invalid UTF-8), the loader another while decoding (corrupt or truncated images).
class BadSampleLog {
 public:
  BadSampleLog() = default;
  BadSampleLog(const BadSampleLog& other);
  BadSampleLog& operator=(const BadSampleLog& other);

  void record(BadSample sample);
  int64_t count() const;
  std::vector<BadSample> entries() const;
  void clear();
  /// "N bad samples:\n  path: reason\n ..." listing at most `max_lines` entries.
  std::string summary(size_t max_lines = 10) const;
  /// Throws (RuntimeError) with the summary when count() > max_fraction * total. A negative
  /// fraction disables the check. `what` names the dataset in the message.
  void check_threshold(int64_t total, double max_fraction, const std::string& what) const;

 private:
  mutable std::mutex mutex_;
  std::vector<BadSample> entries_;
};

/// The interface every reader implements. `get` is const and thread-safe, so loader workers share
/// one dataset; everything random in a sample (view choice, sentence choice, augmentation) is drawn
/// from `seed`, so a (index, seed) pair always produces the same example.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of usable samples (rows skipped while indexing are not counted).
  virtual int64_t size() const = 0;
  /// Produces sample `index`. Throws BadSampleError when the sample's file cannot be used,
  /// IndexError when index is out of range.
  virtual Example get(int64_t index, uint64_t seed) const = 0;
  /// The file (or first file) behind sample `index`, for reports and errors.
  virtual std::string source(int64_t index) const = 0;
  /// Names of the label columns, empty for paired datasets.
  virtual std::vector<std::string> label_names() const { return {}; }
  /// All labels [N, L] float32 without decoding any image (for stratified subsets and metrics);
  /// undefined for paired datasets.
  virtual at::Tensor labels() const { return {}; }
  /// Samples skipped while the dataset was indexed.
  const BadSampleLog& skipped() const { return skipped_; }

 protected:
  BadSampleLog skipped_;
};

}  // namespace convirt::data
