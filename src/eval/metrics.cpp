#include <convirt/core/check.h>
#include <convirt/eval/metrics.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace convirt::eval {
namespace {

std::vector<double> to_doubles(const torch::Tensor& t) {
  auto c = t.detach().to(at::kCPU).to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

std::vector<int64_t> to_int64s(const torch::Tensor& t) {
  auto c = t.detach().to(at::kCPU).to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

void check_defined(const torch::Tensor& t, const char* name) {
  CONVIRT_CHECK_VALUE(t.defined(), name, " must be a defined tensor");
}

void check_floating_or_integral(const torch::Tensor& t, const char* name) {
  CONVIRT_CHECK_TYPE(!t.is_complex(), name, " must be real (bool, integer or floating), got ",
                     t.scalar_type());
}

void check_integral(const torch::Tensor& t, const char* name) {
  CONVIRT_CHECK_TYPE(
      !at::isFloatingType(t.scalar_type()) && !t.is_complex() && t.scalar_type() != at::kBool, name,
      " must hold integer class ids, got dtype ", t.scalar_type());
}

// Binary targets as 0/1 after checking that nothing else is present (a -1 uncertain label passed
// through by mistake would otherwise silently count as a positive).
std::vector<char> to_binary(const torch::Tensor& targets, const char* name) {
  check_floating_or_integral(targets, name);
  auto values = to_doubles(targets);
  std::vector<char> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    CONVIRT_CHECK_VALUE(values[i] == 0.0 || values[i] == 1.0, name, " must hold only 0 and 1, got ",
                        values[i], " at flat index ", i);
    out[i] = values[i] == 1.0;
  }
  return out;
}

// Mann-Whitney form of the AUC with mid-ranks for ties: identical to the trapezoidal area under the
// ROC curve that scikit-learn computes, where a run of tied scores is one diagonal segment.
// Returns NaN when one class is absent.
double auc_from_vectors(const std::vector<double>& scores, const std::vector<char>& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double positive_rank_sum = 0.0;
  double n_pos = 0.0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    double run_pos = 0.0;
    while (j < n && scores[order[j]] == scores[order[i]]) {
      run_pos += positive[order[j]];
      ++j;
    }
    // Ranks i+1 .. j share their mean.
    const double mid_rank = 0.5 * (static_cast<double>(i + 1) + static_cast<double>(j));
    positive_rank_sum += run_pos * mid_rank;
    n_pos += run_pos;
    i = j;
  }
  const double n_neg = static_cast<double>(n) - n_pos;
  if (n_pos == 0.0 || n_neg == 0.0) return std::numeric_limits<double>::quiet_NaN();
  return (positive_rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg);
}

void check_finite(const std::vector<double>& v, const char* name) {
  for (size_t i = 0; i < v.size(); ++i) {
    CONVIRT_CHECK_VALUE(std::isfinite(v[i]), name, " must be finite, got ", v[i], " at flat index ",
                        i);
  }
}

}  // namespace

double roc_auc(const torch::Tensor& scores, const torch::Tensor& targets) {
  check_defined(scores, "scores");
  check_defined(targets, "targets");
  CONVIRT_CHECK_VALUE(scores.dim() == 1, "scores must be 1-D [N], got ",
                      detail::shape_str(scores.sizes()));
  CONVIRT_CHECK_VALUE(targets.sizes() == scores.sizes(), "targets must have the shape of scores ",
                      detail::shape_str(scores.sizes()), ", got ",
                      detail::shape_str(targets.sizes()));
  check_floating_or_integral(scores, "scores");
  auto s = to_doubles(scores);
  check_finite(s, "scores");
  auto y = to_binary(targets, "targets");
  const double auc = auc_from_vectors(s, y);
  CONVIRT_CHECK_VALUE(!std::isnan(auc),
                      "roc_auc needs both classes in targets; only one class is present among ",
                      s.size(), " examples");
  return auc;
}

MultiLabelAUC multilabel_roc_auc(const torch::Tensor& scores, const torch::Tensor& targets,
                                 const torch::Tensor& mask) {
  check_defined(scores, "scores");
  check_defined(targets, "targets");
  CONVIRT_CHECK_VALUE(scores.dim() == 1 || scores.dim() == 2, "scores must be [N] or [N, L], got ",
                      detail::shape_str(scores.sizes()));
  CONVIRT_CHECK_VALUE(targets.sizes() == scores.sizes(), "targets must have the shape of scores ",
                      detail::shape_str(scores.sizes()), ", got ",
                      detail::shape_str(targets.sizes()));
  check_floating_or_integral(scores, "scores");
  auto s2 = scores.dim() == 1 ? scores.unsqueeze(1) : scores;
  auto t2 = targets.dim() == 1 ? targets.unsqueeze(1) : targets;
  at::Tensor keep;
  if (mask.defined()) {
    CONVIRT_CHECK_VALUE(mask.sizes() == scores.sizes(), "mask must have the shape of scores ",
                        detail::shape_str(scores.sizes()), ", got ",
                        detail::shape_str(mask.sizes()));
    keep = (mask.dim() == 1 ? mask.unsqueeze(1) : mask).detach().to(at::kCPU).ne(0);
  } else {
    keep = at::ones(s2.sizes(), at::TensorOptions().dtype(at::kBool));
  }
  // Transposed so that each label is one contiguous row.
  auto s = to_doubles(s2.t());
  check_finite(s, "scores");
  auto keep_v = to_int64s(keep.t());
  // Masked-out targets may hold anything (e.g. -1 for uncertain), so check only kept ones.
  auto t_raw = to_doubles(t2.t());
  const int64_t n = s2.size(0), labels = s2.size(1);
  MultiLabelAUC out;
  out.per_label.resize(labels);
  double sum = 0.0;
  for (int64_t l = 0; l < labels; ++l) {
    std::vector<double> ls;
    std::vector<char> ly;
    for (int64_t i = 0; i < n; ++i) {
      const int64_t idx = l * n + i;
      if (!keep_v[idx]) continue;
      const double y = t_raw[idx];
      CONVIRT_CHECK_VALUE(y == 0.0 || y == 1.0,
                          "targets must hold only 0 and 1 where mask keeps them, got ", y,
                          " at row ", i, ", label ", l);
      ls.push_back(s[idx]);
      ly.push_back(y == 1.0);
    }
    out.per_label[l] = auc_from_vectors(ls, ly);
    if (!std::isnan(out.per_label[l])) {
      sum += out.per_label[l];
      ++out.defined_labels;
    }
  }
  out.mean = out.defined_labels > 0 ? sum / static_cast<double>(out.defined_labels)
                                    : std::numeric_limits<double>::quiet_NaN();
  return out;
}

double accuracy(const torch::Tensor& predictions, const torch::Tensor& targets) {
  check_defined(predictions, "predictions");
  check_defined(targets, "targets");
  CONVIRT_CHECK_VALUE(targets.dim() == 1, "targets must be 1-D [N] class ids, got ",
                      detail::shape_str(targets.sizes()));
  check_integral(targets, "targets");
  CONVIRT_CHECK_VALUE(predictions.dim() == 1 || predictions.dim() == 2,
                      "predictions must be scores [N, C] or class ids [N], got ",
                      detail::shape_str(predictions.sizes()));
  CONVIRT_CHECK_VALUE(predictions.size(0) == targets.size(0), "predictions has ",
                      predictions.size(0), " rows but targets has ", targets.size(0));
  CONVIRT_CHECK_VALUE(targets.size(0) > 0, "accuracy needs at least one example, got 0");
  at::Tensor pred;
  if (predictions.dim() == 2) {
    CONVIRT_CHECK_VALUE(predictions.size(1) > 0, "predictions [N, C] needs C >= 1, got ",
                        detail::shape_str(predictions.sizes()));
    check_floating_or_integral(predictions, "predictions");
    auto p = predictions.detach().to(at::kCPU).to(at::kDouble);
    CONVIRT_CHECK_VALUE(at::isfinite(p).all().item<bool>(), "predictions must be finite");
    pred = std::get<1>(p.max(1));
  } else {
    check_integral(predictions, "predictions");
    pred = predictions.detach().to(at::kCPU).to(at::kLong);
  }
  auto t = targets.detach().to(at::kCPU).to(at::kLong);
  return pred.eq(t).to(at::kDouble).mean().item<double>();
}

std::pair<torch::Tensor, torch::Tensor> group_mean(const torch::Tensor& values,
                                                   const torch::Tensor& groups) {
  check_defined(values, "values");
  check_defined(groups, "groups");
  CONVIRT_CHECK_VALUE(values.dim() == 1 || values.dim() == 2, "values must be [N] or [N, L], got ",
                      detail::shape_str(values.sizes()));
  CONVIRT_CHECK_VALUE(groups.dim() == 1 && groups.size(0) == values.size(0),
                      "groups must be [N] with N = ", values.size(0), ", got ",
                      detail::shape_str(groups.sizes()));
  check_integral(groups, "groups");
  check_floating_or_integral(values, "values");
  auto g = groups.detach().to(at::kCPU).to(at::kLong);
  auto [ids, inverse] = [&] {
    auto r = at::_unique(g, /*sorted=*/true, /*return_inverse=*/true);
    return std::make_pair(std::get<0>(r), std::get<1>(r));
  }();
  auto v = values.detach().to(at::kCPU).to(at::kDouble);
  auto v2 = v.dim() == 1 ? v.unsqueeze(1) : v;
  auto sums = at::zeros({ids.size(0), v2.size(1)}, v2.options());
  sums.index_add_(0, inverse, v2);
  auto counts = at::zeros({ids.size(0)}, v2.options());
  counts.index_add_(0, inverse, at::ones({g.size(0)}, v2.options()));
  auto means = sums / counts.unsqueeze(1);
  if (values.dim() == 1) means = means.squeeze(1);
  return {means, ids};
}

double grouped_roc_auc(const torch::Tensor& scores, const torch::Tensor& targets,
                       const torch::Tensor& groups) {
  check_defined(scores, "scores");
  check_defined(targets, "targets");
  CONVIRT_CHECK_VALUE(targets.sizes() == scores.sizes(), "targets must have the shape of scores ",
                      detail::shape_str(scores.sizes()), ", got ",
                      detail::shape_str(targets.sizes()));
  auto y = targets.detach().to(at::kCPU).to(at::kDouble);
  auto [score_means, ids] = group_mean(scores, groups);
  auto [target_means, ids2] = group_mean(y, groups);
  (void)ids2;
  // A group whose images disagree has a fractional mean target.
  auto mixed = target_means.ne(0).logical_and(target_means.ne(1));
  if (mixed.any().item<bool>()) {
    auto bad = mixed.dim() == 2 ? mixed.any(1) : mixed;
    const int64_t first = bad.nonzero()[0][0].item<int64_t>();
    CONVIRT_CHECK_VALUE(false, "all images of a group must share their target; group ",
                        ids[first].item<int64_t>(), " has mixed targets");
  }
  auto auc = multilabel_roc_auc(score_means, target_means);
  CONVIRT_CHECK_VALUE(auc.defined_labels > 0,
                      "grouped_roc_auc needs both classes among the groups; only one is present");
  return auc.mean;
}

std::map<int64_t, double> precision_at_ks(const torch::Tensor& similarity,
                                          const torch::Tensor& query_labels,
                                          const torch::Tensor& candidate_labels,
                                          const std::vector<int64_t>& ks) {
  check_defined(similarity, "similarity");
  check_defined(query_labels, "query_labels");
  check_defined(candidate_labels, "candidate_labels");
  CONVIRT_CHECK_VALUE(similarity.dim() == 2, "similarity must be 2-D [Q, C], got ",
                      detail::shape_str(similarity.sizes()));
  const int64_t q = similarity.size(0), c = similarity.size(1);
  CONVIRT_CHECK_VALUE(query_labels.dim() == 1 && query_labels.size(0) == q,
                      "query_labels must be [Q] with Q = ", q, ", got ",
                      detail::shape_str(query_labels.sizes()));
  CONVIRT_CHECK_VALUE(candidate_labels.dim() == 1 && candidate_labels.size(0) == c,
                      "candidate_labels must be [C] with C = ", c, ", got ",
                      detail::shape_str(candidate_labels.sizes()));
  check_integral(query_labels, "query_labels");
  check_integral(candidate_labels, "candidate_labels");
  CONVIRT_CHECK_VALUE(q > 0, "precision_at_k needs at least one query, got 0");
  CONVIRT_CHECK_VALUE(!ks.empty(), "ks must name at least one k");
  for (auto k : ks) {
    CONVIRT_CHECK_VALUE(k >= 1 && k <= c, "k must be in [1, C = ", c, "], got ", k);
  }
  check_floating_or_integral(similarity, "similarity");
  auto sim = similarity.detach().to(at::kCPU).to(at::kDouble);
  CONVIRT_CHECK_VALUE(at::isfinite(sim).all().item<bool>(), "similarity must be finite");
  // A stable descending sort keeps equal similarities in candidate order: deterministic ties.
  auto order = std::get<1>(at::sort(sim, /*stable=*/true, /*dim=*/1, /*descending=*/true));
  auto cand = candidate_labels.detach().to(at::kCPU).to(at::kLong);
  auto hits = cand.index_select(0, order.reshape({-1}))
                  .reshape({q, c})
                  .eq(query_labels.detach().to(at::kCPU).to(at::kLong).unsqueeze(1))
                  .to(at::kDouble);
  auto cum = hits.cumsum(1);
  std::map<int64_t, double> out;
  for (auto k : ks) {
    out[k] = (cum.select(1, k - 1) / static_cast<double>(k)).mean().item<double>();
  }
  return out;
}

double precision_at_k(const torch::Tensor& similarity, const torch::Tensor& query_labels,
                      const torch::Tensor& candidate_labels, int64_t k) {
  return precision_at_ks(similarity, query_labels, candidate_labels, {k}).at(k);
}

}  // namespace convirt::eval
