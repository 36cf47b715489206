// Names, label-set checks, label-fraction subsampling and the sweep summary shared by both
// classification protocols.
#include <convirt/core/check.h>
#include <convirt/eval/protocol.h>

#include "classifier_loop.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace convirt::eval {

// ---------------------------------------------------------------------------------------------------
// Names

ClassificationTask parse_classification_task(const std::string& name) {
  if (name == "multilabel" || name == "binary") return ClassificationTask::kMultiLabel;
  if (name == "multiclass") return ClassificationTask::kMultiClass;
  CONVIRT_CHECK_VALUE(
      false, "task must be one of \"multilabel\", \"binary\", \"multiclass\", got \"", name, "\"");
  return ClassificationTask::kMultiLabel;
}

std::string to_string(ClassificationTask task) {
  return task == ClassificationTask::kMultiLabel ? "multilabel" : "multiclass";
}

ClassifierMetric parse_classifier_metric(const std::string& name) {
  if (name == "auto") return ClassifierMetric::kAuto;
  if (name == "mean_auc") return ClassifierMetric::kMeanAUC;
  if (name == "accuracy") return ClassifierMetric::kAccuracy;
  if (name == "group_auc") return ClassifierMetric::kGroupAUC;
  CONVIRT_CHECK_VALUE(false,
                      "metric must be one of \"auto\", \"mean_auc\", \"accuracy\", \"group_auc\", "
                      "got \"",
                      name, "\"");
  return ClassifierMetric::kAuto;
}

std::string to_string(ClassifierMetric metric) {
  switch (metric) {
    case ClassifierMetric::kAuto:
      return "auto";
    case ClassifierMetric::kMeanAUC:
      return "mean_auc";
    case ClassifierMetric::kAccuracy:
      return "accuracy";
    case ClassifierMetric::kGroupAUC:
      return "group_auc";
  }
  return "auto";
}

// ---------------------------------------------------------------------------------------------------
// Data

LabeledSet LabeledSet::select(const torch::Tensor& index) const {
  auto pick = [&](const torch::Tensor& t) {
    return t.defined() ? t.index_select(0, index.to(t.device())) : t;
  };
  return LabeledSet{pick(inputs), pick(targets), pick(mask), pick(groups)};
}

namespace detail {

// The checks of a split's targets, mask and groups against its number of examples `n`.
void check_targets(const LabeledSet& set, ClassificationTask task, const std::string& name,
                   int64_t n) {
  CONVIRT_CHECK_VALUE(set.targets.defined(), name, ".targets must be a defined tensor");
  CONVIRT_CHECK_VALUE(n > 0, name, " must hold at least one example, got 0");
  CONVIRT_CHECK_VALUE(set.targets.dim() >= 1 && set.targets.size(0) == n, name,
                      ".targets must have N = ", n, " rows, got ",
                      detail::shape_str(set.targets.sizes()));
  if (task == ClassificationTask::kMultiLabel) {
    CONVIRT_CHECK_VALUE(set.targets.dim() <= 2, name, ".targets must be [N, L] or [N], got ",
                        detail::shape_str(set.targets.sizes()));
    CONVIRT_CHECK_TYPE(!set.targets.is_complex(), name, ".targets must be real, got ",
                       set.targets.scalar_type());
    auto y = set.targets.detach().to(at::kCPU).to(at::kDouble);
    auto valid = y.eq(0).logical_or(y.eq(1));
    if (set.mask.defined()) {
      CONVIRT_CHECK_VALUE(
          set.mask.sizes() == set.targets.sizes(), name, ".mask must have the shape of targets ",
          detail::shape_str(set.targets.sizes()), ", got ", detail::shape_str(set.mask.sizes()));
      valid = valid.logical_or(set.mask.detach().to(at::kCPU).eq(0));
    }
    CONVIRT_CHECK_VALUE(valid.all().item<bool>(), name,
                        ".targets must hold only 0 and 1 (where the mask keeps them) for a "
                        "multi-label task");
  } else {
    CONVIRT_CHECK_VALUE(set.targets.dim() == 1, name,
                        ".targets must be class ids [N] for a multi-class task, got ",
                        detail::shape_str(set.targets.sizes()));
    CONVIRT_CHECK_TYPE(!at::isFloatingType(set.targets.scalar_type()) &&
                           set.targets.scalar_type() != at::kBool && !set.targets.is_complex(),
                       name, ".targets must be integer class ids for a multi-class task, got ",
                       set.targets.scalar_type());
    CONVIRT_CHECK_VALUE(set.targets.min().item<int64_t>() >= 0, name,
                        ".targets must be class ids >= 0, got ", set.targets.min().item<int64_t>());
    CONVIRT_CHECK_VALUE(!set.mask.defined(), name,
                        ".mask is only meaningful for multi-label tasks; leave it undefined");
  }
  if (set.groups.defined()) {
    CONVIRT_CHECK_VALUE(set.groups.dim() == 1 && set.groups.size(0) == n, name,
                        ".groups must be [N] with N = ", n, ", got ",
                        detail::shape_str(set.groups.sizes()));
    CONVIRT_CHECK_TYPE(
        !at::isFloatingType(set.groups.scalar_type()) && set.groups.scalar_type() != at::kBool,
        name, ".groups must hold integer ids, got ", set.groups.scalar_type());
  }
}

}  // namespace detail

void check_labeled_set(const LabeledSet& set, ClassificationTask task, const std::string& name) {
  CONVIRT_CHECK_VALUE(set.inputs.defined(), name, ".inputs must be a defined tensor");
  CONVIRT_CHECK_VALUE(set.inputs.dim() >= 2, name,
                      ".inputs must be features [N, D] or images [N, C, H, W], got ",
                      detail::shape_str(set.inputs.sizes()));
  CONVIRT_CHECK_TYPE(at::isFloatingType(set.inputs.scalar_type()), name,
                     ".inputs must be floating, got ", set.inputs.scalar_type());
  detail::check_targets(set, task, name, set.inputs.size(0));
}

int64_t infer_num_outputs(ClassificationTask task, const std::vector<const LabeledSet*>& sets) {
  int64_t out = 0;
  for (const auto* s : sets) {
    if (s == nullptr || !s->targets.defined() || s->targets.numel() == 0) continue;
    if (task == ClassificationTask::kMultiLabel) {
      out = std::max<int64_t>(out, s->targets.dim() == 2 ? s->targets.size(1) : 1);
    } else {
      out = std::max<int64_t>(out, s->targets.max().item<int64_t>() + 1);
    }
  }
  if (task == ClassificationTask::kMultiClass) out = std::max<int64_t>(out, 2);
  CONVIRT_CHECK_VALUE(out > 0, "cannot infer the number of outputs: no targets given");
  return out;
}

torch::Tensor subsample_indices(int64_t n, double fraction, uint64_t seed, int64_t min_examples) {
  CONVIRT_CHECK_VALUE(fraction > 0.0 && fraction <= 1.0, "fraction must be in (0, 1], got ",
                      fraction);
  CONVIRT_CHECK_VALUE(min_examples >= 0, "min_examples must be >= 0, got ", min_examples);
  CONVIRT_CHECK_VALUE(n >= 0, "n must be >= 0, got ", n);
  if (fraction == 1.0 || n == 0) return at::arange(n, at::TensorOptions().dtype(at::kLong));
  int64_t k = static_cast<int64_t>(std::llround(fraction * static_cast<double>(n)));
  k = std::min(n, std::max(k, min_examples));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  // Sorted so that the subset keeps the original order (only membership is random).
  return std::get<0>(
      at::randperm(n, gen, at::TensorOptions().dtype(at::kLong)).narrow(0, 0, k).sort());
}

LabeledSet subsample(const LabeledSet& set, double fraction, uint64_t seed, int64_t min_examples) {
  const int64_t n = set.size();
  auto index = subsample_indices(n, fraction, seed, min_examples);
  if (fraction == 1.0 || n == 0) return set;
  return set.select(index);
}

SweepCell summarize(const std::vector<double>& values, double fraction) {
  SweepCell cell;
  cell.fraction = fraction;
  cell.values = values;
  if (values.empty()) {
    cell.mean = cell.stddev = std::numeric_limits<double>::quiet_NaN();
    return cell;
  }
  double sum = 0.0;
  for (double v : values) sum += v;
  cell.mean = sum / static_cast<double>(values.size());
  double sq = 0.0;
  for (double v : values) sq += (v - cell.mean) * (v - cell.mean);
  cell.stddev = values.size() > 1 ? std::sqrt(sq / static_cast<double>(values.size() - 1)) : 0.0;
  return cell;
}

std::vector<SweepCell> label_fraction_sweep(
    const LabeledSet& train, const std::vector<double>& fractions,
    const std::vector<uint64_t>& seeds,
    const std::function<double(const LabeledSet& train_subset, uint64_t seed)>& run) {
  CONVIRT_CHECK_VALUE(!fractions.empty(), "fractions must name at least one fraction");
  CONVIRT_CHECK_VALUE(!seeds.empty(), "seeds must name at least one seed");
  CONVIRT_CHECK_VALUE(static_cast<bool>(run), "run must be a callable");
  std::vector<SweepCell> cells;
  for (double f : fractions) {
    std::vector<double> values;
    for (uint64_t seed : seeds) values.push_back(run(subsample(train, f, seed), seed));
    cells.push_back(summarize(values, f));
  }
  return cells;
}

}  // namespace convirt::eval
