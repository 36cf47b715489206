// convirt::dist: single-process contracts, and 2-rank jobs on localhost (Gloo) started through
// launch() on this very test binary, whose hidden "dist worker" test case plays one rank. Each
// multi-rank result is checked against one process holding the whole batch.

#include <convirt/dist/gather.h>
#include <convirt/dist/grad_sync.h>
#include <convirt/dist/infonce.h>
#include <convirt/dist/launch.h>
#include <convirt/dist/process_group.h>
#include <convirt/dist/sharding.h>
#include <convirt/loss/infonce.h>

#include "self_launch.h"
#include "test_util.h"

// After the LibTorch headers: glog (through c10) defines its own CHECK.
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

namespace {

using convirt::dist::DistributedContext;
namespace fs = std::filesystem;

using convirt::test::read_text;
using convirt::test::ScopedEnv;
using convirt::test::write_text;

// ---- The scenarios a rank runs ----------------------------------------------------------------

constexpr int64_t kLossBatch = 7;  // 4 rows on rank 0, 3 on rank 1: uneven shards on purpose
constexpr int64_t kDim = 5;

struct LossData {
  torch::Tensor image, text;
};

LossData loss_data() {
  torch::manual_seed(11);
  // Near-duplicate pairs make the accuracies non-trivial.
  auto image = torch::randn({kLossBatch, kDim}, torch::kDouble);
  auto text = image + 0.8 * torch::randn({kLossBatch, kDim}, torch::kDouble);
  return {image, text};
}

// Everything a rank reports from the loss scenario, in one list for torch::save.
std::vector<torch::Tensor> run_loss_scenario(const DistributedContext& ctx) {
  auto data = loss_data();
  const auto shard = convirt::dist::shard_range(kLossBatch, ctx.rank(), ctx.world_size());
  auto v = data.image.slice(0, shard.begin, shard.end).clone().requires_grad_(true);
  auto u = data.text.slice(0, shard.begin, shard.end).clone().requires_grad_(true);
  auto tau = torch::full({}, 0.2, torch::kDouble).requires_grad_(true);
  auto opts = convirt::InfoNCEOptions().learnable_temperature(tau).image_to_text_weight(0.7);
  auto out = convirt::dist::infonce_loss_distributed_with_stats(v, u, opts, ctx);
  out.loss.backward();
  // The one InfoNCELoss module, given the global batch, computes the same global loss; it learns
  // log tau, so its temperature's gradient is d/dlog(tau) = tau * d/dtau.
  convirt::InfoNCELoss module(convirt::InfoNCEOptions()
                                  .learnable_temperature(torch::full({}, 0.2, torch::kDouble))
                                  .image_to_text_weight(0.7),
                              convirt::dist::global_batch(ctx));
  REQUIRE(module->spans_processes() == (ctx.world_size() > 1));
  auto v2 = v.detach().clone().requires_grad_(true);
  auto module_out = module->forward_with_stats(v2, u.detach());
  module_out.loss.backward();
  return {out.loss.detach(),
          out.image_to_text,
          out.text_to_image,
          out.image_to_text_accuracy,
          out.text_to_image_accuracy,
          v.grad(),
          u.grad(),
          tau.grad(),
          module_out.loss.detach(),
          module_out.image_to_text_accuracy,
          v2.grad(),
          module->log_temperature.grad()};
}

struct Towers {
  torch::nn::Sequential image{torch::nn::Linear(6, 8), torch::nn::ReLU(), torch::nn::Linear(8, 4)};
  torch::nn::Sequential text{torch::nn::Linear(3, 4)};
  torch::Tensor tau;
  std::vector<torch::Tensor> parameters() {
    auto p = image->parameters();
    for (auto& t : text->parameters()) p.push_back(t);
    p.push_back(tau);
    return p;
  }
};

constexpr int64_t kSgdBatch = 8;
constexpr int kSgdSteps = 3;

// k SGD steps of a two-tower model. With a multi-rank ctx: this rank's shard of each global batch,
// the distributed loss and a GradientSynchronizer; with a single-process ctx and
// `distributed_loss` false: the plain one-process loss on the whole batch (the oracle).
std::vector<torch::Tensor> run_sgd(const DistributedContext& ctx, bool distributed_loss,
                                   bool overlap, int steps = kSgdSteps) {
  torch::manual_seed(7);
  Towers m;
  m.image->to(torch::kDouble);
  m.text->to(torch::kDouble);
  m.tau = torch::full({}, 0.15, torch::kDouble).requires_grad_(true);
  if (ctx.rank() == 1) {
    // Ranks that start out of step must be brought in line by the broadcast below.
    torch::NoGradGuard no_grad;
    for (auto& p : m.image->parameters()) p.add_(1.0);
  }
  convirt::dist::broadcast_module_state(*m.image, ctx);
  convirt::dist::broadcast_module_state(*m.text, ctx);

  auto params = m.parameters();
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.5).momentum(0.9));
  // A tiny bucket cap puts the parameters into several buckets.
  convirt::dist::GradientSynchronizer sync(
      params, ctx,
      convirt::dist::GradientSynchronizerOptions().bucket_cap_mb(1e-4).overlap(overlap));
  const auto opts = convirt::InfoNCEOptions().learnable_temperature(m.tau);
  for (int step = 0; step < steps; ++step) {
    torch::manual_seed(100 + step);
    auto images = torch::randn({kSgdBatch, 6}, torch::kDouble);
    auto texts = torch::randn({kSgdBatch, 3}, torch::kDouble);
    const auto shard = convirt::dist::shard_range(kSgdBatch, ctx.rank(), ctx.world_size());
    images = images.slice(0, shard.begin, shard.end);
    texts = texts.slice(0, shard.begin, shard.end);
    opt.zero_grad();
    auto v = m.image->forward(images);
    auto u = m.text->forward(texts);
    auto loss = distributed_loss ? convirt::dist::infonce_loss_distributed(v, u, opts, ctx)
                                 : convirt::infonce_loss(v, u, opts);
    loss.backward();
    sync.synchronize();
    opt.step();
  }
  std::vector<torch::Tensor> out;
  for (auto& p : m.parameters()) out.push_back(p.detach().clone());
  return out;
}

// Collectives against values every rank can predict.
void run_collectives_scenario(const DistributedContext& ctx) {
  const double r = static_cast<double>(ctx.rank());
  auto t = torch::full({2, 3}, r + 1, torch::kFloat);
  ctx.all_reduce_(t);
  REQUIRE(torch::allclose(t, torch::full({2, 3}, 3.0, torch::kFloat)));
  auto m = torch::full({4}, r, torch::kDouble).t();
  ctx.all_reduce_(m, convirt::dist::ReduceOp::kMax);
  REQUIRE(m.eq(1.0).all().item<bool>());
  // Non-contiguous input: written back through a contiguous copy.
  auto nc = torch::full({3, 2}, r + 1, torch::kDouble).t();
  REQUIRE_FALSE(nc.is_contiguous());
  ctx.all_reduce_(nc, convirt::dist::ReduceOp::kMin);
  REQUIRE(nc.eq(1.0).all().item<bool>());

  auto rows = torch::full({ctx.rank() + 1, 2}, r, torch::kLong);  // 1 row on rank 0, 2 on rank 1
  auto all = ctx.all_gather_rows(rows);
  REQUIRE(all.sizes() == torch::IntArrayRef({3, 2}));
  REQUIRE(torch::equal(all.select(1, 0), torch::tensor({0, 1, 1}, torch::kLong)));
  REQUIRE(ctx.all_gather_sizes(5 + ctx.rank()) == std::vector<int64_t>{5, 6});

  auto b = torch::full({3}, r + 10, torch::kFloat);
  ctx.broadcast_(b, 1);
  REQUIRE(b.eq(11.0f).all().item<bool>());
  ctx.barrier();

  // gather_with_grad: d/dx of sum_r (c_r * gathered).sum() is sum_r c_r on every local row.
  auto x = torch::ones({2, 2}, torch::kDouble).requires_grad_(true);
  auto g = convirt::dist::gather_with_grad(x, ctx);
  REQUIRE(g.sizes() == torch::IntArrayRef({4, 2}));
  (g * (r + 1)).sum().backward();
  REQUIRE(torch::allclose(x.grad(), torch::full({2, 2}, 3.0, torch::kDouble)));

  // GradientSynchronizer with overlap: a parameter that got no gradient contributes zeros; a
  // second backward before synchronize() is refused; earlier gradients are kept (accumulation).
  auto used = torch::zeros({3}, torch::kDouble).requires_grad_(true);
  auto unused = torch::zeros({2}, torch::kDouble).requires_grad_(true);
  {
    convirt::dist::GradientSynchronizer sync({used, unused}, ctx);
    (used * (r + 1)).sum().backward();
    sync.synchronize();
    REQUIRE(torch::allclose(used.grad(), torch::full({3}, 3.0, torch::kDouble)));
    REQUIRE(unused.grad().defined());
    REQUIRE(unused.grad().eq(0).all().item<bool>());
    (used * (r + 1)).sum().backward();
    REQUIRE_THROWS_WITH((used * 2).sum().backward(), Catch::Contains("second gradient"));
    sync.synchronize();
    REQUIRE(torch::allclose(used.grad(), torch::full({3}, 6.0, torch::kDouble)));
  }
  {
    convirt::dist::GradientSynchronizer avg(
        {used}, ctx, convirt::dist::GradientSynchronizerOptions().overlap(false).average(true));
    used.mutable_grad() = torch::full({3}, r, torch::kDouble);
    avg.synchronize();
    REQUIRE(torch::allclose(used.grad(), torch::full({3}, 0.5, torch::kDouble)));
  }

  // run_on_main: rank 0 fails, every rank sees an error.
  bool threw = false;
  try {
    convirt::dist::run_on_main(
        ctx, [] { throw std::runtime_error("disk full"); }, "writing the checkpoint");
  } catch (const std::exception& e) {
    threw = true;
    const std::string msg = e.what();
    if (ctx.rank() == 0) {
      REQUIRE(msg.find("disk full") != std::string::npos);
    } else {
      REQUIRE(msg.find("writing the checkpoint") != std::string::npos);
    }
  }
  REQUIRE(threw);
  int calls = 0;
  convirt::dist::run_on_main(ctx, [&] { ++calls; });
  REQUIRE(calls == (ctx.rank() == 0 ? 1 : 0));
}

// Rank 1 dies or stalls; rank 0 must fail within the timeout and report it.
void run_failure_scenario(const DistributedContext& ctx, const std::string& mode,
                          const fs::path& out) {
  if (ctx.rank() == 1) {
    if (mode == "die") ::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::seconds(60));  // "hang": the launcher kills us
    std::_Exit(0);
  }
  // The launcher stops the survivors when a rank dies; rank 0 ignores that here to show that
  // it fails by itself, within the timeout.
  ::signal(SIGTERM, SIG_IGN);
  const auto start = std::chrono::steady_clock::now();
  std::string message = "no error";
  try {
    auto t = torch::ones({16});
    for (int i = 0; i < 3; ++i) ctx.all_reduce_(t);
  } catch (const std::exception& e) {
    message = e.what();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // A later call fails at once with the first error.
  std::string second = "no error";
  try {
    ctx.barrier();
  } catch (const std::exception& e) {
    second = e.what();
  }
  write_text(out / "rank0.txt", std::to_string(seconds) + "\n" + message + "\n--\n" + second);
  // The peer is gone: skip the process group's teardown.
  std::_Exit(3);
}

// ---- Launching the scenarios -------------------------------------------------------------------

using convirt::test::JobResult;
using convirt::test::load_tensors;

JobResult run_job(const std::string& scenario, const fs::path& out, int64_t nproc = 2,
                  const std::string& timeout = "60", const std::string& extra = "") {
  return convirt::test::launch_self_as_ranks("dist worker",
                                             {{"CONVIRT_TEST_SCENARIO", scenario},
                                              {"CONVIRT_TEST_OUT", out.string()},
                                              {"CONVIRT_TEST_EXTRA", extra}},
                                             nproc, timeout);
}

}  // namespace

// One rank of a job started by run_job(); hidden ("[.]") so only the launcher runs it.
TEST_CASE("dist worker", "[.][dist_worker]") {
  const char* scenario = std::getenv("CONVIRT_TEST_SCENARIO");
  const char* out_dir = std::getenv("CONVIRT_TEST_OUT");
  REQUIRE(scenario != nullptr);
  REQUIRE(out_dir != nullptr);
  const std::string extra =
      std::getenv("CONVIRT_TEST_EXTRA") ? std::getenv("CONVIRT_TEST_EXTRA") : "";
  const fs::path out(out_dir);
  torch::set_num_threads(1);
  auto ctx = DistributedContext::from_environment();
  REQUIRE(ctx.world_size() == 2);
  const std::string s = scenario;
  const fs::path mine = out / ("rank" + std::to_string(ctx.rank()) + ".pt");
  if (s == "loss") {
    torch::save(run_loss_scenario(ctx), mine.string());
  } else if (s == "sgd") {
    torch::save(run_sgd(ctx, /*distributed_loss=*/true, /*overlap=*/extra == "overlap"),
                mine.string());
  } else if (s == "collectives") {
    run_collectives_scenario(ctx);
    write_text(out / ("rank" + std::to_string(ctx.rank()) + ".ok"), "ok");
  } else {
    run_failure_scenario(ctx, s, out);
  }
}

TEST_CASE("shard_range splits contiguously with sizes differing by at most one", "[dist]") {
  int64_t next = 0;
  for (int64_t r = 0; r < 3; ++r) {
    auto s = convirt::dist::shard_range(10, r, 3);
    CHECK(s.begin == next);
    CHECK(s.size() == (r == 0 ? 4 : 3));
    next = s.end;
  }
  CHECK(next == 10);
  CHECK(convirt::dist::shard_range(1, 1, 2).size() == 0);
  CHECK_THROWS_AS(convirt::dist::shard_range(4, 2, 2), c10::IndexError);
  CHECK_THROWS_AS(convirt::dist::shard_range(4, 0, 0), c10::ValueError);
}

TEST_CASE("options from the torchrun environment, and bad values named", "[dist]") {
  {
    ScopedEnv env({{"RANK", "3"},
                   {"WORLD_SIZE", "4"},
                   {"LOCAL_RANK", "1"},
                   {"MASTER_ADDR", "node7"},
                   {"MASTER_PORT", "29555"},
                   {"CONVIRT_DIST_TIMEOUT", "12.5"},
                   {"GLOO_SOCKET_IFNAME", "eth1"}});
    auto o = convirt::dist::DistributedOptions::from_environment();
    CHECK(o.rank() == 3);
    CHECK(o.world_size() == 4);
    CHECK(o.local_rank() == 1);
    CHECK(o.master_addr() == "node7");
    CHECK(o.master_port() == 29555);
    CHECK(o.timeout_seconds() == 12.5);
    CHECK(o.gloo_interface() == "eth1");
  }
  {
    ScopedEnv env({{"RANK", ""}, {"WORLD_SIZE", ""}});
    auto ctx = DistributedContext::from_environment();
    CHECK(ctx.world_size() == 1);
    CHECK(ctx.is_main());
    CHECK_FALSE(ctx.is_distributed());
  }
  {
    ScopedEnv env({{"RANK", "x1"}, {"WORLD_SIZE", "2"}});
    CHECK_THROWS_WITH(convirt::dist::DistributedOptions::from_environment(),
                      Catch::Contains("RANK must be an integer, got 'x1'"));
  }
  {
    ScopedEnv env({{"RANK", "2"}, {"WORLD_SIZE", "2"}});
    CHECK_THROWS_WITH(convirt::dist::DistributedOptions::from_environment(),
                      Catch::Contains("rank must be in [0, 2), got 2"));
  }
  {
    ScopedEnv env({{"RANK", "0"}, {"WORLD_SIZE", ""}});
    CHECK_THROWS_AS(convirt::dist::DistributedOptions::from_environment(), c10::ValueError);
  }
  CHECK_THROWS_WITH(DistributedContext(convirt::dist::DistributedOptions().timeout_seconds(0)),
                    Catch::Contains("timeout_seconds must be > 0"));
  CHECK_THROWS_WITH(
      DistributedContext(convirt::dist::DistributedOptions().world_size(2).master_port(0)),
      Catch::Contains("master_port must be in [1, 65535], got 0"));
  CHECK_THROWS_AS(convirt::dist::parse_comm_backend("mpi"), c10::ValueError);
  convirt::dist::check_resume_world_size(1, DistributedContext());
  CHECK_THROWS_WITH(convirt::dist::check_resume_world_size(4, DistributedContext()),
                    Catch::Contains("saved with 4 ranks, now running 1"));
}

TEST_CASE("a single-process context: collectives are the identity", "[dist]") {
  DistributedContext ctx;
  auto t = torch::arange(6, torch::kFloat).reshape({2, 3});
  auto before = t.clone();
  ctx.all_reduce_(t);
  ctx.broadcast_(t);
  ctx.barrier();
  CHECK(torch::equal(t, before));
  CHECK(torch::equal(ctx.all_gather_rows(t), before));
  CHECK(ctx.all_gather(t).size() == 1);
  CHECK_THROWS_AS(ctx.broadcast_(t, 1), c10::IndexError);
  auto x = torch::randn({3, 2}).requires_grad_(true);
  CHECK(convirt::dist::gather_with_grad(x, ctx).is_same(x));
}

TEST_CASE("distributed loss on one process equals the one-process loss", "[dist]") {
  DistributedContext ctx;
  auto data = loss_data();
  auto v1 = data.image.clone().requires_grad_(true);
  auto u1 = data.text.clone().requires_grad_(true);
  auto v2 = data.image.clone().requires_grad_(true);
  auto u2 = data.text.clone().requires_grad_(true);
  auto opts = convirt::InfoNCEOptions().temperature(0.1).image_to_text_weight(0.75);
  auto ref = convirt::infonce_loss_with_stats(
      v1, u1, convirt::InfoNCEOptions(opts).backend(convirt::InfoNCEBackend::kReference));
  auto got = convirt::dist::infonce_loss_distributed_with_stats(v2, u2, opts, ctx);
  ref.loss.backward();
  got.loss.backward();
  CHECK(convirt::test::max_abs_diff(ref.loss, got.loss) < 1e-12);
  CHECK(convirt::test::max_abs_diff(ref.image_to_text, got.image_to_text) < 1e-12);
  CHECK(convirt::test::max_abs_diff(ref.text_to_image, got.text_to_image) < 1e-12);
  CHECK(convirt::test::max_abs_diff(ref.image_to_text_accuracy, got.image_to_text_accuracy) == 0);
  CHECK(convirt::test::max_abs_diff(ref.text_to_image_accuracy, got.text_to_image_accuracy) == 0);
  CHECK(convirt::test::max_abs_diff(v1.grad(), v2.grad()) < 1e-12);
  CHECK(convirt::test::max_abs_diff(u1.grad(), u2.grad()) < 1e-12);

  // float16 input accumulates in float32, as the one-process loss does.
  auto h = convirt::dist::infonce_loss_distributed(data.image.to(torch::kHalf),
                                                   data.text.to(torch::kHalf), opts, ctx);
  CHECK(h.scalar_type() == torch::kFloat);
  CHECK(std::abs(h.item<double>() - ref.loss.item<double>()) < 1e-2);

  convirt::InfoNCELoss module(opts, convirt::dist::global_batch(ctx));
  CHECK_FALSE(module->spans_processes());  // one rank: the one-process loss
  CHECK(convirt::test::max_abs_diff(module(data.image, data.text), ref.loss) < 1e-12);
}

TEST_CASE("distributed loss rejects bad input with a named argument", "[dist]") {
  DistributedContext ctx;
  auto a = torch::randn({4, 3});
  convirt::InfoNCEOptions o;
  CHECK_THROWS_WITH(convirt::dist::infonce_loss_distributed(a, torch::randn({4, 2}), o, ctx),
                    Catch::Contains("same width"));
  CHECK_THROWS_WITH(convirt::dist::infonce_loss_distributed(a, torch::randn({3, 3}), o, ctx),
                    Catch::Contains("same number of rows"));
  CHECK_THROWS_AS(convirt::dist::infonce_loss_distributed(a.to(torch::kLong), a, o, ctx),
                  c10::TypeError);
  CHECK_THROWS_WITH(convirt::dist::infonce_loss_distributed(a[0], a[0], o, ctx),
                    Catch::Contains("image_emb must be 2-D [n, D], got [3]"));
  CHECK_THROWS_WITH(convirt::dist::infonce_loss_distributed(a, a, o.temperature(-1), ctx),
                    Catch::Contains("temperature must be > 0, got -1"));
  CHECK_THROWS_WITH(convirt::dist::infonce_loss_distributed(
                        a, a, convirt::InfoNCEOptions().image_to_text_weight(2), ctx),
                    Catch::Contains("image_to_text_weight must be in [0, 1], got 2"));
  CHECK_THROWS_WITH(
      convirt::dist::infonce_loss_distributed(torch::randn({0, 3}), torch::randn({0, 3}), {}, ctx),
      Catch::Contains("at least one row"));
}

TEST_CASE("GradientSynchronizer buckets by size, dtype and reverse order", "[dist]") {
  auto p0 = torch::zeros({100}).requires_grad_(true);  // 400 B
  auto p1 = torch::zeros({100}).requires_grad_(true);  // 400 B
  auto p2 = torch::zeros({10}, torch::kDouble).requires_grad_(true);
  auto frozen = torch::zeros({1000});
  convirt::dist::GradientSynchronizer sync(
      {p0, frozen, p1, p2}, DistributedContext(),
      convirt::dist::GradientSynchronizerOptions().bucket_cap_mb(1000.0 / (1024 * 1024)));
  // Requires-grad parameters are p0, p1, p2 (indices 0, 1, 2); reverse order, the double one alone.
  const std::vector<std::vector<int64_t>> expected{{2}, {1, 0}};
  CHECK(sync.bucket_members() == expected);
  // Single process: synchronize leaves gradients as they are.
  (p0.sum() * 2).backward();
  sync.synchronize();
  CHECK(p0.grad().eq(2).all().item<bool>());
  CHECK_THROWS_WITH(convirt::dist::GradientSynchronizer(
                        {p0}, DistributedContext(),
                        convirt::dist::GradientSynchronizerOptions().bucket_cap_mb(0)),
                    Catch::Contains("bucket_cap_mb must be > 0, got 0"));
}

TEST_CASE("launch sets torchrun's variables and reports success", "[dist][launch]") {
  convirt::test::TempDir dir("convirt-launch");
  const std::string script =
      "echo \"$RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $MASTER_ADDR "
      "$MASTER_PORT\" > " +
      dir.path().string() + "/$RANK.txt";
  REQUIRE(convirt::dist::launch_local(3, {"/bin/sh", "-c", script}) == 0);
  std::string port;
  for (int r = 0; r < 3; ++r) {
    std::istringstream in(read_text(dir / (std::to_string(r) + ".txt")));
    std::string rank, world, local, local_world, addr, p;
    in >> rank >> world >> local >> local_world >> addr >> p;
    CHECK(rank == std::to_string(r));
    CHECK(world == "3");
    CHECK(local == std::to_string(r));
    CHECK(local_world == "3");
    CHECK(addr == "127.0.0.1");
    CHECK(std::stoi(p) > 0);
    if (r > 0) CHECK(p == port);
    port = p;
  }
  // Second node of two: global ranks 2 and 3.
  REQUIRE(convirt::dist::launch(
              convirt::dist::LaunchOptions().nproc(2).nnodes(2).node_rank(1).master_port(29999),
              {"/bin/sh", "-c", script}) == 0);
  CHECK(read_text(dir / "3.txt").rfind("3 4 1 2 127.0.0.1 29999", 0) == 0);
}

TEST_CASE("launch stops the other ranks when one fails", "[dist][launch]") {
  const auto start = std::chrono::steady_clock::now();
  const int rc = convirt::dist::launch(
      convirt::dist::LaunchOptions().nproc(3).kill_grace_seconds(1),
      {"/bin/sh", "-c", "if [ \"$RANK\" = 1 ]; then exit 7; fi; exec sleep 60"});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(rc == 7);
  CHECK(seconds < 20);
  CHECK(convirt::dist::launch_local(1, {"/nonexistent/convirt-no-such-program"}) == 127);
  CHECK_THROWS_AS(convirt::dist::launch_local(0, {"/bin/true"}), c10::ValueError);
  CHECK_THROWS_AS(convirt::dist::launch_local(1, {}), c10::ValueError);
  CHECK_THROWS_WITH(convirt::dist::launch(convirt::dist::LaunchOptions().nnodes(2), {"/bin/true"}),
                    Catch::Contains("every node must be given the same port"));
}

TEST_CASE("2 ranks: collectives, gather_with_grad and run_on_main", "[dist][multiprocess]") {
  convirt::test::TempDir dir("convirt-dist");
  auto job = run_job("collectives", dir.path());
  if (job.skipped) return;
  REQUIRE(job.rc == 0);
  CHECK(fs::exists(dir / "rank0.ok"));
  CHECK(fs::exists(dir / "rank1.ok"));
}

TEST_CASE("2 ranks: loss and gradients equal one process on the whole batch",
          "[dist][multiprocess]") {
  convirt::test::TempDir dir("convirt-dist");
  auto job = run_job("loss", dir.path());
  if (job.skipped) return;
  REQUIRE(job.rc == 0);
  auto r0 = load_tensors(dir / "rank0.pt");
  auto r1 = load_tensors(dir / "rank1.pt");

  auto data = loss_data();
  auto v = data.image.clone().requires_grad_(true);
  auto u = data.text.clone().requires_grad_(true);
  auto tau = torch::full({}, 0.2, torch::kDouble).requires_grad_(true);
  auto ref = convirt::infonce_loss_with_stats(
      v, u,
      convirt::InfoNCEOptions().learnable_temperature(tau).image_to_text_weight(0.7).backend(
          convirt::InfoNCEBackend::kReference));
  ref.loss.backward();

  for (auto* r : {&r0, &r1}) {
    // Every rank holds the global loss and statistics.
    CHECK(convirt::test::max_abs_diff((*r)[0], ref.loss) < 1e-12);
    CHECK(convirt::test::max_abs_diff((*r)[1], ref.image_to_text) < 1e-12);
    CHECK(convirt::test::max_abs_diff((*r)[2], ref.text_to_image) < 1e-12);
    CHECK(convirt::test::max_abs_diff((*r)[3], ref.image_to_text_accuracy) == 0);
    CHECK(convirt::test::max_abs_diff((*r)[4], ref.text_to_image_accuracy) == 0);
  }
  CHECK(torch::equal(r0[0], r1[0]));  // bit-identical on both ranks
  CHECK(r0[5].size(0) == 4);
  CHECK(r1[5].size(0) == 3);
  CHECK(convirt::test::max_abs_diff(torch::cat({r0[5], r1[5]}), v.grad()) < 1e-12);
  CHECK(convirt::test::max_abs_diff(torch::cat({r0[6], r1[6]}), u.grad()) < 1e-12);
  // The temperature's gradient is split over ranks; their sum is the one-process gradient.
  CHECK(convirt::test::max_abs_diff(r0[7] + r1[7], tau.grad()) < 1e-12);
  // The module with the global batch: same value, statistics and gradients (log-space tau).
  for (auto* r : {&r0, &r1}) {
    CHECK(torch::equal((*r)[8], (*r)[0]));
    CHECK(torch::equal((*r)[9], (*r)[3]));
  }
  CHECK(convirt::test::max_abs_diff(torch::cat({r0[10], r1[10]}), v.grad()) < 1e-12);
  CHECK(convirt::test::max_abs_diff(r0[11] + r1[11], 0.2 * tau.grad()) < 1e-12);
}

TEST_CASE("2 ranks: SGD steps end with the weights of 1 rank on the doubled batch",
          "[dist][multiprocess]") {
  const auto expected = run_sgd(DistributedContext(), /*distributed_loss=*/false, false);
  for (const std::string mode : {"overlap", "after_backward"}) {
    INFO("gradient exchange: " << mode);
    convirt::test::TempDir dir("convirt-dist");
    auto job = run_job("sgd", dir.path(), 2, "60", mode);
    if (job.skipped) return;
    REQUIRE(job.rc == 0);
    auto r0 = load_tensors(dir / "rank0.pt");
    auto r1 = load_tensors(dir / "rank1.pt");
    REQUIRE(r0.size() == expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      INFO("parameter " << i);
      CHECK(torch::equal(r0[i], r1[i]));  // the ranks never drift apart
      CHECK(convirt::test::max_abs_diff(r0[i], expected[i]) < 1e-10);
    }
  }
  // The weights moved: the comparison above is not between two initial states.
  const auto initial = run_sgd(DistributedContext(), false, false, /*steps=*/0);
  double moved = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    moved = std::max(moved, convirt::test::max_abs_diff(initial[i], expected[i]));
  }
  CHECK(moved > 1e-3);
}

TEST_CASE("2 ranks: a killed rank makes the other fail with an error, not hang",
          "[dist][multiprocess][failure]") {
  convirt::test::TempDir dir("convirt-dist");
  auto job = run_job("die", dir.path(), 2, "10");
  if (job.skipped) return;
  // The launcher reports rank 1's SIGKILL, or rank 0's exit code 3 if both ended before it looked.
  CHECK((job.rc == 128 + SIGKILL || job.rc == 3));
  const std::string report = read_text(dir / "rank0.txt");
  INFO(report);
  CHECK(report.find("all_reduce on rank 0 of 2 failed") != std::string::npos);
  CHECK(report.find("unusable after an earlier failure") != std::string::npos);
  // The error names the rank that was lost, not only the one that noticed.
  CHECK(report.find("lost rank 1 (process ") != std::string::npos);
  CHECK(std::stod(report) < 10 + 5);
  CHECK(job.seconds < 30);
}

TEST_CASE("2 ranks: a hung rank makes the other fail after the timeout",
          "[dist][multiprocess][failure]") {
  convirt::test::TempDir dir("convirt-dist");
  auto job = run_job("hang", dir.path(), 2, "2");
  if (job.skipped) return;
  CHECK(job.rc == 3);  // rank 0's own exit code: it failed first, then the launcher stopped rank 1
  const std::string report = read_text(dir / "rank0.txt");
  INFO(report);
  CHECK(report.find("all_reduce on rank 0 of 2 failed") != std::string::npos);
  // A hung rank is alive: no rank is named as lost.
  CHECK(report.find("no other rank's process on this machine has ended (one hung)") !=
        std::string::npos);
  CHECK(report.find("lost rank") == std::string::npos);
  const double seconds = std::stod(report);
  CHECK(seconds >= 1.5);
  CHECK(seconds < 2 * 2 + 6);
  CHECK(job.seconds < 30);
}

TEST_CASE("a rendezvous that the other ranks never join fails after the timeout",
          "[dist][failure]") {
  if (!convirt::dist::gloo_available()) {
    WARN("skipped: this build of convirt::dist has no Gloo");
    return;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto opts = convirt::dist::DistributedOptions()
                        .rank(0)
                        .world_size(2)
                        .master_port(convirt::dist::find_free_port())
                        .timeout_seconds(1);
  CHECK_THROWS_WITH(DistributedContext(opts),
                    Catch::Contains("not every rank arrived within the timeout of 1"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 10);
}
