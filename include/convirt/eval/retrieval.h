#pragma once
// Zero-shot retrieval (paper section 6, Table 2): queries (images or sentences) rank candidate
// images by cosine similarity of their embeddings; Precision@k counts candidates of the query's
// category. CheXpert 8x200: 8 categories x 200 candidates, 10 image queries and 5 text queries per
// category.

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace convirt::eval {

/// The eight categories of the CheXpert 8x200 retrieval set, in the order the tables use; their
/// index is the category id.
const std::vector<std::string>& chexpert_8x200_categories();

/// Precision@k of one retrieval direction, overall and per query category. Values in [0, 1].
struct RetrievalResult {
  std::map<int64_t, double> precision;  ///< k -> mean over queries
  /// category id -> (k -> mean over that category's queries)
  std::map<int64_t, std::map<int64_t, double>> per_category;
  int64_t num_queries = 0;
  int64_t num_candidates = 0;
};

/// Ranks `candidate_emb` [C, D] for each row of `query_emb` [Q, D] by cosine similarity (both
/// L2-normalised first; the query and candidate encoders may differ, only D must agree) and reports
/// Precision@k for each of `ks` (default the paper's 5, 10, 50). `query_labels` [Q],
/// `candidate_labels` [C]: integer category ids. Ties are broken by candidate index.
///
/// Example:
///   auto r = convirt::eval::retrieval_precision(text_emb, text_cat, image_emb, image_cat);
///   std::cout << r.precision.at(10);
RetrievalResult retrieval_precision(const torch::Tensor& query_emb,
                                    const torch::Tensor& query_labels,
                                    const torch::Tensor& candidate_emb,
                                    const torch::Tensor& candidate_labels,
                                    const std::vector<int64_t>& ks = {5, 10, 50});

/// Cosine similarity matrix [Q, C] of two embedding sets, in float32 (or float64 for float64
/// inputs).
torch::Tensor cosine_similarity_matrix(const torch::Tensor& a, const torch::Tensor& b);

/// The chance level of Precision@k for one query category: the fraction of candidates in it. For
/// the balanced 8x200 set this is 1/8 = 12.5%, the "random" row of Table 2.
double retrieval_chance_level(const torch::Tensor& candidate_labels, int64_t category);

}  // namespace convirt::eval
