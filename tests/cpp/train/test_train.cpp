#include <convirt/data/synthetic/generator.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/train/checkpoint.h>
#include <convirt/train/metrics_log.h>
#include <convirt/train/objective.h>
#include <convirt/train/pretrainer.h>

#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "poisoned_pairs.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace convirt;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_all(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// A tiny synthetic paired set and the model/tokenizer to train on it, shared by the trainer tests.
struct TinySetup {
  test::TempDir dir{"convirt-train"};
  data::synthetic::SyntheticSummary synth;
  std::shared_ptr<data::PairedDataset> train, val;
  std::shared_ptr<text::WordPieceTokenizer> tokenizer;

  TinySetup() {
    synth = pipeline::ensure_synthetic((dir / "data").string(), data::synthetic::SyntheticOptions()
                                                                    .train_studies(48)
                                                                    .validate_studies(12)
                                                                    .test_studies(4)
                                                                    .chexpert_train(8)
                                                                    .chexpert_valid(8)
                                                                    .retrieval_candidates(2)
                                                                    .retrieval_image_queries(1)
                                                                    .retrieval_text_queries(1)
                                                                    .image_size(32)
                                                                    .threads(2)
                                                                    .seed(3));
    train = pipeline::load_pairs(synth.mimic_root, "train", pipeline::pretrain_transform(32), 1);
    val = pipeline::load_pairs(synth.mimic_root, "validate", pipeline::eval_transform(32), 1);
    tokenizer = pipeline::build_tokenizer(*train, 300, (dir / "vocab.txt").string());
  }

  models::ConVIRTModel model(uint64_t seed = 0) const {
    models::ModelConfig c;
    c.image_encoder("resnet18")
        .resnet(models::ResNetOptions(18).base_width(4).in_channels(1))
        .bert(models::BertOptions(models::BertConfig()
                                      .vocab_size(tokenizer->vocab_size())
                                      .hidden_size(16)
                                      .num_hidden_layers(1)
                                      .num_attention_heads(2)
                                      .intermediate_size(32)
                                      .max_position_embeddings(32))
                  .frozen_layers(0)
                  .freeze_embeddings(false))
        .projection_dim(8)
        .max_length(24)
        .image_size(32);
    torch::manual_seed(seed);
    return models::make_convirt(c);
  }

  train::PretrainOptions options(const std::string& out) const {
    return train::PretrainOptions(out)
        .batch_size(8)
        .eval_every(4)
        .max_evals(0)
        .max_steps(12)
        .max_length(24)
        .log_every(1)
        .learning_rate(1e-3)
        .workers(2)
        .verbose(false)
        .seed(5);
  }
};

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.named_parameters();
  for (const auto& p : b.named_parameters()) {
    if (!torch::equal(pa[p.key()], p.value())) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("checkpoint files round-trip and reject truncation and corruption", "[train]") {
  test::TempDir dir("convirt-ckpt");
  const std::string path = (dir / "state.ckpt").string();
  train::write_checkpoint_file(path, "first payload");
  CHECK(train::read_checkpoint_file(path) == "first payload");
  train::write_checkpoint_file(path, "second payload");
  CHECK(train::read_checkpoint_file(path) == "second payload");
  CHECK(train::read_checkpoint_file(path + ".prev") == "first payload");

  std::string bytes = read_all(path);
  bytes[3] ^= 0x40;  // flip a bit of the payload
  write_all(path, bytes);
  CHECK_THROWS_WITH(train::read_checkpoint_file(path), Catch::Contains("is corrupt: checksum"));
  std::string used;
  std::vector<std::string> problems;
  CHECK(train::read_latest_checkpoint(path, &used, &problems) == "first payload");
  CHECK(used == path + ".prev");
  REQUIRE(problems.size() == 1);

  write_all(path, bytes.substr(0, bytes.size() - 5));
  CHECK_THROWS_WITH(train::read_checkpoint_file(path), Catch::Contains("truncated"));
  fs::remove(path + ".prev");
  CHECK_THROWS_WITH(train::read_latest_checkpoint(path), Catch::Contains("no intact checkpoint"));
  CHECK_THROWS_WITH(train::read_checkpoint_file((dir / "missing").string()),
                    Catch::Contains("cannot be opened"));
  CHECK(!fs::exists(path + ".tmp." + std::to_string(::getpid())));
}

TEST_CASE("metrics are JSON lines and durations read naturally", "[train]") {
  CHECK(
      train::to_json_line({{"step", int64_t{3}}, {"loss", 1.5}, {"type", std::string("train")}}) ==
      R"({"loss":1.5,"step":3,"type":"train"})");
  CHECK(train::to_json_line({{"loss", std::nan("")}}) == R"({"loss":null})");
  CHECK(train::format_duration(5) == "5s");
  CHECK(train::format_duration(125) == "2m05s");
  CHECK(train::format_duration(3723) == "1h02m03s");
  CHECK(train::format_duration(-1) == "?");
}

TEST_CASE("a stopped and resumed run ends with the same weights as an uninterrupted one",
          "[train]") {
  TinySetup s;
  auto model_a = s.model();
  train::Pretrainer a(model_a, s.tokenizer, s.train, s.val, s.options((s.dir / "a").string()));
  auto ra = a.run();
  CHECK(ra.steps == 12);
  CHECK(ra.evaluations == 3);
  CHECK(std::isfinite(ra.best_val_loss));
  CHECK(fs::exists(s.dir / "a" / "best_model.pt"));

  {
    auto model_b = s.model();
    train::Pretrainer b(model_b, s.tokenizer, s.train, s.val, s.options((s.dir / "b").string()));
    auto rb = b.run([&](const train::StepMetrics& m) { return m.is_eval || m.step < 6; });
    CHECK(rb.steps == 6);
    CHECK(rb.stop_reason == "stop requested");
  }
  auto model_c = s.model(/*seed=*/99);  // different init: everything must come from the checkpoint
  train::Pretrainer c(model_c, s.tokenizer, s.train, s.val, s.options((s.dir / "b").string()));
  auto rc = c.run();
  CHECK(rc.steps == 12);
  CHECK(rc.evaluations == 3);
  CHECK(rc.best_val_loss == ra.best_val_loss);
  CHECK(same_weights(*model_a, *model_c));

  // A kill -9 between two evaluations leaves the last evaluation's checkpoint on disk: emulate one
  // at step 6 by putting the step-4 checkpoint (kept as .prev when step 6 was written) back in
  // place.
  {
    auto model_d = s.model();
    train::Pretrainer d(model_d, s.tokenizer, s.train, s.val, s.options((s.dir / "d").string()));
    d.run([&](const train::StepMetrics& m) { return m.is_eval || m.step < 6; });
  }
  const fs::path d_ckpt = s.dir / "d" / "last.ckpt";
  fs::remove(d_ckpt);
  fs::rename(d_ckpt.string() + ".prev", d_ckpt);
  auto model_e = s.model(/*seed=*/7);
  train::Pretrainer e(model_e, s.tokenizer, s.train, s.val, s.options((s.dir / "d").string()));
  auto re = e.run();
  CHECK(re.steps == 12);
  CHECK(same_weights(*model_a, *model_e));

  const std::string log = read_all(s.dir / "a" / "metrics.jsonl");
  CHECK(log.find(R"("type":"train")") != std::string::npos);
  CHECK(log.find(R"("type":"eval")") != std::string::npos);
  CHECK(log.find(R"("type":"done")") != std::string::npos);
}

using convirt::test::PoisonedPairs;

TEST_CASE("non-finite losses are skipped, and too many in a row stop the run", "[train]") {
  TinySetup s;
  auto model = s.model();
  auto poisoned = std::make_shared<PoisonedPairs>(s.train);
  train::Pretrainer t(model, s.tokenizer, poisoned, s.val,
                      s.options((s.dir / "nan").string()).max_bad_steps(3));
  CHECK_THROWS_WITH(t.run(), Catch::Contains("3 consecutive steps had a non-finite loss"));
}

TEST_CASE("pretrainer options are validated", "[train]") {
  TinySetup s;
  auto model = s.model();
  CHECK_THROWS_WITH(train::Pretrainer(model, s.tokenizer, s.train, s.val,
                                      s.options((s.dir / "x").string()).batch_size(1)),
                    Catch::Contains("batch_size must be >= 2"));
  CHECK_THROWS_WITH(train::Pretrainer(model, s.tokenizer, s.train, s.val,
                                      s.options((s.dir / "x").string()).max_steps(0).max_evals(0)),
                    Catch::Contains("set at least one of max_steps, max_evals, max_seconds"));
  CHECK_THROWS_WITH(train::objective_name("clip"),
                    Catch::Contains("objective must be one of 'binary', 'contrastive-binary', "
                                    "'convirt'") &&
                        Catch::Contains("got 'clip'"));
  CHECK_THROWS_WITH(train::Pretrainer(model, s.tokenizer, s.train, s.val,
                                      s.options((s.dir / "x").string()).objective("clip")),
                    Catch::Contains("got 'clip'"));
}

TEST_CASE("the contrastive-binary objective trains and checkpoints too", "[train]") {
  TinySetup s;
  auto model = s.model();
  train::Pretrainer t(
      model, s.tokenizer, s.train, s.val,
      s.options((s.dir / "bin").string()).objective("contrastive-binary").max_steps(4));
  auto r = t.run();
  CHECK(r.steps == 4);
  CHECK(std::isfinite(r.best_val_loss));
  CHECK(train::checkpoint_exists((s.dir / "bin" / "last.ckpt").string()));
  CHECK(t.objective()->name() == "binary");
  // Recorded under the name it has always had, so older run folders still resume.
  CHECK(read_all(s.dir / "bin" / "run_options.json").find(R"("objective": "binary")") !=
        std::string::npos);
}

namespace {

// A user's objective, written and registered outside the library: pull each image projection
// towards its report's, with a learned offset (so that the objective has state to optimise,
// checkpoint and restore).
class CosineAlignmentImpl : public train::PretrainObjectiveImpl {
 public:
  explicit CosineAlignmentImpl(const train::ObjectiveContext& c) {
    offset = register_parameter(
        "offset",
        torch::zeros({c.embedding_dim}, torch::TensorOptions().dtype(c.dtype).device(c.device)));
  }
  std::string name() const override { return "cosine-test"; }
  torch::Tensor forward(models::ConVIRTModelImpl& model, const train::ObjectiveBatch& batch,
                        train::StepMetrics* metrics) override {
    ++calls;
    auto [v, u] = train::embed_pairs(model, batch);
    auto loss = 1 - torch::cosine_similarity(v + offset, u, 1).mean();
    if (metrics) metrics->loss = loss.item<double>();
    return loss;
  }
  std::vector<torch::Tensor> no_decay_parameters() override { return {offset}; }
  std::string progress(const train::StepMetrics&) const override { return " | cosine"; }

  torch::Tensor offset;
  int64_t calls = 0;
};

void register_cosine_objective() {
  static const bool registered = [] {
    train::register_objective("cosine-test", [](const train::ObjectiveContext& c) {
      return std::make_shared<CosineAlignmentImpl>(c);
    });
    return true;
  }();
  (void)registered;
}

CosineAlignmentImpl& cosine_of(const train::Pretrainer& t) {
  auto* impl = dynamic_cast<CosineAlignmentImpl*>(t.objective().get());
  REQUIRE(impl != nullptr);
  return *impl;
}

}  // namespace

TEST_CASE("an objective registered by the program trains, checkpoints and resumes", "[train]") {
  register_cosine_objective();
  CHECK(train::objective_name("cosine-test") == "cosine-test");
  CHECK(train::objective_name("contrastive-binary") == "binary");
  CHECK_THROWS_WITH(train::register_objective("convirt",
                                              [](const train::ObjectiveContext& c) {
                                                return std::make_shared<CosineAlignmentImpl>(c);
                                              }),
                    Catch::Contains("'convirt' is already registered"));

  TinySetup s;
  auto opts = [&](const std::string& dir) {
    return s.options((s.dir / dir).string()).objective("cosine-test").max_steps(8);
  };
  auto model_a = s.model();
  train::Pretrainer a(model_a, s.tokenizer, s.train, s.val, opts("a"));
  std::vector<double> losses;
  auto ra = a.run([&](const train::StepMetrics& m) {
    if (!m.is_eval) losses.push_back(m.loss);
    return true;
  });
  CHECK(ra.steps == 8);
  auto& cos_a = cosine_of(a);
  // 8 steps and 2 evaluations, each of the validation batches of 8 (a last lone pair is skipped).
  const int64_t val_batches = s.val->size() / 8 + (s.val->size() % 8 >= 2 ? 1 : 0);
  CHECK(cos_a.calls == 8 + 2 * val_batches);
  REQUIRE(losses.size() == 8);
  for (const double l : losses) CHECK((l >= 0 && l <= 2));  // 1 - cosine
  CHECK(cos_a.offset.abs().sum().item<double>() > 0);       // the objective's own parameter learned
  CHECK(read_all(s.dir / "a" / "run_options.json").find(R"("objective": "cosine-test")") !=
        std::string::npos);

  {
    auto model_b = s.model();
    train::Pretrainer b(model_b, s.tokenizer, s.train, s.val, opts("b"));
    auto rb = b.run([&](const train::StepMetrics& m) { return m.is_eval || m.step < 4; });
    CHECK(rb.steps == 4);
  }
  auto model_c = s.model(/*seed=*/99);
  train::Pretrainer c(model_c, s.tokenizer, s.train, s.val, opts("b"));
  auto rc = c.run();
  CHECK(rc.steps == 8);
  CHECK(rc.best_val_loss == ra.best_val_loss);
  CHECK(same_weights(*model_a, *model_c));
  CHECK(torch::equal(cosine_of(c).offset, cos_a.offset));  // restored, then trained alike

  // Its folder resumes with its objective only.
  auto model_d = s.model();
  train::Pretrainer d(model_d, s.tokenizer, s.train, s.val,
                      opts("b").objective("convirt").max_steps(12));
  CHECK_THROWS_WITH(d.run(),
                    Catch::Contains("objective: recorded \"cosine-test\", now \"convirt\""));
}

TEST_CASE("the optimiser is an option, checkpointed and resumed exactly", "[train]") {
  TinySetup s;
  auto opts = [&](const std::string& dir, const std::string& optimizer) {
    return s.options((s.dir / dir).string()).optimizer(optimizer).max_steps(8);
  };
  auto adam = s.model();
  train::Pretrainer(adam, s.tokenizer, s.train, s.val, opts("adam", "adam")).run();
  // The default is recorded as before the option existed, so older folders resume as adam.
  CHECK(read_all(s.dir / "adam" / "run_options.json").find("optimizer") == std::string::npos);

  for (const std::string name : {"sgd", "adamw"}) {
    INFO("optimizer " << name);
    auto model_a = s.model();
    train::Pretrainer a(model_a, s.tokenizer, s.train, s.val, opts(name + "-a", name));
    a.run();
    CHECK(!same_weights(*model_a, *adam));  // another update rule
    CHECK(read_all(s.dir / (name + "-a") / "run_options.json")
              .find(R"("optimizer": ")" + name + "\"") != std::string::npos);
    {
      auto model_b = s.model();
      train::Pretrainer b(model_b, s.tokenizer, s.train, s.val, opts(name + "-b", name));
      auto rb = b.run([&](const train::StepMetrics& m) { return m.is_eval || m.step < 4; });
      CHECK(rb.steps == 4);
    }
    // A fresh model with another initialisation: the weights and the optimiser's state
    // (momentum, moments) come from the checkpoint.
    auto model_c = s.model(/*seed=*/99);
    train::Pretrainer c(model_c, s.tokenizer, s.train, s.val, opts(name + "-b", name));
    CHECK(c.run().steps == 8);
    CHECK(same_weights(*model_a, *model_c));

    auto model_d = s.model();
    train::Pretrainer d(model_d, s.tokenizer, s.train, s.val,
                        opts(name + "-b", "adam").max_steps(8));
    CHECK_THROWS_WITH(d.run(),
                      Catch::Contains("optimizer: recorded \"" + name + "\", now (absent)"));
  }
  auto model = s.model();
  CHECK_THROWS_WITH(train::Pretrainer(model, s.tokenizer, s.train, s.val, opts("x", "rmsprop")),
                    Catch::Contains("optimizer must be 'adam', 'adamw' or 'sgd', got 'rmsprop'"));
}

TEST_CASE("the text side is any function from sentences to token ids", "[train]") {
  TinySetup s;
  // Characters as tokens: byte b becomes id 1 + b % (vocab - 1), 0 pads. No vocabulary to record.
  const int64_t vocab = s.tokenizer->vocab_size();
  int64_t batches = 0;
  train::TokenizeFn chars = [&](const std::vector<std::string>& texts, int64_t max_length) {
    ++batches;
    int64_t longest = 1;
    for (const auto& t : texts)
      longest = std::max<int64_t>(longest, std::min<int64_t>(max_length, t.size()));
    const auto n = static_cast<int64_t>(texts.size());
    auto ids = torch::zeros({n, longest}, torch::kLong);
    auto mask = torch::zeros({n, longest}, torch::kLong);
    auto id = ids.accessor<int64_t, 2>();
    auto m = mask.accessor<int64_t, 2>();
    for (int64_t i = 0; i < n; ++i) {
      const auto& t = texts[static_cast<size_t>(i)];
      const int64_t len = std::min<int64_t>(longest, t.size());
      for (int64_t j = 0; j < len; ++j) {
        id[i][j] = 1 + static_cast<unsigned char>(t[static_cast<size_t>(j)]) % (vocab - 1);
        m[i][j] = 1;
      }
    }
    return train::TokenBatch{ids, mask};
  };
  auto model = s.model();
  train::Pretrainer t(model, chars, std::nullopt, s.train, s.val,
                      s.options((s.dir / "chars").string()).max_steps(4));
  auto r = t.run();
  CHECK(r.steps == 4);
  CHECK(std::isfinite(r.best_val_loss));
  CHECK(batches >= 4);
  CHECK(model->vocabulary().empty());  // nothing recorded: the function has no vocabulary
  const std::string record = read_all(s.dir / "chars" / "run_options.json");
  CHECK(record.find("vocab_hash") == std::string::npos);

  // A function that breaks the contract is named.
  auto bad = [](const std::vector<std::string>& texts, int64_t) {
    return train::TokenBatch{
        torch::zeros({static_cast<int64_t>(texts.size()) + 1, 3}, torch::kLong),
        torch::ones({static_cast<int64_t>(texts.size()) + 1, 3}, torch::kLong)};
  };
  auto model_b = s.model();
  train::Pretrainer b(model_b, bad, std::nullopt, s.train, s.val,
                      s.options((s.dir / "bad").string()).max_steps(2));
  CHECK_THROWS_WITH(b.run(), Catch::Contains("the text function must give input_ids"));
}
