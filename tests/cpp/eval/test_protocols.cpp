// The linear protocol, fine-tuning and the label-fraction sweep on small synthetic problems whose
// answer is known: linearly separable features must be learnt, noise must not, budgets and the
// schedule must behave as documented, a seed must fix the result.
#include <convirt/eval/finetune.h>
#include <convirt/eval/linear_probe.h>
#include <convirt/eval/protocol.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <cmath>

#include "test_util.h"

namespace ev = convirt::eval;

namespace {

// Multi-label data: label l is positive when feature direction w_l plus noise exceeds a threshold.
struct Splits {
  ev::LabeledSet train, val, test;
};

ev::LabeledSet multilabel_set(int64_t n, const at::Tensor& w, at::Generator& gen) {
  auto x = at::randn({n, w.size(0)}, gen);
  auto logits = x.mm(w) + 0.3 * at::randn({n, w.size(1)}, gen);
  return {x, logits.gt(0.4).to(at::kFloat)};
}

Splits multilabel_splits(uint64_t seed, int64_t dim = 24, int64_t labels = 3) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto w = at::randn({dim, labels}, gen);
  return {multilabel_set(400, w, gen), multilabel_set(200, w, gen), multilabel_set(200, w, gen)};
}

ev::LabeledSet multiclass_set(int64_t n, const at::Tensor& centres, at::Generator& gen) {
  auto y = at::randint(0, centres.size(0), {n}, gen, at::kLong);
  auto x = centres.index_select(0, y) + at::randn({n, centres.size(1)}, gen);
  return {x, y};
}

}  // namespace

TEST_CASE("linear probe learns separable multi-label features and not noise", "[eval][linear]") {
  auto s = multilabel_splits(1);
  auto opts = ev::ClassifierOptions().learning_rate(1e-2).max_epochs(30).seed(0);
  auto r = ev::train_linear_probe(s.train, s.val, s.test, opts);
  CHECK(r.metric == ev::ClassifierMetric::kMeanAUC);
  CHECK(r.test_metric > 0.9);
  CHECK(r.test_metric == Approx(r.test_mean_auc));
  CHECK(r.test_per_label_auc.size() == 3);
  CHECK(std::isnan(r.test_accuracy));
  CHECK(r.test_probabilities.sizes() == at::IntArrayRef({200, 3}));
  CHECK(r.best_epoch >= 1);
  CHECK(r.best_epoch <= r.epochs);
  CHECK(r.history.size() == static_cast<size_t>(r.epochs));
  CHECK(r.steps == r.epochs * 7);  // ceil(400 / 64) steps per epoch

  // Features carrying no information: AUC near chance.
  auto noise = s;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(99);
  for (auto* set : {&noise.train, &noise.val, &noise.test}) {
    set->inputs = at::randn(set->inputs.sizes(), gen);
  }
  auto rn = ev::train_linear_probe(noise.train, noise.val, noise.test, opts);
  CHECK(rn.test_metric < 0.65);
}

TEST_CASE("linear probe is deterministic for a seed and varies across seeds", "[eval][linear]") {
  auto s = multilabel_splits(2);
  auto opts = ev::ClassifierOptions().learning_rate(1e-3).max_epochs(5);
  auto a = ev::train_linear_probe(s.train, s.val, s.test, opts.seed(4));
  auto b = ev::train_linear_probe(s.train, s.val, s.test, opts.seed(4));
  auto c = ev::train_linear_probe(s.train, s.val, s.test, opts.seed(5));
  CHECK(a.test_probabilities.equal(b.test_probabilities));
  CHECK(a.test_metric == b.test_metric);
  CHECK_FALSE(a.test_probabilities.equal(c.test_probabilities));
}

TEST_CASE("multi-class linear probe reports accuracy", "[eval][linear]") {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto centres = 3.0 * at::randn({3, 16}, gen);
  const int threads_before = at::get_num_threads();
  auto train = multiclass_set(300, centres, gen), val = multiclass_set(100, centres, gen),
       test = multiclass_set(100, centres, gen);
  auto r = ev::train_linear_probe(train, val, test,
                                  ev::ClassifierOptions(ev::ClassificationTask::kMultiClass)
                                      .learning_rate(1e-2)
                                      .max_epochs(20)
                                      .num_threads(1));
  CHECK(at::get_num_threads() == threads_before);  // restored
  CHECK(r.metric == ev::ClassifierMetric::kAccuracy);
  CHECK(r.test_metric > 0.95);
  CHECK(r.test_metric == r.test_accuracy);
  CHECK(r.test_probabilities.sizes() == at::IntArrayRef({100, 3}));
  CHECK(r.test_probabilities.sum(1).allclose(at::ones({100})));
}

TEST_CASE("schedule: lr halves after lr_patience flat epochs, early stop after the patience",
          "[eval][linear]") {
  auto s = multilabel_splits(4);
  // A learning rate too small to move the metric by min_delta: every epoch after the first is flat.
  auto opts = ev::ClassifierOptions()
                  .learning_rate(1e-9)
                  .lr_patience(2)
                  .early_stop_patience(5)
                  .min_delta(0.01)
                  .max_epochs(50);
  auto r = ev::train_linear_probe(s.train, s.val, s.test, opts);
  REQUIRE(r.history.size() == 6);
  CHECK(r.epochs == 6);
  CHECK(r.best_epoch == 1);
  const double lr = 1e-9;
  CHECK(r.history[0].learning_rate == Approx(lr));
  CHECK(r.history[2].learning_rate == Approx(lr));
  CHECK(r.history[3].learning_rate == Approx(lr / 2));
  CHECK(r.history[4].learning_rate == Approx(lr / 2));
  CHECK(r.history[5].learning_rate == Approx(lr / 4));

  // A step budget stops mid-epoch.
  auto rb = ev::train_linear_probe(s.train, s.val, s.test,
                                   ev::ClassifierOptions().max_steps(10).max_epochs(50));
  CHECK(rb.steps == 10);
  CHECK(rb.epochs == 2);
}

TEST_CASE("masked labels and group-level AUC", "[eval][linear]") {
  auto s = multilabel_splits(5, 16, 2);
  // Mark a third of the labels unknown (-1, CheXpert's uncertain) and mask them out.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(8);
  for (auto* set : {&s.train, &s.val, &s.test}) {
    auto unknown = at::rand(set->targets.sizes(), gen).lt(0.33);
    set->mask = unknown.logical_not();
    set->targets = set->targets.masked_fill(unknown, -1.0);
  }
  auto r = ev::train_linear_probe(s.train, s.val, s.test,
                                  ev::ClassifierOptions().learning_rate(1e-2).max_epochs(10));
  CHECK(r.test_metric > 0.85);
  // Without the mask the -1 labels are rejected with a clear message.
  auto bad = s.train;
  bad.mask = torch::Tensor();
  CHECK_THROWS_WITH(ev::train_linear_probe(bad, s.val, s.test),
                    Catch::Matchers::Contains("train.targets must hold only 0 and 1"));

  // Groups of 4 consecutive images share a target (MURA studies): auto metric becomes group AUC.
  auto g = multilabel_splits(6, 16, 1);
  for (auto* set : {&g.train, &g.val, &g.test}) {
    const int64_t n = set->size();
    set->groups = at::arange(n, at::kLong).div(4, "floor");
    set->targets = set->targets.index_select(0, set->groups * 4);
  }
  auto rg = ev::train_linear_probe(g.train, g.val, g.test,
                                   ev::ClassifierOptions().learning_rate(1e-2).max_epochs(10));
  CHECK(rg.metric == ev::ClassifierMetric::kGroupAUC);
  CHECK(rg.test_metric == rg.test_group_auc);
  CHECK(rg.test_group_auc > 0.5);
}

TEST_CASE("protocol inputs are validated", "[eval][linear]") {
  auto s = multilabel_splits(7);
  using Catch::Matchers::Contains;
  auto wrong = s.val;
  wrong.inputs = at::randn({200, 5});
  CHECK_THROWS_WITH(ev::train_linear_probe(s.train, wrong, s.test),
                    Contains("must share their per-example shape"));
  CHECK_THROWS_WITH(
      ev::train_linear_probe(s.train, s.val, s.test, ev::ClassifierOptions().dropout(1.0)),
      Contains("dropout must be in [0, 1), got 1"));
  CHECK_THROWS_WITH(
      ev::train_linear_probe(s.train, s.val, s.test,
                             ev::ClassifierOptions(ev::ClassificationTask::kMultiClass)),
      Contains("train.targets must be class ids [N] for a multi-class task"));
  auto nan = s.train;
  nan.inputs = nan.inputs.clone();
  nan.inputs[0][0] = std::nan("");
  CHECK_THROWS_WITH(ev::train_linear_probe(nan, s.val, s.test), Contains("must be finite"));
  CHECK_THROWS_AS(ev::parse_classification_task("regression"), c10::ValueError);
  CHECK(ev::parse_classifier_metric("group_auc") == ev::ClassifierMetric::kGroupAUC);
}

TEST_CASE("subsample and the fraction x seed sweep", "[eval][sweep]") {
  auto s = multilabel_splits(8);
  auto one = ev::subsample(s.train, 0.01, 3);
  CHECK(one.size() == 4);
  CHECK(one.targets.size(0) == 4);
  CHECK(ev::subsample(s.train, 0.01, 3).inputs.equal(one.inputs));
  CHECK_FALSE(ev::subsample(s.train, 0.01, 4).inputs.equal(one.inputs));
  CHECK(ev::subsample(s.train, 1.0, 3).inputs.equal(s.train.inputs));
  CHECK(ev::subsample(s.train, 0.001, 3, 10).size() == 10);
  CHECK_THROWS_AS(ev::subsample(s.train, 0.0, 3), c10::ValueError);

  std::vector<std::pair<int64_t, uint64_t>> calls;
  auto cells = ev::label_fraction_sweep(
      s.train, {0.1, 1.0}, {0, 1, 2}, [&](const ev::LabeledSet& sub, uint64_t seed) {
        calls.emplace_back(sub.size(), seed);
        return ev::train_linear_probe(
                   sub, s.val, s.test,
                   ev::ClassifierOptions().learning_rate(1e-2).max_epochs(8).seed(seed))
            .test_metric;
      });
  REQUIRE(cells.size() == 2);
  REQUIRE(calls.size() == 6);
  CHECK(calls[0].first == 40);
  CHECK(calls[5].first == 400);
  CHECK(calls[4].second == 1);
  CHECK(cells[0].values.size() == 3);
  CHECK(cells[1].mean > 0.85);
  CHECK(cells[1].mean >= cells[0].mean - 0.02);
  auto sum = ev::summarize({1.0, 2.0, 3.0}, 0.5);
  CHECK(sum.mean == Approx(2.0));
  CHECK(sum.stddev == Approx(1.0));  // sample standard deviation (n - 1)
  CHECK(ev::summarize({4.0}).stddev == 0.0);
}

TEST_CASE("fine-tuning trains the encoder after a head warm-up", "[eval][finetune]") {
  torch::manual_seed(0);
  // Images [N, 1, 6, 6]: the class is the brightness of one quadrant; a tiny conv encoder.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
  auto make = [&](int64_t n) {
    auto y = at::randint(0, 3, {n}, gen, at::kLong);
    auto x = 0.5 * at::randn({n, 1, 6, 6}, gen);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t c = y[i].item<int64_t>();
      x[i][0].narrow(0, c * 2, 2).add_(1.5);
    }
    return ev::LabeledSet{x, y};
  };
  auto train = make(240), val = make(90), test = make(90);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)),
                            torch::nn::BatchNorm2d(4), torch::nn::ReLU(), torch::nn::Flatten(),
                            torch::nn::Linear(4 * 36, 8));
  // A layer the user froze must stay frozen.
  auto frozen_bias = net->parameters()[1];
  frozen_bias.set_requires_grad(false);
  auto frozen_before = frozen_bias.detach().clone();
  auto conv_before = net->parameters()[0].detach().clone();
  auto running_before = net->buffers()[0].detach().clone();
  int augment_calls = 0;
  auto opts = ev::FinetuneOptions(ev::ClassifierOptions(ev::ClassificationTask::kMultiClass)
                                      .learning_rate(3e-3)
                                      .batch_size(32)
                                      .max_epochs(6)
                                      .seed(1)
                                      .num_threads(1))
                  .warmup_steps(15)
                  .augment([&](const torch::Tensor& x, at::Generator& g) {
                    ++augment_calls;
                    return x + 0.01 * at::randn(x.sizes(), g);
                  });
  auto encoder = ev::make_encoder(net, 8);
  auto r = ev::finetune(encoder, train, val, test, opts);
  CHECK(r.test_metric > 0.9);
  CHECK(r.steps == 15 + r.epochs * 8);
  CHECK(augment_calls == r.steps);
  CHECK(frozen_bias.equal(frozen_before));
  CHECK_FALSE(net->parameters()[0].equal(conv_before));
  CHECK_FALSE(net->buffers()[0].equal(running_before));  // BatchNorm statistics restored with it
  CHECK_FALSE(net->is_training());

  // A step budget spent by the warm-up: no full-training epoch, the warmed-up head is reported.
  auto short_opts = opts;
  short_opts.classifier().max_steps(5);
  auto rs = ev::finetune(encoder, train, val, test, short_opts);
  CHECK(rs.steps == 5);
  CHECK(rs.epochs == 0);
  CHECK(rs.history.empty());
  CHECK(rs.best_val_metric > 0.0);

  // The best-validation state was restored: extracting features now matches a fresh pass.
  auto feats = ev::extract_features(encoder, test.inputs, 32);
  CHECK(feats.sizes() == at::IntArrayRef({90, 8}));
  {
    torch::NoGradGuard ng;
    CHECK(feats.allclose(net->forward(test.inputs), 1e-5, 1e-6));
  }

  // Linear protocol on extracted features of the fine-tuned encoder also separates the classes.
  auto lin = ev::train_linear_probe({ev::extract_features(encoder, train.inputs), train.targets},
                                    {ev::extract_features(encoder, val.inputs), val.targets},
                                    {feats, test.targets},
                                    ev::ClassifierOptions(ev::ClassificationTask::kMultiClass)
                                        .learning_rate(1e-2)
                                        .max_epochs(10));
  CHECK(lin.test_metric > 0.85);
}
