// The shared classification training loop: mini-batch Adam on a linear head (plus the encoder when
// fine-tuning), validation every epoch with learning-rate decay and early stopping, the best
// validation state restored before the test split is scored.
#include "classifier_loop.h"

#include <convirt/eval/metrics.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adam.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

namespace convirt::eval {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// log-softmax over classes from elementwise ops and small reductions. ATen's fused log_softmax
// opens an OpenMP region on every call even for a [64, 3] batch; on a busy 2-core machine that made
// the multi-class linear protocol ~70x slower than with one thread.
at::Tensor log_softmax(const at::Tensor& logits) {
  return logits - at::logsumexp(logits, {1}, /*keepdim=*/true);
}

// Targets in the form the loss wants: multi-label float [N, L] (+ float mask), multi-class long
// [N].
LabeledSet canonical(const LabeledSet& s, ClassificationTask task) {
  LabeledSet c = s;
  if (task == ClassificationTask::kMultiLabel) {
    c.targets = s.targets.dim() == 1 ? s.targets.unsqueeze(1) : s.targets;
    if (s.mask.defined()) {
      c.mask = (s.mask.dim() == 1 ? s.mask.unsqueeze(1) : s.mask).ne(0).to(at::kFloat);
      // Masked entries may hold -1 (uncertain): zero them so the loss stays finite before masking.
      c.targets = c.targets.to(at::kFloat) * c.mask;
    } else {
      c.targets = c.targets.to(at::kFloat);
    }
  } else {
    c.targets = s.targets.to(at::kLong);
  }
  return c;
}

struct Snapshot {
  std::vector<torch::Tensor> tensors;
};

Snapshot take(const std::vector<torch::Tensor>& ts) {
  Snapshot s;
  for (const auto& t : ts) s.tensors.push_back(t.detach().clone());
  return s;
}

void restore(const std::vector<torch::Tensor>& ts, const Snapshot& s) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < ts.size(); ++i) ts[i].copy_(s.tensors[i]);
}

class ClassifierLoop {
 public:
  // `readers` empty: the splits hold their inputs. Otherwise the splits' inputs are undefined and
  // readers[0..2] read train, val and test batch by batch (fine-tuning on streamed data).
  ClassifierLoop(const Encoder* encoder, const LabeledSet& train, const LabeledSet& val,
                 const LabeledSet& test, const ClassifierOptions& opts, torch::Device device,
                 AugmentFn augment, std::vector<BatchReader> readers = {})
      : encoder_(encoder),
        opts_(opts),
        device_(device),
        augment_(std::move(augment)),
        gen_(at::make_generator<at::CPUGeneratorImpl>(opts.seed())) {
    CONVIRT_CHECK_VALUE(opts.learning_rate() > 0, "learning_rate must be > 0, got ",
                        opts.learning_rate());
    CONVIRT_CHECK_VALUE(opts.weight_decay() >= 0, "weight_decay must be >= 0, got ",
                        opts.weight_decay());
    CONVIRT_CHECK_VALUE(opts.dropout() >= 0 && opts.dropout() < 1,
                        "dropout must be in [0, 1), got ", opts.dropout());
    CONVIRT_CHECK_VALUE(opts.batch_size() > 0, "batch_size must be > 0, got ", opts.batch_size());
    CONVIRT_CHECK_VALUE(opts.eval_batch_size() > 0, "eval_batch_size must be > 0, got ",
                        opts.eval_batch_size());
    CONVIRT_CHECK_VALUE(opts.lr_patience() > 0, "lr_patience must be > 0, got ",
                        opts.lr_patience());
    CONVIRT_CHECK_VALUE(opts.lr_decay() > 0 && opts.lr_decay() <= 1,
                        "lr_decay must be in (0, 1], got ", opts.lr_decay());
    CONVIRT_CHECK_VALUE(opts.early_stop_patience() > 0, "early_stop_patience must be > 0, got ",
                        opts.early_stop_patience());
    CONVIRT_CHECK_VALUE(opts.max_epochs() > 0, "max_epochs must be > 0, got ", opts.max_epochs());
    CONVIRT_CHECK_VALUE(opts.max_steps() >= 0, "max_steps must be >= 0 (0 = unlimited), got ",
                        opts.max_steps());
    CONVIRT_CHECK_VALUE(opts.num_outputs() >= 0, "num_outputs must be >= 0 (0 = infer), got ",
                        opts.num_outputs());
    const auto task = opts.task();
    const bool streamed = !readers.empty();
    if (streamed) {
      TORCH_INTERNAL_ASSERT(readers.size() == 3 && encoder_ != nullptr);
      const char* names[] = {"train", "val", "test"};
      const LabeledSet* sets[] = {&train, &val, &test};
      for (int i = 0; i < 3; ++i) {
        CONVIRT_CHECK_VALUE(static_cast<bool>(readers[i]), names[i], ".read must be set");
        detail::check_targets(*sets[i], task, names[i],
                              sets[i]->targets.defined() ? sets[i]->targets.size(0) : 0);
        readers_.push_back(checked_reader(readers[i], names[i]));
      }
    } else {
      check_labeled_set(train, task, "train");
      check_labeled_set(val, task, "val");
      check_labeled_set(test, task, "test");
      CONVIRT_CHECK_VALUE(train.inputs.sizes().slice(1) == val.inputs.sizes().slice(1) &&
                              train.inputs.sizes().slice(1) == test.inputs.sizes().slice(1),
                          "train, val and test inputs must share their per-example shape, got ",
                          detail::shape_str(train.inputs.sizes()), ", ",
                          detail::shape_str(val.inputs.sizes()), ", ",
                          detail::shape_str(test.inputs.sizes()));
      for (const auto* s : {&train, &val, &test}) {
        readers_.push_back(stream_from_memory(*s).read);
      }
    }
    if (encoder_ == nullptr) {
      CONVIRT_CHECK_VALUE(
          train.inputs.dim() == 2, "the linear protocol trains on features [N, D]; got inputs ",
          detail::shape_str(train.inputs.sizes()), " (use extract_features on images first)");
      CONVIRT_CHECK_VALUE(at::isfinite(train.inputs).all().item<bool>(),
                          "train.inputs must be finite");
    }
    outputs_ = opts.num_outputs() > 0 ? opts.num_outputs()
                                      : infer_num_outputs(task, {&train, &val, &test});
    if (task == ClassificationTask::kMultiLabel) {
      const int64_t labels = train.targets.dim() == 2 ? train.targets.size(1) : 1;
      CONVIRT_CHECK_VALUE(outputs_ == labels, "num_outputs (", outputs_,
                          ") must equal the number of labels (", labels, ")");
      for (const auto* s : {&val, &test}) {
        const int64_t l = s->targets.dim() == 2 ? s->targets.size(1) : 1;
        CONVIRT_CHECK_VALUE(l == labels, "train has ", labels, " labels but another split has ", l);
      }
    } else {
      for (const auto* s : {&train, &val, &test}) {
        const int64_t mx = s->targets.max().item<int64_t>();
        CONVIRT_CHECK_INDEX(mx < outputs_, "class id ", mx, " is out of range for num_outputs ",
                            outputs_);
      }
    }
    train_ = canonical(train, task);
    val_ = canonical(val, task);
    test_ = canonical(test, task);
    // The readers hold the inputs; the splits keep only what is small (labels, mask, groups).
    train_.inputs = val_.inputs = test_.inputs = torch::Tensor();

    metric_ = opts.metric();
    if (metric_ == ClassifierMetric::kAuto) {
      if (task == ClassificationTask::kMultiClass) {
        metric_ = ClassifierMetric::kAccuracy;
      } else {
        metric_ = (val.groups.defined() && test.groups.defined()) ? ClassifierMetric::kGroupAUC
                                                                  : ClassifierMetric::kMeanAUC;
      }
    }
    if (metric_ == ClassifierMetric::kAccuracy) {
      CONVIRT_CHECK_VALUE(task == ClassificationTask::kMultiClass,
                          "metric accuracy needs a multi-class task");
    } else {
      CONVIRT_CHECK_VALUE(task == ClassificationTask::kMultiLabel, "metric ", to_string(metric_),
                          " needs a multi-label task");
    }
    if (metric_ == ClassifierMetric::kGroupAUC) {
      CONVIRT_CHECK_VALUE(val.groups.defined() && test.groups.defined(),
                          "metric group_auc needs val.groups and test.groups");
      CONVIRT_CHECK_VALUE(!val.mask.defined() && !test.mask.defined(),
                          "metric group_auc does not support a label mask");
    }

    // Feature width: known for features, else from the encoder (or one forward pass).
    int64_t in_dim = 0;
    if (encoder_ == nullptr) {
      in_dim = train.inputs.size(1);
    } else if (encoder_->output_dim > 0) {
      in_dim = encoder_->output_dim;
    } else {
      at::NoGradGuard no_grad;
      const bool was_training = encoder_training();
      set_encoder_training(false);
      torch::Tensor first;
      readers_[0]({at::zeros({1}, at::TensorOptions().dtype(at::kLong))},
                  [&](const torch::Tensor& x) {
                    first = x;
                    return false;
                  });
      in_dim = encoder_->forward(first.to(device_)).size(1);
      set_encoder_training(was_training);
    }
    // torch.nn.Linear's default initialisation (bound 1/sqrt(fan_in) for weight and bias), drawn
    // from the protocol's own generator so a seed fixes it.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_dim));
    auto fopts = at::TensorOptions().dtype(at::kFloat);
    weight_ = at::empty({outputs_, in_dim}, fopts).uniform_(-bound, bound, gen_).to(device_);
    bias_ = at::empty({outputs_}, fopts).uniform_(-bound, bound, gen_).to(device_);
    weight_.set_requires_grad(true);
    bias_.set_requires_grad(true);
  }

  ClassifierResult run(int64_t warmup_steps, double warmup_lr) {
    // Training needs autograd even when the caller runs under a NoGradGuard.
    at::AutoGradMode grad_mode(true);
    ClassifierResult result;
    result.metric = metric_;
    if (warmup_steps > 0) warmup(warmup_steps, warmup_lr);

    std::vector<torch::Tensor> trainable{weight_, bias_};
    std::vector<torch::Tensor> saved{weight_, bias_};
    if (encoder_ != nullptr) {
      for (const auto& p : encoder_->parameters) {
        if (p.requires_grad()) trainable.push_back(p);
      }
      for (const auto& p : encoder_->parameters) saved.push_back(p);
      for (const auto& b : encoder_->buffers) saved.push_back(b);
    }
    torch::optim::Adam optim(
        trainable,
        torch::optim::AdamOptions(opts_.learning_rate()).weight_decay(opts_.weight_decay()));
    double lr = opts_.learning_rate();
    double best = -std::numeric_limits<double>::infinity();
    Snapshot best_state = take(saved);
    int64_t bad_lr = 0, bad_stop = 0;
    int64_t epoch = 0;
    for (epoch = 1; epoch <= opts_.max_epochs(); ++epoch) {
      if (budget_spent()) break;
      const double train_loss = train_epoch(optim, /*encoder_trainable=*/true);
      auto [val_loss, val_probs] = evaluate(val_, readers_[1]);
      const double val_metric = compute_metric(val_probs, val_);
      // A validation metric that is undefined (one class only) falls back to the loss, and stays
      // undefined for every epoch because it depends only on the validation labels.
      const double score = std::isfinite(val_metric) ? val_metric : -val_loss;
      result.history.push_back({epoch, steps_, train_loss, val_loss, val_metric, lr});
      if (opts_.verbose()) {
        std::fprintf(
            stderr,
            "[eval] epoch %lld step %lld train_loss %.4f val_loss %.4f val_%s %.4f lr %.2e\n",
            static_cast<long long>(epoch), static_cast<long long>(steps_), train_loss, val_loss,
            to_string(metric_).c_str(), val_metric, lr);
      }
      if (score > best + opts_.min_delta()) {
        best = score;
        best_state = take(saved);
        result.best_epoch = epoch;
        result.best_val_metric = val_metric;
        bad_lr = bad_stop = 0;
      } else {
        ++bad_lr;
        ++bad_stop;
        if (bad_lr >= opts_.lr_patience()) {
          lr *= opts_.lr_decay();
          for (auto& group : optim.param_groups()) {
            static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
          }
          bad_lr = 0;
        }
        if (bad_stop >= opts_.early_stop_patience()) {
          ++epoch;
          break;
        }
      }
    }
    result.epochs = epoch - 1;
    result.steps = steps_;
    if (result.history.empty()) {
      // The budget was spent before a full-training epoch (e.g. by the warm-up): the state after
      // the warm-up is the one reported, so its validation metric is what best_val_metric means.
      auto [val_loss, val_probs] = evaluate(val_, readers_[1]);
      (void)val_loss;
      result.best_val_metric = compute_metric(val_probs, val_);
    }
    restore(saved, best_state);
    set_encoder_training(false);

    auto [test_loss, test_probs] = evaluate(test_, readers_[2]);
    result.test_loss = test_loss;
    result.test_probabilities = test_probs;
    result.test_mean_auc = result.test_accuracy = result.test_group_auc = kNaN;
    if (opts_.task() == ClassificationTask::kMultiLabel) {
      auto auc = multilabel_roc_auc(test_probs, test_.targets, test_.mask);
      result.test_per_label_auc = auc.per_label;
      result.test_mean_auc = auc.mean;
      if (test_.groups.defined() && !test_.mask.defined()) {
        result.test_group_auc = grouped_roc_auc(test_probs, test_.targets, test_.groups);
      }
    } else {
      result.test_accuracy = accuracy(test_probs, test_.targets);
    }
    result.test_metric = compute_metric(test_probs, test_);
    return result;
  }

 private:
  bool budget_spent() const { return opts_.max_steps() > 0 && steps_ >= opts_.max_steps(); }

  bool encoder_training() const {
    return encoder_ != nullptr && encoder_->is_training ? encoder_->is_training() : false;
  }
  void set_encoder_training(bool on) const {
    if (encoder_ != nullptr && encoder_->set_training) encoder_->set_training(on);
  }

  torch::Tensor features(const torch::Tensor& x, bool grad_through_encoder) const {
    if (encoder_ == nullptr) return x;
    if (grad_through_encoder) return encoder_->forward(x);
    at::NoGradGuard no_grad;
    return encoder_->forward(x);
  }

  torch::Tensor head(const torch::Tensor& feats, bool training) {
    auto h = feats.to(at::kFloat);
    if (training && opts_.dropout() > 0) {
      // Dropout with the protocol's generator (torch's dropout draws from the global one).
      const double keep = 1.0 - opts_.dropout();
      auto m = at::empty(h.sizes(), at::TensorOptions().dtype(at::kFloat)).bernoulli_(keep, gen_);
      h = h * m.to(h.device()) / keep;
    }
    return at::linear(h, weight_, bias_);
  }

  // Sum of the per-example (or per-kept-label) losses and how many terms it holds.
  std::pair<torch::Tensor, double> loss_sum(const torch::Tensor& logits, const LabeledSet& batch) {
    if (opts_.task() == ClassificationTask::kMultiLabel) {
      auto y = batch.targets.to(logits.device());
      auto per = at::binary_cross_entropy_with_logits(logits, y, {}, {}, at::Reduction::None);
      if (batch.mask.defined()) {
        auto m = batch.mask.to(logits.device());
        return {(per * m).sum(), m.sum().item<double>()};
      }
      return {per.sum(), static_cast<double>(per.numel())};
    }
    auto y = batch.targets.to(logits.device());
    return {-log_softmax(logits).gather(1, y.unsqueeze(1)).sum(), static_cast<double>(y.size(0))};
  }

  std::vector<torch::Tensor> epoch_batches(int64_t n) {
    auto perm = at::randperm(n, gen_, at::TensorOptions().dtype(at::kLong));
    std::vector<torch::Tensor> out;
    for (int64_t s = 0; s < n; s += opts_.batch_size()) {
      const int64_t len = std::min(opts_.batch_size(), n - s);
      // A trailing batch of one breaks BatchNorm in training mode; it is dropped (it is reshuffled
      // into a full batch next epoch).
      if (len == 1 && n > 1 && encoder_ != nullptr) break;
      out.push_back(perm.narrow(0, s, len));
    }
    return out;
  }

  // A reader that checks what it delivers: one batch per request, with the requested rows.
  static BatchReader checked_reader(BatchReader read, std::string name) {
    return [read = std::move(read), name = std::move(name)](
               const std::vector<torch::Tensor>& batches, const BatchConsumer& consume) {
      size_t k = 0;
      read(batches, [&](const torch::Tensor& x) {
        CONVIRT_CHECK_VALUE(k < batches.size(), name, ".read delivered more batches (", k + 1,
                            ") than requested (", batches.size(), ")");
        CONVIRT_CHECK_VALUE(x.defined() && x.dim() >= 2 && x.size(0) == batches[k].size(0), name,
                            ".read must deliver inputs [", batches[k].size(0), ", ...] for batch ",
                            k, ", got ",
                            x.defined() ? detail::shape_str(x.sizes()) : std::string("undefined"));
        ++k;
        return consume(x);
      });
    };
  }

  static int64_t rows(const LabeledSet& set) { return set.targets.size(0); }

  double step(torch::optim::Optimizer& optim, const torch::Tensor& index,
              const torch::Tensor& inputs, bool encoder_trainable) {
    auto batch = train_.select(index);
    auto x = inputs.to(device_);
    if (encoder_ != nullptr && augment_) x = augment_(x, gen_);
    auto logits = head(features(x, encoder_trainable), /*training=*/true);
    auto [sum, count] = loss_sum(logits, batch);
    auto loss = sum / std::max(count, 1.0);
    const double value = loss.item<double>();
    CONVIRT_CHECK(std::isfinite(value), "classifier loss is not finite (", value, ") at step ",
                  steps_ + 1, "; lower learning_rate or check the inputs");
    optim.zero_grad();
    loss.backward();
    optim.step();
    ++steps_;
    return value;
  }

  void warmup(int64_t steps, double lr) {
    CONVIRT_CHECK_VALUE(lr > 0, "warmup_learning_rate must be > 0, got ", lr);
    torch::optim::Adam optim(std::vector<torch::Tensor>{weight_, bias_},
                             torch::optim::AdamOptions(lr).weight_decay(opts_.weight_decay()));
    // The encoder is frozen and in eval mode: only the head learns, on fixed features.
    set_encoder_training(false);
    int64_t done = 0;
    while (done < steps && !budget_spent()) {
      const auto batches = epoch_batches(rows(train_));
      size_t k = 0;
      readers_[0](batches, [&](const torch::Tensor& x) {
        if (done >= steps || budget_spent()) return false;
        step(optim, batches[k++], x, /*encoder_trainable=*/false);
        ++done;
        return true;
      });
      CONVIRT_CHECK(k > 0 || done >= steps || budget_spent(),
                    "train.read delivered no batch; the warm-up cannot progress");
    }
  }

  double train_epoch(torch::optim::Optimizer& optim, bool encoder_trainable) {
    set_encoder_training(true);
    double sum = 0.0;
    int64_t count = 0;
    const auto batches = epoch_batches(rows(train_));
    readers_[0](batches, [&](const torch::Tensor& x) {
      if (budget_spent()) return false;
      sum += step(optim, batches[static_cast<size_t>(count)], x, encoder_trainable);
      ++count;
      return true;
    });
    set_encoder_training(false);
    return count > 0 ? sum / static_cast<double>(count) : kNaN;
  }

  // Mean loss and probabilities (on CPU) over a split, eval mode, no gradient.
  std::pair<double, torch::Tensor> evaluate(const LabeledSet& set, const BatchReader& read) {
    at::NoGradGuard no_grad;
    set_encoder_training(false);
    const int64_t n = rows(set);
    double loss = 0.0, count = 0.0;
    std::vector<torch::Tensor> batches, probs;
    for (int64_t s = 0; s < n; s += opts_.eval_batch_size()) {
      const int64_t len = std::min(opts_.eval_batch_size(), n - s);
      batches.push_back(at::arange(s, s + len, at::TensorOptions().dtype(at::kLong)));
    }
    read(batches, [&](const torch::Tensor& x) {
      auto batch = set.select(batches[probs.size()]);
      auto logits = head(features(x.to(device_), false), /*training=*/false);
      auto [sum, c] = loss_sum(logits, batch);
      loss += sum.item<double>();
      count += c;
      probs.push_back((opts_.task() == ClassificationTask::kMultiLabel ? at::sigmoid(logits)
                                                                       : log_softmax(logits).exp())
                          .to(at::kCPU));
      return true;
    });
    CONVIRT_CHECK(probs.size() == batches.size(), "a split's read delivered ", probs.size(),
                  " of its ", batches.size(), " batches");
    return {count > 0 ? loss / count : kNaN, at::cat(probs, 0)};
  }

  double compute_metric(const torch::Tensor& probs, const LabeledSet& set) const {
    switch (metric_) {
      case ClassifierMetric::kAccuracy:
        return accuracy(probs, set.targets);
      case ClassifierMetric::kGroupAUC: {
        // Undefined (one class among the groups) reads as NaN, like an undefined mean AUC.
        auto [means, ids] = group_mean(set.targets.to(at::kDouble), set.groups);
        (void)ids;
        auto pos = means.eq(1).sum(0), neg = means.eq(0).sum(0);
        if (!pos.gt(0).logical_and(neg.gt(0)).any().item<bool>()) return kNaN;
        return grouped_roc_auc(probs, set.targets, set.groups);
      }
      default:
        return multilabel_roc_auc(probs, set.targets, set.mask).mean;
    }
  }

  const Encoder* encoder_;
  ClassifierOptions opts_;
  torch::Device device_;
  AugmentFn augment_;
  at::Generator gen_;
  LabeledSet train_, val_, test_;
  std::vector<BatchReader> readers_;
  ClassifierMetric metric_ = ClassifierMetric::kAuto;
  int64_t outputs_ = 0;
  int64_t steps_ = 0;
  torch::Tensor weight_, bias_;
};

}  // namespace

namespace detail {

ClassifierResult run_classifier_loop(const Encoder* encoder, const LabeledSet& train,
                                     const LabeledSet& val, const LabeledSet& test,
                                     const ClassifierOptions& options, torch::Device device,
                                     AugmentFn augment, std::vector<BatchReader> readers,
                                     int64_t warmup_steps, double warmup_lr) {
  ClassifierLoop loop(encoder, train, val, test, options, device, std::move(augment),
                      std::move(readers));
  return loop.run(warmup_steps, warmup_lr);
}

}  // namespace detail
}  // namespace convirt::eval
