// Synchronised BatchNorm: on one rank against torch::nn::BatchNorm2d and finite differences; the
// conversion of module trees; and on 2 ranks (Gloo, localhost, this binary's hidden "sync_bn
// worker" case playing each rank) a ResNet fine-tuning step loop and the whole Pretrainer, each
// against one process with the doubled batch, in float64.

#include <convirt/data/synthetic/generator.h>
#include <convirt/dist/grad_sync.h>
#include <convirt/dist/launch.h>
#include <convirt/dist/process_group.h>
#include <convirt/dist/sharding.h>
#include <convirt/dist/sync_batch_norm.h>
#include <convirt/models/registry.h>
#include <convirt/models/resnet.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/train/pretrainer.h>

#include <torch/torch.h>

#include "self_launch.h"
#include "small_pairs.h"
#include "test_util.h"

// After the LibTorch headers: glog (through c10) defines its own CHECK.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace convirt;
using Catch::Matchers::Contains;
using convirt::test::max_abs_diff;
using convirt::test::ScopedEnv;

// ---- One rank ----------------------------------------------------------------------------------

struct BatchNormPair {
  torch::nn::BatchNorm2d plain{nullptr};
  dist::SyncBatchNorm sync{nullptr};
};

BatchNormPair make_pair(const torch::nn::BatchNorm2dOptions& options, torch::Dtype dtype) {
  BatchNormPair p{torch::nn::BatchNorm2d(options),
                  dist::SyncBatchNorm(options, dist::DistributedContext())};
  p.plain->to(dtype);
  p.sync->to(dtype);
  torch::NoGradGuard no_grad;
  if (options.affine()) {
    // Not the initial ones and zeros, so that the affine part is exercised.
    auto w = torch::rand({options.num_features()}, torch::kDouble) + 0.5;
    auto b = torch::randn({options.num_features()}, torch::kDouble);
    p.plain->weight.copy_(w);
    p.sync->weight.copy_(w);
    p.plain->bias.copy_(b);
    p.sync->bias.copy_(b);
  }
  return p;
}

// Forward and backward of both layers on the same input and upstream gradient, a few times (the
// running statistics accumulate); returns the largest difference of anything they compute.
double compare_with_batch_norm(const torch::nn::BatchNorm2dOptions& options, torch::Dtype dtype) {
  torch::manual_seed(3);
  auto p = make_pair(options, dtype);
  double worst = 0;
  for (int step = 0; step < 3; ++step) {
    auto x = (torch::randn({5, options.num_features(), 3, 4}, torch::kDouble) * 2 + 1).to(dtype);
    auto g = torch::randn({5, options.num_features(), 3, 4}, torch::kDouble).to(dtype);
    auto xa = x.clone().requires_grad_(true);
    auto xb = x.clone().requires_grad_(true);
    auto ya = p.plain(xa);
    auto yb = p.sync(xb);
    (ya * g).sum().backward();
    (yb * g).sum().backward();
    worst = std::max(worst, max_abs_diff(ya, yb));
    worst = std::max(worst, max_abs_diff(xa.grad(), xb.grad()));
    if (options.affine()) {
      worst = std::max(worst, max_abs_diff(p.plain->weight.grad(), p.sync->weight.grad()));
      worst = std::max(worst, max_abs_diff(p.plain->bias.grad(), p.sync->bias.grad()));
      p.plain->weight.mutable_grad().zero_();
      p.sync->weight.mutable_grad().zero_();
      p.plain->bias.mutable_grad().zero_();
      p.sync->bias.mutable_grad().zero_();
    }
    if (options.track_running_stats()) {
      worst = std::max(worst, max_abs_diff(p.plain->running_mean, p.sync->running_mean));
      worst = std::max(worst, max_abs_diff(p.plain->running_var, p.sync->running_var));
      CHECK(p.plain->num_batches_tracked.item<int64_t>() ==
            p.sync->num_batches_tracked.item<int64_t>());
    }
  }
  if (options.track_running_stats()) {
    // Evaluation: torch's own BatchNorm with the running statistics, bit for bit (given the same
    // statistics: the synchronised ones above agree to rounding).
    p.plain->eval();
    p.sync->eval();
    torch::NoGradGuard no_grad;
    p.sync->running_mean.copy_(p.plain->running_mean);
    p.sync->running_var.copy_(p.plain->running_var);
    auto x = torch::randn({2, options.num_features(), 3, 4}, torch::kDouble).to(dtype);
    CHECK(torch::equal(p.plain(x), p.sync(x)));
  }
  return worst;
}

// ---- Two ranks ---------------------------------------------------------------------------------

constexpr int64_t kGlobal = 7;  // rows per fine-tuning step: shards of 4 and 3
constexpr int64_t kFineTuneSteps = 3;
constexpr double kTolerance = 1e-10;

// A ResNet encoder with BatchNorm everywhere (every stage, the downsample projections) and a
// linear head, in float64; identical on every process.
models::ResNet make_classifier() {
  torch::manual_seed(0);
  models::ResNet net(
      models::ResNetOptions(18).base_width(4).layers({1, 1, 1, 1}).in_channels(1).num_classes(3));
  net->to(torch::kDouble);
  return net;
}

std::pair<torch::Tensor, torch::Tensor> global_batch(int64_t step) {
  torch::manual_seed(100 + step);
  auto x = torch::randn({kGlobal, 1, 32, 32}, torch::kDouble) * 0.7 + 0.3;
  auto y = torch::randint(0, 3, {kGlobal}, torch::kLong);
  return {x, y};
}

// A user's fine-tuning loop: cross-entropy over the global batch (each rank adds its rows' share,
// so the per-rank gradients sum to the global one), SGD with momentum. Returns the global loss of
// each step, then every parameter and buffer.
std::vector<torch::Tensor> fine_tune(const dist::DistributedContext& ctx, bool sync) {
  auto net = make_classifier();
  // The stem's, two per block, and the downsample projections' of stages 2-4.
  if (sync) CHECK(dist::convert_sync_batch_norm(*net, ctx) == 12);
  std::unique_ptr<dist::GradientSynchronizer> grads;
  if (ctx.is_distributed()) {
    dist::broadcast_module_state(*net, ctx);
    grads = std::make_unique<dist::GradientSynchronizer>(net->parameters(), ctx);
  }
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  net->train();
  std::vector<torch::Tensor> out;
  std::vector<double> losses;
  for (int64_t step = 0; step < kFineTuneSteps; ++step) {
    auto [x, y] = global_batch(step);
    const auto shard = dist::shard_range(kGlobal, ctx.rank(), ctx.world_size());
    x = x.narrow(0, shard.begin, shard.size());
    y = y.narrow(0, shard.begin, shard.size());
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(
                    net->classify(x), y,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)) /
                static_cast<double>(kGlobal);
    loss.backward();
    if (grads) grads->synchronize();
    opt.step();
    auto total = loss.detach().clone();
    ctx.all_reduce_(total);
    losses.push_back(total.item<double>());
  }
  out.push_back(torch::tensor(losses, torch::kDouble));
  for (const auto& p : net->named_parameters()) out.push_back(p.value().detach().clone());
  for (const auto& b : net->named_buffers()) out.push_back(b.value().detach().clone());
  return out;
}

constexpr int64_t kImage = 32;
constexpr int64_t kPretrainSteps = 4;
constexpr int64_t kBatch = 4;  // per rank; the 1-rank reference uses 2 * kBatch

// The Pretrainer's job: the small paired set and a float64 ConVIRT model with the tiny ResNet-18
// (BatchNorm in training mode).
struct PretrainData : convirt::test::SmallPairs {
  explicit PretrainData(const fs::path& dir) : SmallPairs(dir, kImage, 200) {}
  models::ConVIRTModel model(uint64_t seed) const {
    models::ModelConfig c;
    c.image_encoder("resnet18")
        .resnet(models::ResNetOptions(18).base_width(4).layers({1, 1, 1, 1}).in_channels(1));
    return float64_model(c, seed);
  }
};

train::PretrainOptions pretrain_options(const fs::path& out, int64_t batch_size,
                                        train::SyncBatchNormMode mode) {
  return train::PretrainOptions(out.string())
      .batch_size(batch_size)
      .eval_every(2)
      .max_evals(0)
      .max_steps(kPretrainSteps)
      .max_length(24)
      .log_every(1)
      .learning_rate(1e-2)
      .workers(1)
      .verbose(false)
      .seed(5)
      .sync_batch_norm(mode);
}

// Every parameter and buffer after the last step (before run() swaps in the best-validation
// weights), then the best validation loss.
std::vector<torch::Tensor> pretrain(const PretrainData& d, models::ConVIRTModel model,
                                    train::PretrainOptions options) {
  train::Pretrainer trainer(model, d.tokenizer, d.train, d.val, std::move(options));
  std::vector<torch::Tensor> out;
  auto r = trainer.run([&](const train::StepMetrics& m) {
    if (!m.is_eval && m.step == kPretrainSteps) {
      for (const auto& p : trainer.model()->named_parameters())
        out.push_back(p.value().detach().clone());
      for (const auto& b : trainer.model()->named_buffers())
        out.push_back(b.value().detach().clone());
    }
    return true;
  });
  out.push_back(torch::tensor(r.best_val_loss, torch::kDouble));
  return out;
}

using convirt::test::JobResult;
using convirt::test::load_tensors;

JobResult run_job(const std::string& scenario, const fs::path& dir) {
  return convirt::test::launch_self_as_ranks(
      "sync_bn worker", {{"CONVIRT_TEST_SCENARIO", scenario}, {"CONVIRT_TEST_OUT", dir.string()}});
}

// Largest difference over the entries of two results of the same run shape.
double max_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, max_abs_diff(a[i], b[i]));
  return worst;
}

bool identical(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

// One rank of a job started by run_job(); hidden ("[.]") so only the launcher runs it.
TEST_CASE("sync_bn worker", "[.][sync_bn_worker]") {
  const char* scenario = std::getenv("CONVIRT_TEST_SCENARIO");
  const char* out_dir = std::getenv("CONVIRT_TEST_OUT");
  REQUIRE(scenario != nullptr);
  REQUIRE(out_dir != nullptr);
  const fs::path dir(out_dir);
  const std::string s = scenario;
  torch::set_num_threads(1);
  auto ctx = dist::DistributedContext::from_environment();
  REQUIRE(ctx.world_size() == 2);
  const std::string rank = std::to_string(ctx.rank());
  if (s == "finetune") {
    torch::save(fine_tune(ctx, /*sync=*/true), (dir / ("sync_rank" + rank + ".pt")).string());
    torch::save(fine_tune(ctx, /*sync=*/false), (dir / ("local_rank" + rank + ".pt")).string());
  } else if (s == "pretrain") {
    PretrainData d(dir);
    // Each rank initialises differently: the trainer starts them all from rank 0's weights.
    for (const auto mode : {train::SyncBatchNormMode::kAuto, train::SyncBatchNormMode::kOff}) {
      const std::string name = train::to_string(mode);
      auto result = pretrain(d, d.model(1 + 10 * ctx.rank()),
                             pretrain_options(dir / name, kBatch, mode).distributed(ctx));
      torch::save(result, (dir / (name + "_rank" + rank + ".pt")).string());
    }
  } else {
    FAIL("unknown scenario " << s);
  }
}

TEST_CASE("SyncBatchNorm on one rank computes torch::nn::BatchNorm2d", "[dist][sync_bn]") {
  using Options = torch::nn::BatchNorm2dOptions;
  INFO("float64");
  CHECK(compare_with_batch_norm(Options(3), torch::kDouble) < 1e-12);
  CHECK(compare_with_batch_norm(Options(3).momentum(c10::nullopt), torch::kDouble) < 1e-12);
  CHECK(compare_with_batch_norm(Options(2).affine(false), torch::kDouble) < 1e-12);
  CHECK(compare_with_batch_norm(Options(2).track_running_stats(false), torch::kDouble) < 1e-12);
  INFO("float32");
  CHECK(compare_with_batch_norm(Options(3), torch::kFloat) < 1e-5);

  // Names and printout: a BatchNorm2d's, and says it is synchronised.
  dist::SyncBatchNorm bn(Options(4), dist::DistributedContext());
  std::vector<std::string> names;
  for (const auto& p : bn->named_parameters()) names.push_back(p.key());
  for (const auto& b : bn->named_buffers()) names.push_back(b.key());
  CHECK(names == std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                          "num_batches_tracked"});
  std::ostringstream printed;
  printed << *bn;
  CHECK_THAT(printed.str(), Contains("BatchNorm2d(4") && Contains("synchronised over 1 rank"));

  // Bad input is named.
  CHECK_THROWS_WITH(bn(torch::randn({2, 4})), Contains("4-D input [n, C, H, W], got [2, 4]"));
  CHECK_THROWS_WITH(bn(torch::randn({1, 4, 1, 1})),
                    Contains("more than 1 value per channel in the global batch"));
  CHECK_THROWS_WITH(
      dist::sync_batch_norm(torch::randn({2, 3, 2}), torch::ones({4}), torch::zeros({4}), {}, {},
                            0.1, 1e-5, dist::DistributedContext()),
      Contains("must be [C] = [3]") && Contains("got [4]"));
}

TEST_CASE("SyncBatchNorm's backward matches finite differences (float64)", "[dist][sync_bn]") {
  torch::manual_seed(7);
  const dist::DistributedContext one;
  auto x = torch::randn({4, 3, 2, 3}, torch::kDouble) * 1.5 + 0.5;
  auto w = torch::rand({3}, torch::kDouble) + 0.5;
  auto b = torch::randn({3}, torch::kDouble);
  const double h = 1e-6;
  for (int probe = 0; probe < 2; ++probe) {
    auto v = torch::randn({4, 3, 2, 3}, torch::kDouble);  // a random upstream gradient
    auto f = [&](const torch::Tensor& xi, const torch::Tensor& wi, const torch::Tensor& bi) {
      return (dist::sync_batch_norm(xi, wi, bi, {}, {}, 0.1, 1e-5, one) * v).sum();
    };
    auto xg = x.clone().requires_grad_(true);
    auto wg = w.clone().requires_grad_(true);
    auto bg = b.clone().requires_grad_(true);
    f(xg, wg, bg).backward();
    torch::NoGradGuard no_grad;
    double worst = 0;
    const std::vector<std::pair<torch::Tensor*, torch::Tensor>> inputs{
        {&x, xg.grad()}, {&w, wg.grad()}, {&b, bg.grad()}};
    for (const auto& [t, analytic] : inputs) {
      auto flat = t->view({-1});
      auto grad = analytic.reshape({-1});
      for (int64_t i = 0; i < flat.numel(); ++i) {
        const double keep = flat[i].item<double>();
        flat[i] = keep + h;
        const double up = f(x, w, b).item<double>();
        flat[i] = keep - h;
        const double down = f(x, w, b).item<double>();
        flat[i] = keep;
        worst = std::max(worst, std::abs((up - down) / (2 * h) - grad[i].item<double>()));
      }
    }
    CHECK(worst < 1e-6);
  }
}

TEST_CASE("convert_sync_batch_norm keeps names and tensors, and refuses what it cannot reach",
          "[dist][sync_bn]") {
  const dist::DistributedContext one;
  // A ResNet: its convirt::models::BatchNorm2d layers are switched in place.
  auto net = make_classifier();
  const auto before = net->named_parameters();
  const auto buffers_before = net->named_buffers();
  CHECK(dist::count_batch_norm(*net) == 12);
  CHECK(dist::convert_sync_batch_norm(*net, one) == 12);
  const auto after = net->named_parameters();
  REQUIRE(after.keys() == before.keys());
  for (const auto& p : before) CHECK(after[p.key()].is_same(p.value()));
  CHECK(net->named_buffers().keys() == buffers_before.keys());
  CHECK(net->bn1->as<models::BatchNorm2d>()->statistics() != nullptr);
  CHECK(net->layer2[0]
            ->as<models::BasicBlock>()
            ->downsample[1]
            ->as<models::BatchNorm2d>()
            ->statistics() != nullptr);
  // A clone is a convirt::models::BatchNorm2d of its own, without the process group.
  auto cloned = std::dynamic_pointer_cast<models::BatchNorm2dImpl>(net->bn1->clone());
  REQUIRE(cloned != nullptr);
  CHECK(cloned->statistics() == nullptr);
  CHECK_FALSE(cloned->weight.is_same(net->bn1->weight));
  CHECK(torch::equal(cloned->running_var, net->bn1->running_var));
  CHECK(dist::revert_sync_batch_norm(*net) == 12);
  CHECK(net->bn1->as<models::BatchNorm2d>()->statistics() == nullptr);

  // torch::nn::BatchNorm2d inside containers is replaced under its name, sharing its tensors, and
  // the container calls the replacement.
  struct Containers : torch::nn::Module {
    Containers() {
      seq = register_module(
          "seq", torch::nn::Sequential(torch::nn::Conv2d(1, 2, 3), torch::nn::BatchNorm2d(2)));
      list = register_module("list", torch::nn::ModuleList(torch::nn::BatchNorm2d(2)));
    }
    torch::nn::Sequential seq{nullptr};
    torch::nn::ModuleList list{nullptr};
  };
  auto holder = std::make_shared<Containers>();
  const auto seq_before = holder->named_parameters();
  const auto seq_buffers = holder->named_buffers();
  CHECK(dist::convert_sync_batch_norm(*holder, one) == 2);
  const auto seq_after = holder->named_parameters();
  REQUIRE(seq_after.keys() == seq_before.keys());
  for (const auto& p : seq_before) CHECK(seq_after[p.key()].is_same(p.value()));
  for (const auto& b : seq_buffers) CHECK(holder->named_buffers()[b.key()].is_same(b.value()));
  auto& seq = holder->seq;
  auto* replaced = seq[1]->as<models::BatchNorm2d>();
  REQUIRE(replaced != nullptr);
  CHECK(replaced->statistics() != nullptr);
  CHECK(seq->named_children()["1"].get() == seq->ptr(1).get());
  REQUIRE(holder->list[0]->as<models::BatchNorm2d>() != nullptr);
  CHECK(holder->list[0]->as<models::BatchNorm2d>()->statistics() != nullptr);
  // The Sequential's forward goes through the replacement: one more batch tracked.
  seq->forward(torch::randn({2, 1, 5, 5}));
  CHECK(replaced->num_batches_tracked.item<int64_t>() == 1);

  // A torch::nn::BatchNorm2d that the parent holds in a member is refused, the module unchanged.
  struct Held : torch::nn::Module {
    Held() : conv(register_module("conv", torch::nn::Conv2d(1, 2, 3))) {
      seq = register_module("seq", torch::nn::Sequential(torch::nn::BatchNorm2d(2)));
      bn = register_module("bn", torch::nn::BatchNorm2d(2));
    }
    torch::nn::Conv2d conv;
    torch::nn::Sequential seq{nullptr};
    torch::nn::BatchNorm2d bn{nullptr};
  };
  auto held = std::make_shared<Held>();
  CHECK_THROWS_WITH(dist::convert_sync_batch_norm(*held, one),
                    Contains("'bn' is a torch::nn::BatchNorm2d that is also held") &&
                        Contains("convirt::models::BatchNorm2d"));
  CHECK(held->seq[0]->as<models::BatchNorm2d>() == nullptr);  // nothing was converted
  CHECK_THROWS_WITH(dist::convert_sync_batch_norm(*torch::nn::BatchNorm2d(2), one),
                    Contains("cannot be converted in place"));
}

TEST_CASE("2 ranks: fine-tuning with SyncBatchNorm equals 1 rank with the doubled batch",
          "[dist][sync_bn][multiprocess]") {
  test::TempDir dir("convirt-sync-bn");
  const auto expected = fine_tune(dist::DistributedContext(), /*sync=*/false);
  auto job = run_job("finetune", dir.path());
  if (job.skipped) return;
  REQUIRE(job.rc == 0);
  const auto r0 = load_tensors(dir / "sync_rank0.pt");
  const auto r1 = load_tensors(dir / "sync_rank1.pt");
  // Losses of every step, weights, running statistics and batch counters.
  const double sync_diff = max_diff(r0, expected);
  INFO("synchronised: max difference " << sync_diff);
  CHECK(sync_diff < kTolerance);
  CHECK(identical(r0, r1));  // the ranks never drift apart
  // The weights moved, so the comparison is not between initial states.
  const auto initial = make_classifier()->parameters();
  CHECK(max_abs_diff(initial[0], expected[1]) > 1e-3);

  // Without synchronisation each rank normalises its own shard: the run differs.
  const auto l0 = load_tensors(dir / "local_rank0.pt");
  const double local_diff = max_diff(l0, expected);
  INFO("per-rank BatchNorm: max difference " << local_diff);
  CHECK(local_diff > 1e-4);
  CHECK(max_abs_diff(l0[0], expected[0]) > 1e-6);  // already the losses
}

TEST_CASE("2 ranks: the Pretrainer with a ResNet equals 1 rank with the doubled batch",
          "[dist][sync_bn][multiprocess][train]") {
  test::TempDir dir("convirt-sync-bn-pretrain");
  PretrainData d(dir.path());
  const auto expected = pretrain(
      d, d.model(1), pretrain_options(dir / "one", 2 * kBatch, train::SyncBatchNormMode::kAuto));
  // On one process the option changes nothing: bit-identical to per-rank BatchNorm.
  CHECK(identical(expected, pretrain(d, d.model(1),
                                     pretrain_options(dir / "one_on", 2 * kBatch,
                                                      train::SyncBatchNormMode::kOn))));
  auto job = run_job("pretrain", dir.path());
  if (job.skipped) return;
  REQUIRE(job.rc == 0);
  const auto r0 = load_tensors(dir / "auto_rank0.pt");
  const auto r1 = load_tensors(dir / "auto_rank1.pt");
  const double sync_diff = max_diff(r0, expected);
  INFO("synchronised: max difference " << sync_diff);
  CHECK(sync_diff < kTolerance);  // weights, running statistics, best validation loss
  CHECK(identical(r0, r1));
  const auto off = load_tensors(dir / "off_rank0.pt");
  const double off_diff = max_diff(off, expected);
  INFO("per-rank BatchNorm: max difference " << off_diff);
  CHECK(off_diff > 1e-6);
}
