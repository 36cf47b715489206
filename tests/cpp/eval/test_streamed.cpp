// Fine-tuning on streamed splits (StreamedSet): it must give exactly the result of the in-memory
// path when the reader delivers the same rows, and refuse readers that deliver something else.
#include <convirt/eval/finetune.h>
#include <convirt/eval/protocol.h>
#include <convirt/eval/streamed_set.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "test_util.h"
// After every header that may pull in glog, whose CHECK would shadow Catch's.
#include <catch2/catch.hpp>

namespace ev = convirt::eval;

namespace {

// Images [N, 1, 6, 6] whose class is the brightness of one band (3 classes).
ev::LabeledSet band_images(int64_t n, at::Generator& gen, bool multilabel) {
  auto y = at::randint(0, 3, {n}, gen, at::kLong);
  auto x = 0.5 * at::randn({n, 1, 6, 6}, gen);
  for (int64_t i = 0; i < n; ++i) x[i][0].narrow(0, y[i].item<int64_t>() * 2, 2).add_(1.5);
  if (multilabel) return {x, at::one_hot(y, 3).to(at::kFloat)};
  return {x, y};
}

// A reader that decodes nothing in bulk: it builds each batch row by row from `images`, the way a
// dataset-backed reader assembles decoded files.
ev::StreamedSet row_by_row(const ev::LabeledSet& set, int* batches_read) {
  auto images = set.inputs;
  return ev::StreamedSet{set.targets, set.mask, set.groups,
                         [images, batches_read](const std::vector<torch::Tensor>& batches,
                                                const ev::BatchConsumer& consume) {
                           for (const auto& rows : batches) {
                             std::vector<torch::Tensor> xs;
                             for (int64_t i = 0; i < rows.size(0); ++i)
                               xs.push_back(images[rows[i].item<int64_t>()]);
                             ++*batches_read;
                             if (!consume(torch::stack(xs))) return;
                           }
                         }};
}

torch::nn::Sequential tiny_net() {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 4, 3).padding(1)),
                               torch::nn::BatchNorm2d(4), torch::nn::ReLU(), torch::nn::Flatten(),
                               torch::nn::Linear(4 * 36, 8));
}

}  // namespace

TEST_CASE("streamed fine-tuning equals in-memory fine-tuning", "[eval][finetune][stream]") {
  for (bool multilabel : {false, true}) {
    DYNAMIC_SECTION((multilabel ? "multi-label" : "multi-class")) {
      auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
      auto train = band_images(150, gen, multilabel), val = band_images(40, gen, multilabel),
           test = band_images(40, gen, multilabel);
      auto task =
          multilabel ? ev::ClassificationTask::kMultiLabel : ev::ClassificationTask::kMultiClass;
      auto opts = ev::FinetuneOptions(ev::ClassifierOptions(task)
                                          .learning_rate(3e-3)
                                          .batch_size(32)
                                          .eval_batch_size(16)
                                          .max_epochs(3)
                                          .seed(2)
                                          .num_threads(1))
                      .warmup_steps(7)
                      .augment([](const torch::Tensor& x, at::Generator& g) {
                        return x + 0.01 * at::randn(x.sizes(), g);
                      });
      // Two copies of one initial network: one per path.
      torch::manual_seed(3);
      auto net_a = tiny_net();
      auto net_b = tiny_net();
      {
        torch::NoGradGuard ng;
        for (size_t i = 0; i < net_a->parameters().size(); ++i)
          net_b->parameters()[i].copy_(net_a->parameters()[i]);
      }
      auto in_memory = ev::finetune(ev::make_encoder(net_a, 8), train, val, test, opts);
      int batches_read = 0;
      auto streamed =
          ev::finetune(ev::make_encoder(net_b, 8), row_by_row(train, &batches_read),
                       row_by_row(val, &batches_read), row_by_row(test, &batches_read), opts);
      CHECK(batches_read > 0);
      CHECK(streamed.steps == in_memory.steps);
      CHECK(streamed.epochs == in_memory.epochs);
      CHECK(streamed.best_epoch == in_memory.best_epoch);
      CHECK(streamed.test_metric == in_memory.test_metric);
      CHECK(streamed.test_probabilities.equal(in_memory.test_probabilities));
      for (size_t i = 0; i < net_a->parameters().size(); ++i)
        CHECK(net_a->parameters()[i].equal(net_b->parameters()[i]));
    }
  }
}

TEST_CASE("StreamedSet::select maps reads to the original rows", "[eval][stream]") {
  auto x = at::arange(10, at::kFloat).view({10, 1});
  ev::LabeledSet set{x, at::arange(10, at::kLong) % 2};
  auto sub = ev::stream_from_memory(set).select(at::tensor({1, 4, 7}, at::kLong));
  CHECK(sub.size() == 3);
  CHECK(sub.targets.equal(at::tensor({1, 0, 1}, at::kLong)));
  std::vector<float> seen;
  sub.read({at::tensor({2, 0}, at::kLong)}, [&](const torch::Tensor& b) {
    for (int64_t i = 0; i < b.size(0); ++i) seen.push_back(b[i][0].item<float>());
    return true;
  });
  CHECK(seen == std::vector<float>{7.f, 1.f});
  // subsample_indices picks the rows subsample picks.
  auto rows = ev::subsample_indices(10, 0.3, 4);
  CHECK(ev::subsample(set, 0.3, 4).inputs.equal(x.index_select(0, rows)));
}

TEST_CASE("a reader that delivers the wrong rows is refused", "[eval][stream]") {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  auto train = band_images(40, gen, false), val = band_images(20, gen, false),
       test = band_images(20, gen, false);
  auto opts =
      ev::FinetuneOptions(
          ev::ClassifierOptions(ev::ClassificationTask::kMultiClass).max_epochs(1).num_threads(1))
          .warmup_steps(0);
  auto net = tiny_net();
  auto good = ev::stream_from_memory(val);
  auto short_batches = good;
  short_batches.read = [&](const std::vector<torch::Tensor>& batches,
                           const ev::BatchConsumer& consume) {
    for (const auto& b : batches) consume(val.inputs.narrow(0, 0, b.size(0) - 1));
  };
  CHECK_THROWS_WITH(ev::finetune(ev::make_encoder(net, 8), ev::stream_from_memory(train),
                                 short_batches, ev::stream_from_memory(test), opts),
                    Catch::Contains("val.read must deliver inputs"));
  auto none = good;
  none.read = nullptr;
  CHECK_THROWS_AS(ev::finetune(ev::make_encoder(net, 8), ev::stream_from_memory(train), none,
                               ev::stream_from_memory(test), opts),
                  c10::ValueError);
  auto silent = good;
  silent.read = [](const std::vector<torch::Tensor>&, const ev::BatchConsumer&) {};
  CHECK_THROWS_WITH(ev::finetune(ev::make_encoder(net, 8), ev::stream_from_memory(train), silent,
                                 ev::stream_from_memory(test), opts),
                    Catch::Contains("delivered 0 of its"));
}
