#pragma once
// The CheXpert 8x200 zero-shot retrieval sets (paper section 6) in their official CSV format:
//   image-retrieval/candidate.csv  CheXpert header (Path, Sex, Age, Frontal/Lateral, AP/PA, 14
//   labels) image-retrieval/query.csv      Variable,Path text-retrieval/candidate.csv   CheXpert
//   header (optional; the image candidates are used when absent) text-retrieval/query.csv
//   Variable,Text
// The flat names image-retrieval-candidate.csv etc. are accepted too.

#include <convirt/data/datasets/labeled.h>
#include <torch/arg.h>

#include <memory>
#include <string>
#include <vector>

namespace convirt::data {

/// The eight retrieval categories, in the paper's order (CheXpert column names).
std::vector<std::string> retrieval_categories();

/// A text query: its category and sentence.
struct TextQuery {
  int64_t category = -1;
  std::string category_name;
  std::string text;
};

/// Options of RetrievalSet.
struct RetrievalOptions {
  TORCH_ARG(std::vector<std::string>, categories) = retrieval_categories();
  /// Folder the image paths are relative to (the folder holding CheXpert-v1.0-small); "" means the
  /// retrieval folder's parent.
  TORCH_ARG(std::string, image_root) = "";
  TORCH_ARG(ImageTransform, transform) = {};
  TORCH_ARG(int64_t, channels) = 3;
  TORCH_ARG(double, max_bad_fraction) = 0.05;
  /// A row of the table that is ragged or holds invalid UTF-8 is an error naming the file,
  /// the line and the column (false), or is skipped, listed in skipped() and counted against
  /// max_bad_fraction (true: for tables known to be dirty).
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// The retrieval set. Candidates and image queries are LabeledDatasets whose labels are one-hot
/// over the categories (a hit at rank k = the candidate's category equals the query's). Candidates
/// must be positive for exactly one category; other rows are skipped and listed.
///
/// Example:
///   convirt::data::RetrievalSet set("/data/chexpert-8x200",
///       convirt::data::RetrievalOptions().image_root("/data"));
///   auto cand = set.candidates();  // shared_ptr<LabeledDataset>
///   for (const auto& q : set.text_queries()) use(q.category, q.text);
class RetrievalSet {
 public:
  explicit RetrievalSet(const std::string& dir, RetrievalOptions options = {});

  const std::vector<std::string>& categories() const { return categories_; }
  std::shared_ptr<LabeledDataset> candidates() const { return candidates_; }
  std::shared_ptr<LabeledDataset> image_queries() const { return image_queries_; }
  /// The text-retrieval candidate list (same as candidates() when the file is absent).
  std::shared_ptr<LabeledDataset> text_candidates() const { return text_candidates_; }
  const std::vector<TextQuery>& text_queries() const { return text_queries_; }

 private:
  std::vector<std::string> categories_;
  std::shared_ptr<LabeledDataset> candidates_, image_queries_, text_candidates_;
  std::vector<TextQuery> text_queries_;
};

}  // namespace convirt::data
