#pragma once
// Evaluation metrics of the paper's tables (section 6): ROC-AUC per label and mean (RSNA,
// CheXpert), accuracy (COVIDx), patient/study-level AUC (MURA) and Precision@k (8x200 retrieval).
// Inputs may live on any device and have any floating dtype; everything is computed in float64 on
// CPU.

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <vector>

namespace convirt::eval {

/// Area under the ROC curve of a binary problem. `scores` [N] (higher = more positive), `targets`
/// [N] holding 0/1 (bool, integer or floating). Tied scores count one half, so the value equals
/// scikit-learn's roc_auc_score on the same data. Both classes must be present (ValueError
/// otherwise, as in scikit-learn).
///
/// Example:
///   double auc = convirt::eval::roc_auc(torch::tensor({0.1, 0.4, 0.35, 0.8}),
///                                       torch::tensor({0, 0, 1, 1}));  // 0.75
double roc_auc(const torch::Tensor& scores, const torch::Tensor& targets);

/// Per-label and mean AUC of a multi-label problem.
struct MultiLabelAUC {
  /// AUC of each label; NaN for a label whose kept targets hold only one class (undefined).
  std::vector<double> per_label;
  /// Mean over the labels whose AUC is defined (the paper's "mean AUC"); NaN when none is.
  double mean = 0.0;
  /// How many labels entered the mean.
  int64_t defined_labels = 0;
};

/// AUC of each column of `scores` [N, L] against `targets` [N, L] (0/1). `mask` [N, L] (optional,
/// any dtype, nonzero = keep) drops entries, e.g. CheXpert's uncertain labels under the "ignore"
/// policy. 1-D inputs are treated as one label.
///
/// Example:
///   auto auc = convirt::eval::multilabel_roc_auc(probs, labels, labels.ge(0));
///   std::cout << auc.mean;
MultiLabelAUC multilabel_roc_auc(const torch::Tensor& scores, const torch::Tensor& targets,
                                 const torch::Tensor& mask = {});

/// Fraction of correct predictions of a multi-class problem, in [0, 1]. `predictions` is either
/// scores [N, C] (argmax taken; the first maximum wins) or class indices [N]; `targets` [N] class
/// indices.
///
/// Example:
///   double acc = convirt::eval::accuracy(logits, labels);
double accuracy(const torch::Tensor& predictions, const torch::Tensor& targets);

/// Group-level AUC (MURA's patient/study level): the scores of the images of one group are
/// averaged, and the AUC is taken over groups. `scores` [N] or [N, L], `targets` the same shape
/// (0/1), `groups` [N] integer group ids. All images of one group must carry the same target
/// (ValueError otherwise). With [N, L] inputs the result is the mean over labels, like
/// multilabel_roc_auc's mean.
///
/// Example:
///   double auc = convirt::eval::grouped_roc_auc(probs, labels, study_ids);
double grouped_roc_auc(const torch::Tensor& scores, const torch::Tensor& targets,
                       const torch::Tensor& groups);

/// Averages `values` [N] or [N, L] per group. Returns {group means [G] or [G, L], sorted group ids
/// [G]}; used by grouped_roc_auc and handy to report study-level probabilities.
std::pair<torch::Tensor, torch::Tensor> group_mean(const torch::Tensor& values,
                                                   const torch::Tensor& groups);

/// Precision@k of a ranking: for each query, the fraction of its k highest-scoring candidates whose
/// label equals the query's label, averaged over queries. `similarity` [Q, C], `query_labels` [Q],
/// `candidate_labels` [C] (integer categories). Ties in similarity are broken by candidate index
/// (lower first), so the value is deterministic. Requires 1 <= k <= C.
///
/// Example:
///   double p10 = convirt::eval::precision_at_k(q.mm(c.t()), q_cat, c_cat, 10);
double precision_at_k(const torch::Tensor& similarity, const torch::Tensor& query_labels,
                      const torch::Tensor& candidate_labels, int64_t k);

/// Precision@k for several k at once, sorting each query's candidates only once.
std::map<int64_t, double> precision_at_ks(const torch::Tensor& similarity,
                                          const torch::Tensor& query_labels,
                                          const torch::Tensor& candidate_labels,
                                          const std::vector<int64_t>& ks);

}  // namespace convirt::eval
