// t-SNE, the SVG scatter plot and the results tables / results.json.
#include <convirt/eval/line_chart.h>
#include <convirt/eval/plot.h>
#include <convirt/eval/tables.h>
#include <convirt/eval/tsne.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include "test_util.h"

namespace ev = convirt::eval;
using Catch::Matchers::Contains;

namespace {

std::pair<at::Tensor, at::Tensor> clusters(int64_t k, int64_t per, int64_t dim, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto labels = at::arange(k, at::kLong).repeat_interleave(per);
  auto centres = 6.0 * at::randn({k, dim}, gen);
  return {centres.index_select(0, labels) + at::randn({k * per, dim}, gen), labels};
}

int64_t count(const std::string& s, const std::string& what) {
  int64_t n = 0;
  for (size_t pos = s.find(what); pos != std::string::npos; pos = s.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("t-SNE keeps separated clusters separated and is deterministic", "[eval][tsne]") {
  auto [x, labels] = clusters(4, 30, 20, 1);
  auto opts = ev::TSNEOptions().perplexity(10).max_iterations(500).seed(2);
  auto r = ev::tsne(x, opts);
  REQUIRE(r.embedding.sizes() == at::IntArrayRef({120, 2}));
  CHECK(at::isfinite(r.embedding).all().item<bool>());
  CHECK(ev::knn_label_agreement(r.embedding, labels, 5) > 0.97);
  CHECK(r.kl_divergence > 0);
  CHECK(r.kl_divergence < 1.0);
  CHECK(ev::tsne(x, opts).embedding.equal(r.embedding));
  CHECK_FALSE(ev::tsne(x, opts.seed(3)).embedding.equal(r.embedding));
  // Unstructured data: neighbours agree with random labels only at chance (about 1/4).
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  auto noise = ev::tsne(at::randn({120, 20}, gen), opts);
  CHECK(ev::knn_label_agreement(noise.embedding, labels.index_select(0, at::randperm(120, gen)),
                                5) < 0.5);
  CHECK(ev::tsne(x.to(at::kFloat), ev::TSNEOptions().perplexity(10).max_iterations(50).dims(3))
            .embedding.size(1) == 3);
}

TEST_CASE("t-SNE rejects bad input", "[eval][tsne]") {
  CHECK_THROWS_WITH(ev::tsne(at::randn({10, 3}), ev::TSNEOptions().perplexity(10)),
                    Contains("perplexity must be in (0, N = 10), got 10"));
  CHECK_THROWS_WITH(ev::tsne(at::randn({10})), Contains("x must be 2-D [N, D], got [10]"));
  auto bad = at::randn({5, 2});
  bad[1][1] = std::nan("");
  CHECK_THROWS_WITH(ev::tsne(bad, ev::TSNEOptions().perplexity(2)), Contains("x must be finite"));
  CHECK_THROWS_WITH(ev::knn_label_agreement(at::randn({4, 2}), at::zeros({4}, at::kLong), 4),
                    Contains("k must be in [1, N - 1 = 3], got 4"));
}

TEST_CASE("scatter SVG: one circle per point, a legend entry per category", "[eval][plot]") {
  auto [x, labels] = clusters(3, 10, 2, 4);
  auto opts = ev::ScatterPlotOptions()
                  .title("Figure 3 <t-SNE>")
                  .category_names({"Atelectasis", "Edema & co"});
  auto svg = ev::render_scatter_svg({{"ImageNet", x, labels}, {"ConVIRT", x * 2, labels}}, opts);
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(count(svg, "<circle") == 2 * 30 + 3);
  CHECK(count(svg, "<g class=\"panel\">") == 2);
  CHECK_THAT(svg, Contains("Figure 3 &lt;t-SNE&gt;"));
  CHECK_THAT(svg, Contains("Edema &amp; co"));
  CHECK_THAT(svg, Contains("class 2"));  // no name given for id 2
  CHECK_THAT(svg, Contains("#1f77b4"));

  convirt::test::TempDir dir("convirt-eval-plot");
  const auto path = (dir / "fig.svg").string();
  ev::write_scatter_svg(path, {{"ConVIRT", x, labels}}, opts);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  CHECK(count(ss.str(), "<circle") == 30 + 3);
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    CHECK(entry.path().filename() == "fig.svg");  // no temporary left beside it
  }
  // The folder cannot exist: its would-be parent is a file.
  CHECK_THROWS_WITH(
      ev::write_scatter_svg((dir / "fig.svg" / "sub" / "x.svg").string(), {{"a", x, labels}}),
      Contains("cannot create the folder of figure"));
  CHECK_THROWS_WITH(ev::render_scatter_svg({{"a", at::randn({4, 3}), at::zeros({4}, at::kLong)}}),
                    Contains("panels[0].points must be [N, 2], got [4, 3]"));
  CHECK_THROWS_AS(ev::render_scatter_svg({{"a", at::randn({4, 2}), at::zeros({4})}}),
                  c10::TypeError);
}

TEST_CASE("line chart SVG: every point with its data, error bars, log axes, broken lines",
          "[eval][plot]") {
  ev::LineChartPanel auc{"CheXpert, linear", "labels (%)", "AUC (%)", true, false, {}};
  auc.series.push_back({"ConVIRT", {1, 10, 100}, {80.5, 88.25, 91}, {1.5, 0.75, 0.25}});
  auc.series.push_back({"Random <init>", {1, 10, 100}, {55, 60, 70}, {}});
  ev::LineChartPanel loss{"Pretraining", "step", "loss", false, false, {}};
  loss.series.push_back({"validation", {0, 100, 200, 300}, {2.0, std::nan(""), 1.0, 0.5}, {}});
  const auto svg = ev::render_line_chart_svg({auc, loss}, ev::LineChartOptions().title("Figures"));
  CHECK(svg.rfind("<?xml", 0) == 0);
  CHECK(count(svg, "<g class=\"panel\">") == 2);
  CHECK(count(svg, "<circle class=\"point\"") == 3 + 3 + 3);  // the NaN point is skipped
  CHECK(count(svg, "class=\"error-bar\"") == 3);
  CHECK_THAT(svg, Contains("data-x=\"10\" data-y=\"88.25\" data-err=\"0.75\""));
  CHECK_THAT(svg, Contains("Random &lt;init&gt;"));
  // The NaN breaks the validation line into two pieces: two "M" commands in its path.
  const auto series = svg.find("data-name=\"validation\"");
  REQUIRE(series != std::string::npos);
  const auto d = svg.substr(svg.find("<path d=\"", series), svg.find("/>", series) - series);
  CHECK(count(d, "M") == 2);
  // A log x axis puts 1, 10, 100 at equal distances.
  auto cx_of = [&](const std::string& data) {
    const auto at = svg.find(data);
    REQUIRE(at != std::string::npos);
    const auto start = svg.rfind("cx=\"", at) + 4;
    return std::stod(svg.substr(start, svg.find('"', start) - start));
  };
  const double c1 = cx_of("data-x=\"1\" data-y=\"80.5\""),
               c10 = cx_of("data-x=\"10\" data-y=\"88.25\""),
               c100 = cx_of("data-x=\"100\" data-y=\"91\"");
  CHECK(c10 - c1 == Approx(c100 - c10).margin(1e-3));
  CHECK(c10 - c1 > 50);

  convirt::test::TempDir dir("convirt-eval-line");
  ev::write_line_chart_svg((dir / "curves.svg").string(), {auc});
  CHECK(count(convirt::test::read_text(dir / "curves.svg"), "<circle class=\"point\"") == 6);

  CHECK_THROWS_WITH(ev::render_line_chart_svg({}), Contains("panels must hold at least one panel"));
  ev::LineChartPanel ragged{"t", "x", "y", false, false, {{"a", {1, 2}, {1}, {}}}};
  CHECK_THROWS_WITH(
      ev::render_line_chart_svg({ragged}),
      Contains("panels[0].series[0]: x and y must have the same length, got 2 and 1"));
  ev::LineChartPanel negative{"t", "x", "y", false, false, {{"a", {1}, {1}, {-1}}}};
  CHECK_THROWS_WITH(ev::render_line_chart_svg({negative}),
                    Contains("panels[0].series[0].err[0] must be >= 0, got -1"));
}

TEST_CASE("results: tables shaped like the paper and a results.json round trip", "[eval][tables]") {
  ev::Results res;
  std::vector<ev::SweepCell> cells{ev::summarize({0.90, 0.92}, 0.01), ev::summarize({0.93}, 0.1),
                                   ev::summarize({0.95, 0.95}, 1.0)};
  ev::add_sweep(res, "linear", "Random init", "CheXpert", cells);
  res.set_classification("linear", "ConVIRT", "CheXpert", "100", 97.25, 0.5);
  res.set_classification("linear", "ConVIRT", "COVIDx", "10", 85.0);
  res.set_classification("finetune", "ConVIRT", "CheXpert", "1", NAN);
  ev::RetrievalResult rr;
  rr.precision = {{5, 0.45}, {10, 0.429}, {50, 0.357}};
  ev::add_retrieval(res, "ConVIRT", "image_image", rr);
  res.set_retrieval("ConVIRT", "text_image", 10, 57.5);

  CHECK(ev::fraction_key(0.01) == "1");
  CHECK(ev::fraction_key(0.1) == "10");
  CHECK(ev::fraction_key(1.0) == "100");
  auto v = res.classification("linear", "Random init", "CheXpert", "1");
  REQUIRE(v.has_value());
  CHECK(v->mean == Approx(91.0));
  CHECK(v->stddev == Approx(100 * std::sqrt(0.0002)));
  CHECK(std::isnan(res.classification("linear", "Random init", "CheXpert", "10")->stddev));
  CHECK_FALSE(res.classification("linear", "ConVIRT", "CheXpert", "1").has_value());
  CHECK(res.methods("linear") == std::vector<std::string>{"Random init", "ConVIRT"});
  CHECK(res.tasks("linear") == std::vector<std::string>{"CheXpert", "COVIDx"});

  const auto table = ev::format_classification_table(res, "linear");
  CHECK_THAT(table,
             Contains("| Method | CheXpert 1% | CheXpert 10% | CheXpert 100% | COVIDx 10% |"));
  CHECK_THAT(table, Contains("| Random init | 91.0 ± 1.4 | 93.0 | 95.0 ± 0.0 | - |"));
  CHECK_THAT(table, Contains("| ConVIRT | - | - | 97.2 ± 0.5 | 85.0 |"));
  const auto t2 = ev::format_retrieval_table(res);
  CHECK_THAT(t2, Contains("| Method | image→image P@5 | image→image P@10 | image→image P@50 | "
                          "text→image P@10 |"));
  CHECK_THAT(t2, Contains("| ConVIRT | 45.0 | 42.9 | 35.7 | 57.5 |"));

  const auto json = res.to_json();
  CHECK_THAT(json, Contains("\"linear\""));
  CHECK_THAT(json, Contains("\"100\": 97.25"));
  CHECK_THAT(json, Contains("\"text_image\""));
  CHECK_THAT(json, Contains("\"1\": null"));  // NaN mean
  CHECK(json.find("\"linear\"") < json.find("\"finetune\""));
  CHECK(json.find("\"Random init\"") < json.find("\"ConVIRT\""));

  convirt::test::TempDir dir("convirt-eval-tables");
  const auto path = (dir / "results.json").string();
  res.save(path);
  auto back = ev::Results::load(path);
  CHECK(back.to_json() == json);
  CHECK(back.retrieval("ConVIRT", "image_image", 10)->mean == Approx(42.9));

  CHECK_THROWS_WITH(ev::Results::from_json("{\"linear\": {\"A\": {\"T\": {\"1\": \"x\"}}}}"),
                    Contains("linear.A.T.1 must be a number or null"));
  CHECK_THROWS_WITH(ev::Results::from_json("[1"), Contains("not valid JSON"));
  CHECK_THROWS_WITH(res.set_retrieval("M", "image_text", 5, 1.0),
                    Contains("direction must be \"image_image\" or \"text_image\""));
  CHECK_THROWS_AS(ev::Results::load((dir / "nope.json").string()), c10::ValueError);
}
