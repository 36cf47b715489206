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
