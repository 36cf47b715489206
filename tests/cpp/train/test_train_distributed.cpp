// Pretrainer on 2 ranks (Gloo, localhost), started through convirt::dist::launch on this very test
// binary, whose hidden "train worker" case plays one rank. Every multi-rank result is checked
// against one process: k steps on 2 ranks of batch_size b equal k steps of 1 rank with 2b.

#include <convirt/data/synthetic/generator.h>
#include <convirt/dist/launch.h>
#include <convirt/dist/process_group.h>
#include <convirt/models/registry.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/train/checkpoint.h>
#include <convirt/train/pretrainer.h>

#include <torch/torch.h>

#include "poisoned_pairs.h"
#include "self_launch.h"
#include "small_pairs.h"
#include "test_util.h"

// After the LibTorch headers: glog (through c10) defines its own CHECK.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using namespace convirt;

using convirt::test::read_text;
using convirt::test::ScopedEnv;
using convirt::test::write_text;

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// An image encoder without BatchNorm: BatchNorm normalises with the statistics of each rank's own
// shard, so no data-parallel run can equal one process on the whole batch with it (SyncBatchNorm
// aside). Average-pools 4x4 and projects.
class PooledLinearImpl : public torch::nn::Module {
 public:
  PooledLinearImpl(int64_t in_features, int64_t out)
      : linear(register_module("linear", torch::nn::Linear(in_features, out))), out_(out) {}
  torch::Tensor forward(torch::Tensor x) {
    return torch::relu(linear(torch::avg_pool2d(x, 4).flatten(1)));
  }
  int64_t output_dim() const { return out_; }
  torch::nn::Linear linear;

 private:
  int64_t out_;
};
TORCH_MODULE(PooledLinear);

constexpr int64_t kImage = 32;
constexpr int64_t kSteps = 8;         // crosses an epoch boundary (48 pairs, 8 per global batch)
constexpr int64_t kBatch = 4;         // per rank; the 1-rank reference uses 2 * kBatch
constexpr double kTolerance = 1e-10;  // float64 end to end

void register_test_encoder() {
  models::register_image_encoder("test_pooled_linear", [](const models::ModelConfig& c) {
    return models::AnyImageEncoder(
        PooledLinear(c.image_size() * c.image_size() / 16 * c.resnet().in_channels(), 12));
  });
}

// The paired data and tokenizer every process reads; the parent writes them once.
struct Data : convirt::test::SmallPairs {
  explicit Data(const fs::path& dir) : SmallPairs(dir, kImage, 300) {}
  // A float64 model without dropout or BatchNorm: the one-process equivalence is then exact up
  // to summation order.
  models::ConVIRTModel model(uint64_t seed) const {
    register_test_encoder();
    models::ModelConfig c;
    c.image_encoder("test_pooled_linear").resnet(models::ResNetOptions(18).in_channels(1));
    return float64_model(c, seed);
  }
};

train::PretrainOptions options(const fs::path& out, int64_t batch_size) {
  return train::PretrainOptions(out.string())
      .batch_size(batch_size)
      .eval_every(3)
      .max_evals(0)
      .max_steps(kSteps)
      .max_length(24)
      .log_every(1)
      .learning_rate(1e-2)
      .workers(1)
      .verbose(false)
      .seed(5);
}

// Runs a trainer and returns its parameters after step `snapshot_step` (before run() swaps in the
// best-validation weights), followed by the best validation loss.
std::vector<torch::Tensor> train_and_snapshot(
    train::Pretrainer& trainer, train::PretrainResult* result = nullptr,
    const std::function<bool(const train::StepMetrics&)>& extra = {}) {
  std::vector<torch::Tensor> snapshot;
  auto r = trainer.run([&](const train::StepMetrics& m) {
    if (!m.is_eval && m.step == kSteps) {
      for (const auto& p : trainer.model()->parameters()) snapshot.push_back(p.detach().clone());
    }
    return extra ? extra(m) : true;
  });
  snapshot.push_back(torch::tensor(r.best_val_loss, torch::kDouble));
  if (result) *result = r;
  return snapshot;
}

using convirt::test::PoisonedPairs;

using convirt::test::JobResult;
using convirt::test::load_tensors;

JobResult run_job(const std::string& scenario, const fs::path& dir, const std::string& timeout) {
  return convirt::test::launch_self_as_ranks(
      "train worker", {{"CONVIRT_TEST_SCENARIO", scenario}, {"CONVIRT_TEST_OUT", dir.string()}}, 2,
      timeout);
}

}  // namespace

// One rank of a job started by run_job(); hidden ("[.]") so only the launcher runs it.
TEST_CASE("train worker", "[.][train_worker]") {
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
  Data d(dir);
  // Each rank initialises differently: the trainer must start them all from rank 0's weights.
  auto model = d.model(/*seed=*/s == "resume" ? 99 + ctx.rank() : 1 + 10 * ctx.rank());
  if (s == "train") {
    // Uninterrupted, then the first half of an interrupted run: a stop requested on rank 1 only
    // must stop both ranks at the same step.
    {
      train::Pretrainer t(model, d.tokenizer, d.train, d.val,
                          options(dir / "two", kBatch).distributed(ctx));
      torch::save(train_and_snapshot(t), (dir / ("two_rank" + rank + ".pt")).string());
    }
    auto model_b = d.model(1 + 10 * ctx.rank());
    train::Pretrainer b(model_b, d.tokenizer, d.train, d.val,
                        options(dir / "resume", kBatch).distributed(ctx));
    auto r = b.run([&](const train::StepMetrics& m) { return ctx.rank() == 0 || m.step != 4; });
    write_text(dir / ("stop_rank" + rank + ".txt"), std::to_string(r.steps) + " " + r.stop_reason);
  } else if (s == "resume") {
    train::Pretrainer t(model, d.tokenizer, d.train, d.val,
                        options(dir / "resume", kBatch).distributed(ctx));
    torch::save(train_and_snapshot(t), (dir / ("resumed_rank" + rank + ".pt")).string());
  } else if (s == "nan") {
    // Only rank 1's shard is bad, and the binary objective's loss is per rank: rank 0 must still
    // skip the same steps and stop with the same error, not run ahead into a collective alone.
    std::shared_ptr<const data::Dataset> train = d.train;
    if (ctx.rank() == 1) train = std::make_shared<PoisonedPairs>(d.train);
    train::Pretrainer t(
        model, d.tokenizer, train, d.val,
        options(dir / "nan", kBatch).objective("binary").max_bad_steps(3).distributed(ctx));
    std::string message = "no error";
    try {
      t.run();
    } catch (const std::exception& e) {
      message = e.what();
    }
    write_text(dir / ("nan_rank" + rank + ".txt"), message);
  } else if (s == "die") {
    // Rank 1 dies at step 2; rank 0 must fail by itself (it ignores the launcher's SIGTERM here),
    // with an error, within the timeout.
    if (ctx.rank() == 0) ::signal(SIGTERM, SIG_IGN);
    // Leaked on purpose: after the failure the process ends without tearing the group down.
    auto* t = new train::Pretrainer(model, d.tokenizer, d.train, d.val,
                                    options(dir / "die", kBatch).distributed(ctx));
    const auto start = std::chrono::steady_clock::now();
    std::string message = "no error";
    try {
      t->run([&](const train::StepMetrics& m) {
        if (ctx.rank() == 1 && m.step == 2) ::raise(SIGKILL);
        return true;
      });
    } catch (const std::exception& e) {
      message = e.what();
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_text(dir / "rank0.txt", std::to_string(seconds) + "\n" + message);
    std::_Exit(3);
  } else {
    FAIL("unknown scenario " << s);
  }
}

TEST_CASE("2 ranks: pretraining equals 1 rank with the doubled batch, and resumes exactly",
          "[train][dist][multiprocess]") {
  test::TempDir dir("convirt-train-dist");
  Data d(dir.path());

  // The reference: one process, global batch 2 * kBatch.
  auto model = d.model(/*seed=*/1);
  const auto initial = model->parameters();
  std::vector<torch::Tensor> initial_copy;
  for (const auto& p : initial) initial_copy.push_back(p.detach().clone());
  train::Pretrainer one(model, d.tokenizer, d.train, d.val, options(dir / "one", 2 * kBatch));
  const auto expected = train_and_snapshot(one);

  auto job = run_job("train", dir.path(), "60");
  if (job.skipped) return;
  REQUIRE(job.rc == 0);
  const auto r0 = load_tensors(dir / "two_rank0.pt");
  const auto r1 = load_tensors(dir / "two_rank1.pt");
  REQUIRE(r0.size() == expected.size());
  REQUIRE(r1.size() == expected.size());
  double moved = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("parameter " << i << " (the last entry is the best validation loss)");
    CHECK(torch::equal(r0[i], r1[i]));  // the ranks never drift apart
    CHECK(test::max_abs_diff(r0[i], expected[i]) < kTolerance);
    if (i + 1 < expected.size())
      moved = std::max(moved, test::max_abs_diff(initial_copy[i], expected[i]));
  }
  CHECK(moved > 1e-3);  // the comparison is not between two initial states

  // Rank 0 alone logged and checkpointed: one line per step, not one per rank.
  const std::string log = read_text(dir / "two" / "metrics.jsonl");
  CHECK(count_of(log, R"("type":"train")") == kSteps);
  CHECK(count_of(log, R"("type":"eval")") == 3);
  CHECK(count_of(log, R"("type":"done")") == 1);
  CHECK(log.find(R"("world_size":2)") != std::string::npos);
  CHECK(train::checkpoint_exists((dir / "two" / "last.ckpt").string()));
  CHECK(fs::exists(dir / "two" / "best_model.pt"));
  for (const auto& entry : fs::directory_iterator(dir / "two")) {
    INFO(entry.path());
    CHECK(entry.path().string().find(".tmp") == std::string::npos);
  }

  // A stop requested on rank 1 alone stopped both ranks at step 4.
  CHECK(read_text(dir / "stop_rank0.txt") == "4 stop requested");
  CHECK(read_text(dir / "stop_rank1.txt") == "4 stop requested");
  auto resumed = run_job("resume", dir.path(), "60");
  REQUIRE(resumed.rc == 0);
  for (const std::string rank : {"0", "1"}) {
    const auto got = load_tensors(dir / ("resumed_rank" + rank + ".pt"));
    REQUIRE(got.size() == r0.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("rank " << rank << ", parameter " << i);
      CHECK(torch::equal(got[i], r0[i]));
    }
  }

  // The 2-rank checkpoint does not resume on 1 rank.
  auto lone = d.model(1);
  train::Pretrainer wrong(lone, d.tokenizer, d.train, d.val, options(dir / "resume", 2 * kBatch));
  CHECK_THROWS_WITH(wrong.run(), Catch::Contains("saved with 2 ranks, now running 1"));
}

TEST_CASE("2 ranks: a non-finite loss on one rank is skipped on both",
          "[train][dist][multiprocess]") {
  test::TempDir dir("convirt-train-dist");
  { Data d(dir.path()); }
  auto job = run_job("nan", dir.path(), "60");
  if (job.skipped) return;
  REQUIRE(job.rc == 0);
  for (const std::string rank : {"0", "1"}) {
    const std::string message = read_text(dir / ("nan_rank" + rank + ".txt"));
    INFO("rank " << rank << ": " << message);
    CHECK(message.find("3 consecutive steps had a non-finite loss (last at step 3)") !=
          std::string::npos);
  }
  const std::string log = read_text(dir / "nan" / "metrics.jsonl");
  CHECK(count_of(log, R"("type":"skipped")") == 3);
}

TEST_CASE("2 ranks: a killed rank makes the other's run() fail with an error, not hang",
          "[train][dist][multiprocess][failure]") {
  test::TempDir dir("convirt-train-dist");
  { Data d(dir.path()); }  // written once, read by both ranks
  auto job = run_job("die", dir.path(), "10");
  if (job.skipped) return;
  // The launcher reports rank 1's SIGKILL, or rank 0's exit code 3 if both ended before it looked.
  CHECK((job.rc == 128 + SIGKILL || job.rc == 3));
  const std::string report = read_text(dir / "rank0.txt");
  INFO(report);
  CHECK(report.find("on rank 0 of 2 failed") != std::string::npos);
  CHECK(report.find("lost rank 1 (process ") != std::string::npos);
  CHECK(std::stod(report) < 10 + 5);
  CHECK(job.seconds < 40);
}

TEST_CASE("a trainer is validated against its world size", "[train][dist]") {
  test::TempDir dir("convirt-train-dist");
  Data d(dir.path());
  auto model = d.model(1);
  // 48 training pairs cannot make a global batch of 64 pairs.
  CHECK_THROWS_WITH(
      train::Pretrainer(model, d.tokenizer, d.train, d.val, options(dir / "x", 64)),
      Catch::Contains("at least one global batch of batch_size * world_size = 64 * 1"));
}

#ifdef CONVIRT_CLI_EXE
TEST_CASE("convirt launch --nproc 2 runs convirt pretrain on 2 ranks", "[train][dist][cli]") {
  if (!dist::gloo_available()) {
    WARN("skipped: this build of convirt::dist has no Gloo");
    return;
  }
  test::TempDir dir("convirt-train-cli");
  const std::string exe = CONVIRT_CLI_EXE;
  const std::string root = dir.path().string();
  const std::string synth = exe + " synth --out " + root +
                            "/data --train-studies 24 --validate-studies 6 --test-studies 2 "
                            "--chexpert-train 4 --chexpert-valid 4 --retrieval-candidates 2 "
                            "--synthetic-image-size 32 > " +
                            root + "/synth.log 2>&1";
  REQUIRE(std::system(synth.c_str()) == 0);
  ScopedEnv env({{"OMP_NUM_THREADS", "1"}, {"CONVIRT_DIST_TIMEOUT", "60"}});
  const std::string pretrain = exe + " launch --nproc 2 -- pretrain --data " + root +
                               "/data/mimic-cxr-jpg --out " + root +
                               "/run --image-size 32 --vocab-size 300 --batch-size 4 "
                               "--max-steps 3 --eval-every 3 --log-every 1 --threads 1 "
                               "--workers 1 --sync-batch-norm on > " +
                               root + "/pretrain.log 2>&1";
  const int rc = std::system(pretrain.c_str());
  const std::string output = read_text(dir / "pretrain.log");
  INFO(output);
  REQUIRE(rc == 0);
  // Rank 0 alone reports, logs and writes the model.
  CHECK(count_of(output, "pretraining stopped (max_steps) after 3 steps") == 1);
  // The small preset's ResNet-18 has 20 BatchNorm layers, synchronised (and the choice recorded).
  CHECK(count_of(output, "20 BatchNorm layers synchronised over 2 ranks") == 1);
  CHECK(read_text(dir / "run" / "run_options.json").find(R"("sync_batch_norm": "on")") !=
        std::string::npos);
  const std::string log = read_text(dir / "run" / "metrics.jsonl");
  CHECK(count_of(log, R"("type":"train")") == 3);
  CHECK(log.find(R"("world_size":2)") != std::string::npos);
  CHECK(fs::exists(dir / "run" / "model.pt"));
  CHECK(train::checkpoint_exists((dir / "run" / "last.ckpt").string()));
}
#endif
