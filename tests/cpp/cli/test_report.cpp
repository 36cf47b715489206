// pipeline/report: the figures and report.md a reproduction run writes beside its tables.
#include <convirt/pipeline/report.h>

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "test_util.h"

namespace ev = convirt::eval;
namespace pl = convirt::pipeline;
using Catch::Matchers::Contains;

namespace {

int64_t count(const std::string& s, const std::string& what) {
  int64_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

ev::Results two_methods() {
  ev::Results r;
  for (const char* key : {"1", "10", "100"}) {
    const double f = std::stod(key);
    r.set_classification("linear", "Random init", "CheXpert", key, 50 + f / 10, 2.0);
    r.set_classification("linear", "ConVIRT", "CheXpert", key, 70 + f / 10, 1.0);
    r.set_classification("finetune", "ConVIRT", "CheXpert", key, 75 + f / 10);  // one seed: no std
  }
  r.set_retrieval("ConVIRT", "text_image", 10, 55.0);
  return r;
}

}  // namespace

TEST_CASE("label-efficiency panels: a line per method through its fractions",
          "[pipeline][report]") {
  const auto panels = pl::label_efficiency_panels(two_methods());
  REQUIRE(panels.size() == 2);  // CheXpert linear, CheXpert fine-tuning; retrieval is not a curve
  CHECK(panels[0].title == "CheXpert, linear protocol");
  CHECK(panels[0].log_x);
  REQUIRE(panels[0].series.size() == 2);
  const auto& convirt = panels[0].series[1];
  CHECK(convirt.name == "ConVIRT");
  CHECK(convirt.x == std::vector<double>{1, 10, 100});
  REQUIRE(convirt.y.size() == 3);
  CHECK(convirt.y[0] == Approx(70.1));
  CHECK(convirt.y[2] == Approx(80));
  CHECK(convirt.err == std::vector<double>{1, 1, 1});
  REQUIRE(panels[1].series.size() == 1);
  CHECK(panels[1].series[0].err.empty());  // unknown standard deviations draw no bars
}

TEST_CASE("write_report: figures with their data and a report linking them", "[pipeline][report]") {
  convirt::test::TempDir dir("convirt-report");
  std::filesystem::create_directories(dir / "pretrain-convirt");
  convirt::test::write_text(dir / "pretrain-convirt" / "metrics.jsonl",
                            "{\"type\":\"train\",\"step\":10,\"loss\":2.5,\"lr\":0.001}\n"
                            "{\"type\":\"eval\",\"step\":10,\"val_loss\":2.75,\"lr\":0.001}\n"
                            "{\"type\":\"train\",\"step\":20,\"loss\":1.5,\"lr\":0.0005}\n"
                            "{\"type\":\"train\",\"step\":30,\"lo");  // cut by a kill mid-line
  pl::ReportInputs in;
  in.run_dir = dir.path().string();
  in.results = two_methods();
  in.pretraining_logs = {{"convirt", (dir / "pretrain-convirt" / "metrics.jsonl").string()}};
  in.tables = "## Table 1(a)\n\n| method |\n";
  const auto files = pl::write_report(in);

  const auto curves = convirt::test::read_text(files.label_efficiency_svg);
  CHECK(count(curves, "<circle class=\"point\"") == 9);
  CHECK_THAT(curves, Contains("data-x=\"10\" data-y=\"71\" data-err=\"1\""));
  const auto pre = convirt::test::read_text(files.pretraining_svg);
  CHECK_THAT(pre, Contains("data-x=\"20\" data-y=\"1.5\""));     // training loss
  CHECK_THAT(pre, Contains("data-x=\"10\" data-y=\"2.75\""));    // validation loss
  CHECK_THAT(pre, Contains("data-x=\"20\" data-y=\"0.0005\""));  // learning rate
  CHECK(count(pre, "<circle class=\"point\"") == 2 + 1 + 2);
  const auto md = convirt::test::read_text(files.report_md);
  CHECK_THAT(md, Contains("![label efficiency](label_efficiency.svg)"));
  CHECK_THAT(md, Contains("![pretraining curves](pretraining_curves.svg)"));
  CHECK_THAT(md, Contains("[pretrain-convirt/metrics.jsonl](pretrain-convirt/metrics.jsonl)"));
  CHECK_THAT(md, Contains("## Table 1(a)"));
  CHECK_FALSE(md.find("t-SNE") != std::string::npos);  // no figure3_tsne.svg in this folder

  in.pretraining_logs = {{"convirt", (dir / "missing.jsonl").string()}};
  CHECK_THROWS_WITH(pl::write_report(in), Contains("pretraining log of 'convirt' cannot be read"));
}
