// pipeline::pretrain, the one pretraining pipeline behind `convirt pretrain`, Python and the main
// job: its options as JSON (the form Python reads its defaults from), the vocabulary every saved
// model carries and the refusal of any other, and a run on CSV pairs with skipped rows counted,
// listed in skipped.tsv and bounded by max_bad_fraction.

#include <convirt/io/checkpoint.h>
#include <convirt/loss/infonce.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/model_text.h>
#include <convirt/pipeline/pretrain.h>

#include <torch/torch.h>
// After LibTorch, whose logging headers may define their own CHECK.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "fixtures.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace convirt;
using Catch::Matchers::Contains;

namespace {

std::vector<std::string> tiny_vocab(const std::vector<std::string>& words) {
  std::vector<std::string> v{"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  v.insert(v.end(), words.begin(), words.end());
  return v;
}

void write_vocab(const fs::path& p, const std::vector<std::string>& tokens) {
  std::string text;
  for (const auto& t : tokens) text += t + "\n";
  test::write_text_file(p, text);
}

const char* kBands[] = {"top", "middle", "bottom"};

// CSV pairs of band images: the report names the bright band. `bad_rows` rows are appended that
// must be skipped while indexing: a missing image file, and a report with no words.
fs::path write_csv_pairs(const fs::path& dir, const std::string& name, int64_t n, bool bad_rows) {
  std::string csv = "image,text\n";
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3;
    const std::string file = name + std::to_string(i) + ".png";
    test::write_band_png(dir / file, c, i + (name == "val" ? 500 : 0));
    csv += file + ",\"The " + std::string(kBands[c]) +
           " band is bright. No other finding is seen.\"\n";
  }
  if (bad_rows) {
    csv += "no-such-image.png,\"The top band is bright. Nothing else.\"\n";
    test::write_band_png(dir / (name + "-empty.png"), 0, 999);
    csv += name + "-empty.png,\"\"\n";
  }
  test::write_text_file(dir / (name + ".csv"), csv);
  return dir / (name + ".csv");
}

pipeline::PretrainJob csv_job(const fs::path& data, const fs::path& out) {
  pipeline::PretrainJob job(out.string());
  job.train_csv((data / "train.csv").string())
      .val_csv((data / "val.csv").string())
      .image_size(32)
      .vocab_size(120)
      .threads(1)
      .device("cpu");
  job.trainer().batch_size(4).max_steps(2).eval_every(2).log_every(1).workers(0).verbose(true);
  return job;
}

}  // namespace

TEST_CASE("pretraining options: every option round-trips through JSON, errors name the option",
          "[pipeline][pretrain]") {
  pipeline::PretrainJob job("runs/x");
  job.data("root").model("paper").image_size(96).vocab_size(512).device("cpu").skip_bad_rows(true);
  job.init().image_init("r50.pth").text_frozen_layers(3);
  job.trainer()
      .objective("binary")
      .precision(train::Precision::kBf16)
      .sync_batch_norm(train::SyncBatchNormMode::kOff)
      .learning_rate(3e-4)
      .max_bad_fraction(0.2)
      .seed(7)
      .resume(false);
  const auto back = pipeline::PretrainJob::from_json(job.to_json());
  CHECK(back.to_json() == job.to_json());
  CHECK(back.out_dir() == "runs/x");
  CHECK(back.init().image_init() == "r50.pth");
  CHECK(back.trainer().objective() == "binary");
  CHECK(back.trainer().precision() == train::Precision::kBf16);
  CHECK(back.trainer().sync_batch_norm() == train::SyncBatchNormMode::kOff);
  CHECK(back.trainer().max_bad_fraction() == 0.2);
  CHECK(back.trainer().seed() == 7);
  CHECK(back.skip_bad_rows());
  CHECK_FALSE(back.trainer().resume());

  // The defaults are the library's (the trainer's paper values), and absent keys keep them.
  const auto defaults = pipeline::PretrainJob::from_json("{}");
  CHECK(defaults.trainer().eval_every() == train::PretrainOptions("").eval_every());
  CHECK(defaults.trainer().learning_rate() == train::PretrainOptions("").learning_rate());
  CHECK(defaults.device() == train::kDefaultDevice);

  CHECK_THROWS_WITH(
      pipeline::PretrainJob::from_json(R"({"learning_rte": 1})"),
      Contains("unknown pretraining option(s) learning_rte") && Contains("learning_rate"));
  CHECK_THROWS_WITH(pipeline::PretrainJob::from_json(R"({"batch_size": 3.5})"),
                    Contains("batch_size must be an integer, got 3.5"));
  CHECK_THROWS_WITH(pipeline::PretrainJob::from_json(R"({"augment": "yes"})"),
                    Contains("augment must be true or false"));
  CHECK_THROWS_WITH(pipeline::PretrainJob::from_json(R"({"seed": -1})"),
                    Contains("seed must be >= 0"));
  CHECK_THROWS_WITH(pipeline::PretrainJob::from_json(R"({"objective": "clip"})"), Contains("clip"));
  CHECK_THROWS_WITH(pipeline::PretrainJob::from_json(R"({"sync_batch_norm": "yes"})"),
                    Contains("sync_batch_norm must be 'auto', 'on' or 'off', got 'yes'"));
  CHECK(defaults.trainer().sync_batch_norm() == train::SyncBatchNormMode::kAuto);
  CHECK_THROWS_WITH(pipeline::PretrainJob::from_json("[1]"), Contains("JSON object"));
}

TEST_CASE("a saved model carries its vocabulary, and another vocabulary is refused by fingerprint",
          "[pipeline][pretrain][vocab]") {
  test::TempDir tmp("convirt-modelvocab");
  auto config = models::small_preset(64);
  config.image_size(32);
  auto model = models::make_convirt(config);
  const auto own = tiny_vocab({"left", "right", "effusion", "##s"});
  model->set_vocabulary({own, /*lowercase=*/false, std::nullopt});
  const std::string path = (tmp / "run" / "model.pt").string();
  fs::create_directories(tmp / "run");
  io::save_convirt(*model, path);

  auto loaded = io::load_convirt(path);
  CHECK(loaded->vocabulary().tokens == own);
  CHECK_FALSE(loaded->vocabulary().lowercase);
  CHECK(io::read_convirt_vocabulary(path).tokens == own);
  auto tok = pipeline::model_tokenizer(*loaded);
  CHECK(tok->vocab() == own);
  CHECK_FALSE(tok->options().lowercase());

  // The same tokens in a file are accepted; other tokens (or another order) are not.
  write_vocab(tmp / "same.txt", own);
  CHECK(pipeline::model_tokenizer(*loaded, (tmp / "same.txt").string())->vocab() == own);
  const auto other = tiny_vocab({"right", "left", "effusion", "##s"});
  write_vocab(tmp / "other.txt", other);
  CHECK_THROWS_WITH(pipeline::model_tokenizer(*loaded, (tmp / "other.txt").string(), path),
                    Contains("is not the vocabulary the model") &&
                        Contains(text::vocab_fingerprint(own)) &&
                        Contains(text::vocab_fingerprint(other)));
  CHECK_THROWS_WITH(pipeline::model_tokenizer(*loaded, (tmp / "missing.txt").string()),
                    Contains("vocab: no such file"));

  // A model without an embedded vocabulary falls back to the run folder's vocab.txt.
  auto bare = models::make_convirt(config);
  const std::string bare_path = (tmp / "bare" / "model.pt").string();
  fs::create_directories(tmp / "bare");
  io::save_convirt(*bare, bare_path);
  CHECK(io::read_convirt_vocabulary(bare_path).empty());
  CHECK_THROWS_WITH(pipeline::model_tokenizer(*bare, "", bare_path),
                    Contains("carries no vocabulary"));
  write_vocab(tmp / "bare" / "vocab.txt", other);
  CHECK(pipeline::model_tokenizer(*bare, "", bare_path)->vocab() == other);
  // More tokens than the text encoder has rows cannot be the model's.
  std::vector<std::string> big = tiny_vocab({});
  for (int i = 0; i < 80; ++i) big.push_back("w" + std::to_string(i));
  write_vocab(tmp / "big.txt", big);
  CHECK_THROWS_WITH(pipeline::model_tokenizer(*bare, (tmp / "big.txt").string()),
                    Contains("is it the model's own"));
  CHECK_THROWS_WITH(bare->set_vocabulary({big, true, std::nullopt}), Contains("vocab_size 64"));
}

TEST_CASE("pipeline::pretrain on CSV pairs: skipped rows counted and listed, the budget enforced",
          "[pipeline][pretrain]") {
  test::TempDir tmp("convirt-pretrain-csv");
  const fs::path data = tmp / "data";
  write_csv_pairs(data, "train", 16, /*bad_rows=*/true);
  write_csv_pairs(data, "val", 8, /*bad_rows=*/false);

  // 2 of 18 rows are unusable: more than a 5% budget allows.
  auto strict = csv_job(data, tmp / "strict");
  strict.trainer().max_bad_fraction(0.05);
  CHECK_THROWS_WITH(pipeline::pretrain(strict), Contains("too many bad samples"));

  auto job = csv_job(data, tmp / "run");
  job.trainer().max_bad_fraction(0.2);
  const auto run = pipeline::pretrain(job);
  CHECK(run.result.steps == 2);
  CHECK(run.model_path == (tmp / "run" / "model.pt").string());
  REQUIRE(fs::exists(run.model_path));
  const std::string skipped = test::read_text(tmp / "run" / "skipped.tsv");
  CHECK_THAT(skipped, Contains("split\tstage\tpath\treason\n"));
  CHECK_THAT(skipped, Contains("train\tindex\t"));
  CHECK_THAT(skipped, Contains("no-such-image.png"));
  CHECK(std::count(skipped.begin(), skipped.end(), '\n') == 3);  // header + 2 rows

  // The vocabulary was built from the training reports into the run folder, and travels in the
  // model.
  const auto built = text::WordPieceTokenizer::from_vocab_file(run.vocab_path);
  CHECK(run.vocab_path == (tmp / "run" / "vocab.txt").string());
  CHECK(io::read_convirt_vocabulary(run.model_path).tokens == built.vocab());
  CHECK(io::read_convirt_config(run.model_path).image_size() == 32);
  CHECK(io::read_convirt_config(run.model_path).bert().config().vocab_size() == built.vocab_size());

  // Options that cannot work fail before any data is read.
  auto both = csv_job(data, tmp / "both");
  both.data("somewhere");
  CHECK_THROWS_WITH(pipeline::pretrain(both), Contains("not both"));
  auto typo = csv_job(data, tmp / "typo");
  typo.vocab((tmp / "no-such-vocab.txt").string());
  CHECK_THROWS_WITH(pipeline::pretrain(typo), Contains("vocab: no such file"));
  CHECK_FALSE(fs::exists(tmp / "no-such-vocab.txt"));

  // A ragged row (line 20: 3 fields of 2) stops the run before training, naming the line; with
  // skip_bad_rows it is one more skipped pair in skipped.tsv, counted against the budget.
  test::write_text_file(data / "train.csv",
                        test::read_text(data / "train.csv") + "train0.png,\"The top band.\",x\n");
  auto ragged = csv_job(data, tmp / "ragged");
  ragged.trainer().max_bad_fraction(0.2);
  CHECK_THROWS_WITH(pipeline::pretrain(ragged),
                    Contains("train.csv line 20: ragged row: expected 2 fields"));
  auto skipping = csv_job(data, tmp / "skipping");
  skipping.skip_bad_rows(true).trainer().max_bad_fraction(0.2);
  pipeline::pretrain(skipping);
  const std::string skipped3 = test::read_text(tmp / "skipping" / "skipped.tsv");
  CHECK(std::count(skipped3.begin(), skipped3.end(), '\n') == 4);  // header + 3 rows
  CHECK_THAT(skipped3, Contains("train.csv line 20\tragged row: expected 2 fields"));
}

TEST_CASE("pipeline::pretrain with a learned temperature: it moves, stays in bounds and resumes",
          "[pipeline][pretrain][temperature]") {
  test::TempDir tmp("convirt-pretrain-tau");
  const fs::path data = tmp / "data";
  write_csv_pairs(data, "train", 16, /*bad_rows=*/false);
  write_csv_pairs(data, "val", 8, /*bad_rows=*/false);
  auto job = csv_job(data, tmp / "run");
  job.trainer().learn_temperature(true).learning_rate(0.05).max_steps(4).eval_every(2);
  std::vector<double> taus;
  pipeline::PretrainHooks hooks;
  hooks.on_step = [&](const train::StepMetrics& m) {
    if (!m.is_eval) taus.push_back(m.temperature);
    return true;
  };
  pipeline::pretrain(job, hooks);
  REQUIRE(taus.size() == 4);
  // Each logged tau is the one its step's loss used; from step 2 on it has been learned.
  CHECK(taus[0] == Approx(0.1));
  for (double t : taus) {
    CHECK(t >= convirt::kMinLearnedTemperature);
    CHECK(t <= convirt::kMaxLearnedTemperature);
  }
  CHECK(taus.back() != taus.front());
  CHECK_THAT(test::read_text(tmp / "run" / "run_options.json"),
             Contains("\"learn_temperature\": true"));
  CHECK_THAT(test::read_text(tmp / "run" / "metrics.jsonl"), Contains("\"temperature\""));

  // A resumed run continues from the learned value, not from --temperature.
  auto more = job;
  more.trainer().max_steps(6).allow_option_change(true);
  std::vector<double> resumed;
  hooks.on_step = [&](const train::StepMetrics& m) {
    if (!m.is_eval) resumed.push_back(m.temperature);
    return true;
  };
  pipeline::pretrain(more, hooks);
  REQUIRE(resumed.size() == 2);
  CHECK(std::abs(resumed.front() - taus.back()) < std::abs(0.1 - taus.back()));

  // The program's progress line shows the learned tau.
  const auto run = test::run_convirt(
      "pretrain --train-csv '" + (data / "train.csv").string() + "' --val-csv '" +
          (data / "val.csv").string() + "' --out '" + (tmp / "cli").string() +
          "' --image-size 32 --vocab-size 120 --threads 1 --device cpu --batch-size 4 "
          "--max-steps 2 --eval-every 2 --log-every 1 --workers 0 --learn-temperature",
      tmp / "cli.log");
  INFO(run.output);
  CHECK(run.status == 0);
  CHECK_THAT(run.output, Contains("| tau 0.1"));

  // The binary objective has no temperature to learn.
  auto binary = csv_job(data, tmp / "binary");
  binary.trainer().learn_temperature(true).objective("binary");
  CHECK_THROWS_WITH(pipeline::pretrain(binary), Contains("learn_temperature needs the convirt"));
}
