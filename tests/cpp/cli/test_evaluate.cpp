// pipeline::evaluate on tiny datasets in each of the paper's formats: the task, metric, fractions
// and splits each dataset gets, the progress callback, the equality of the in-memory and streamed
// fine-tuning paths, and the errors a user meets first.
#include <convirt/pipeline/evaluate.h>

#include <cmath>

#include "fixtures.h"
#include "test_util.h"
// After every header that may pull in glog, whose CHECK would shadow Catch's.
#include <catch2/catch.hpp>

namespace pl = convirt::pipeline;
using convirt::test::TempDir;

namespace {

pl::EvaluateOptions quick(const std::string& model) {
  return pl::EvaluateOptions(model).seeds(2).max_epochs(5).learning_rate(1e-2).workers(1);
}

}  // namespace

TEST_CASE("evaluate: COVIDx is 3-class accuracy at 10% and 100%", "[pipeline][evaluate]") {
  TempDir tmp("convirt-evaluate");
  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  convirt::test::write_covidx(tmp / "covidx");
  std::vector<pl::EvaluateProgress> runs;
  auto results = pl::evaluate(
      quick(model).dataset(pl::DatasetKind::kCovidx).data_root((tmp / "covidx").string()),
      [&](const pl::EvaluateProgress& p) { runs.push_back(p); });
  REQUIRE(runs.size() == 4);  // 2 fractions x 2 seeds
  CHECK(runs.front().fraction == 0.1);
  CHECK(runs.back().fraction == 1.0);
  CHECK(runs.back().run == 4);
  CHECK(runs.back().total_runs == 4);
  CHECK(runs.back().task == "COVIDx");
  CHECK(runs.back().method == tmp.path().filename().string());  // the run folder
  CHECK(pl::method_name_for("a/b/step9.pt") == "step9");
  CHECK_FALSE(runs.back().streamed);
  CHECK(results.fractions("linear", "COVIDx") == std::vector<std::string>{"10", "100"});
  auto all = results.classification("linear", runs.back().method, "COVIDx", "100");
  REQUIRE(all.has_value());
  // Accuracy in percent; the band brightness is easy to read off even random features.
  CHECK(all->mean > 50.0);
  CHECK(all->mean <= 100.0);
  CHECK(all->mean == Approx(50.0 * (runs[2].metric + runs[3].metric)));
}

TEST_CASE("evaluate: MURA, RSNA and CheXpert are AUC tasks", "[pipeline][evaluate]") {
  TempDir tmp("convirt-evaluate");
  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  SECTION("MURA at patient, study and image level") {
    convirt::test::write_mura(tmp / "mura");
    for (const std::string level : {"patient", "study", "image"}) {
      auto r = pl::evaluate(quick(model)
                                .dataset(pl::DatasetKind::kMura)
                                .data_root((tmp / "mura").string())
                                .mura_level(level)
                                .fractions({1.0})
                                .method_name("m"));
      auto v = r.classification("linear", "m", "MURA", "100");
      REQUIRE(v.has_value());
      CHECK(v->mean >= 0.0);
      CHECK(v->mean <= 100.0);
    }
    CHECK_THROWS_WITH(pl::evaluate(quick(model)
                                       .dataset(pl::DatasetKind::kMura)
                                       .data_root((tmp / "mura").string())
                                       .mura_level("hospital")),
                      Catch::Contains("mura_level"));
  }
  SECTION("RSNA: the test split is carved out of the labels") {
    convirt::test::write_rsna(tmp / "rsna");
    int64_t train_examples = 0;
    auto r = pl::evaluate(
        quick(model).dataset(pl::DatasetKind::kRsna).data_root((tmp / "rsna").string()).seeds(1),
        [&](const pl::EvaluateProgress& p) {
          train_examples = std::max(train_examples, p.train_examples);
        });
    CHECK(r.fractions("linear", "RSNA") == std::vector<std::string>{"1", "10", "100"});
    // 60 patients: ~10% test, then ~15% of the rest for validation.
    CHECK(train_examples >= 40);
    CHECK(train_examples <= 50);
  }
  SECTION("CheXpert") {
    convirt::test::write_chexpert(tmp / "chex");
    auto r =
        pl::evaluate(quick(model)
                         .train_csv((tmp / "chex" / "CheXpert-v1.0-small" / "train.csv").string())
                         .test_csv((tmp / "chex" / "CheXpert-v1.0-small" / "valid.csv").string())
                         .fractions({1.0})
                         .method_name("model"));
    auto v = r.classification("linear", "model", "CheXpert", "100");
    REQUIRE(v.has_value());
    CHECK(v->mean > 50.0);
  }
}

TEST_CASE("evaluate: streamed fine-tuning gives the in-memory result", "[pipeline][evaluate]") {
  TempDir tmp("convirt-evaluate");
  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  convirt::test::write_covidx(tmp / "covidx", 36, 18);
  auto opts = quick(model)
                  .dataset(pl::DatasetKind::kCovidx)
                  .data_root((tmp / "covidx").string())
                  .protocol(pl::Protocol::kFinetune)
                  .fractions({1.0})
                  .seeds(1)
                  .batch_size(8)
                  .max_steps(6)
                  .warmup_steps(2)
                  .threads(1)
                  .workers(2);
  std::vector<pl::EvaluateProgress> memory_runs, stream_runs;
  auto memory = pl::evaluate(pl::EvaluateOptions(opts).data_mode(pl::DataMode::kInMemory),
                             [&](const pl::EvaluateProgress& p) { memory_runs.push_back(p); });
  auto stream = pl::evaluate(pl::EvaluateOptions(opts).data_mode(pl::DataMode::kStream),
                             [&](const pl::EvaluateProgress& p) { stream_runs.push_back(p); });
  REQUIRE(memory_runs.size() == 1);
  REQUIRE(stream_runs.size() == 1);
  CHECK_FALSE(memory_runs[0].streamed);
  CHECK(stream_runs[0].streamed);
  CHECK(stream_runs[0].metric == memory_runs[0].metric);
  // kAuto streams once the decoded images exceed the memory bound.
  std::vector<pl::EvaluateProgress> auto_runs;
  pl::evaluate(pl::EvaluateOptions(opts).data_mode(pl::DataMode::kAuto).max_memory_bytes(1000),
               [&](const pl::EvaluateProgress& p) { auto_runs.push_back(p); });
  REQUIRE(auto_runs.size() == 1);
  CHECK(auto_runs[0].streamed);
  CHECK(auto_runs[0].metric == memory_runs[0].metric);
}

TEST_CASE("evaluate: a bad image is skipped, counted and reported alike in memory and streamed",
          "[pipeline][evaluate]") {
  // The same corrupt fixtures for both data modes: in the test split a truncated PNG, a truncated
  // JPEG and a text file named .png (3 of 60: the 5% budget exactly); in the training data another
  // truncated PNG (wherever the split puts it, at most 5% of its part) and a missing file (left out
  // when the dataset is indexed, before either mode reads an image).
  TempDir tmp("convirt-evaluate");
  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  const auto root = tmp / "covidx";
  convirt::test::write_covidx(root, 160, 60);
  auto cut = [](const std::filesystem::path& p) {
    const std::string bytes = convirt::test::read_text(p);
    convirt::test::write_text(p, bytes.substr(0, bytes.size() / 2));
  };
  cut(root / "test" / "test0.png");
  convirt::test::write_text(
      root / "test" / "test1.png",
      convirt::image::encode_jpeg(torch::rand({1, 32, 32}), 90).substr(0, 200));
  convirt::test::write_text(root / "test" / "test2.png", "not an image\n");
  cut(root / "train" / "train5.png");
  std::filesystem::remove(root / "train" / "train7.png");
  auto opts = quick(model)
                  .dataset(pl::DatasetKind::kCovidx)
                  .data_root(root.string())
                  .protocol(pl::Protocol::kFinetune)
                  .fractions({1.0})
                  .seeds(1)
                  .batch_size(16)
                  .max_steps(4)
                  .warmup_steps(2)
                  .threads(1)
                  .workers(2);
  std::vector<pl::EvaluateProgress> memory_runs, stream_runs;
  pl::evaluate(pl::EvaluateOptions(opts).data_mode(pl::DataMode::kInMemory),
               [&](const pl::EvaluateProgress& p) { memory_runs.push_back(p); });
  pl::evaluate(pl::EvaluateOptions(opts).data_mode(pl::DataMode::kStream),
               [&](const pl::EvaluateProgress& p) { stream_runs.push_back(p); });
  REQUIRE(memory_runs.size() == 1);
  REQUIRE(stream_runs.size() == 1);
  CHECK(stream_runs[0].streamed);
  CHECK(memory_runs[0].bad_images == 4);
  CHECK(stream_runs[0].bad_images == memory_runs[0].bad_images);
  CHECK(stream_runs[0].train_examples == memory_runs[0].train_examples);
  CHECK(stream_runs[0].metric == memory_runs[0].metric);
  CHECK(std::isfinite(stream_runs[0].metric));
  // One bad image more in the test split is past 5%: both modes refuse it the same way.
  cut(root / "test" / "test3.png");
  for (auto mode : {pl::DataMode::kInMemory, pl::DataMode::kStream}) {
    CHECK_THROWS_WITH(pl::evaluate(pl::EvaluateOptions(opts).data_mode(mode)),
                      Catch::Contains("too many bad samples (4 of 60"));
  }
}

TEST_CASE("evaluate: errors name the option", "[pipeline][evaluate]") {
  TempDir tmp("convirt-evaluate");
  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  CHECK_THROWS_WITH(pl::evaluate(pl::EvaluateOptions((tmp / "none.pt").string())),
                    Catch::Contains("model_path"));
  CHECK_THROWS_WITH(pl::evaluate(pl::EvaluateOptions(model).dataset(pl::DatasetKind::kRsna)),
                    Catch::Contains("data_root must be set for dataset rsna"));
  CHECK_THROWS_WITH(pl::evaluate(pl::EvaluateOptions(model).train_csv("/no/such.csv")),
                    Catch::Contains("train_csv"));
  CHECK_THROWS_AS(pl::parse_dataset_kind("imagenet"), c10::ValueError);
  CHECK_THROWS_AS(pl::parse_protocol("zero-shot"), c10::ValueError);
  CHECK_THROWS_AS(pl::parse_data_mode("disk"), c10::ValueError);
  CHECK(pl::parse_dataset_kind(pl::to_string(pl::DatasetKind::kMura)) == pl::DatasetKind::kMura);
  CHECK(pl::task_name(pl::DatasetKind::kCovidx) == "COVIDx");
  convirt::test::write_covidx(tmp / "covidx", 12, 6);
  CHECK_THROWS_WITH(pl::evaluate(pl::EvaluateOptions(model)
                                     .dataset(pl::DatasetKind::kCovidx)
                                     .data_root((tmp / "covidx").string())
                                     .fractions({0.0})),
                    Catch::Contains("fractions must be in (0, 1]"));
}
