// Metrics and retrieval, checked against scikit-learn / NumPy (Debian's /usr/bin/python3) on random
// data with ties, plus hand-computed cases and the error paths.
#include <convirt/eval/metrics.h>
#include <convirt/eval/retrieval.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "test_util.h"

namespace ev = convirt::eval;
using convirt::test::TempDir;

namespace {

std::string python() {
  const char* env = std::getenv("CONVIRT_TEST_PYTHON");
  return env != nullptr ? env : "/usr/bin/python3";
}

bool python_has(const std::string& modules) {
  const std::string cmd = python() + " -c 'import " + modules + "' >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

void write_tensor(const std::filesystem::path& path, const at::Tensor& t) {
  auto c = t.to(at::kDouble).contiguous().reshape({t.size(0), -1});
  std::ofstream out(path);
  out.precision(17);
  for (int64_t i = 0; i < c.size(0); ++i) {
    for (int64_t j = 0; j < c.size(1); ++j) out << (j ? " " : "") << c[i][j].item<double>();
    out << '\n';
  }
}

// Reference numbers from scikit-learn (AUC, accuracy) and NumPy (group means, precision@k), one
// "name value" per line; "nan" where scikit-learn would refuse (one class only).
const char* kReferenceScript = R"PY(
import sys, numpy as np
from sklearn.metrics import roc_auc_score, accuracy_score
d = sys.argv[1]
ld = lambda n: np.loadtxt(f"{d}/{n}.txt", ndmin=2)
s, y, m = ld("scores"), ld("targets"), ld("mask")
for l in range(s.shape[1]):
    k = m[:, l] != 0
    yl = y[k, l]
    v = roc_auc_score(yl, s[k, l]) if len(np.unique(yl)) == 2 else float("nan")
    print(f"auc{l} {v!r}")
lg, cls = ld("logits"), ld("classes")[:, 0].astype(int)
print(f"acc {accuracy_score(cls, lg.argmax(1))!r}")
g = ld("groups")[:, 0].astype(int)
ids = np.unique(g)
gs = np.array([s[g == i, 0].mean() for i in ids]); gy = np.array([y[g == i, 0].max() for i in ids])
print(f"group_auc {roc_auc_score(gy, gs)!r}")
sim, qc, cc = ld("sim"), ld("qcat")[:, 0].astype(int), ld("ccat")[:, 0].astype(int)
order = np.argsort(-sim, axis=1, kind="stable")
for k in (1, 5, 10, 50):
    print(f"p{k} {np.mean((cc[order[:, :k]] == qc[:, None]).mean(1))!r}")
)PY";

std::map<std::string, double> run_reference(const TempDir& dir) {
  { std::ofstream(dir / "ref.py") << kReferenceScript; }
  const std::string out = (dir / "out.txt").string();
  const std::string cmd = python() + " " + (dir / "ref.py").string() + " " + dir.path().string() +
                          " > " + out + " 2> " + (dir / "err.txt").string();
  const int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream err(dir / "err.txt");
    std::stringstream ss;
    ss << err.rdbuf();
    FAIL("reference script failed: " << ss.str());
  }
  std::map<std::string, double> values;
  std::ifstream in(out);
  std::string name, value;
  while (in >> name >> value) values[name] = value == "nan" ? NAN : std::stod(value);
  return values;
}

}  // namespace

TEST_CASE("roc_auc on hand-computed cases, ties count one half", "[eval][metrics]") {
  CHECK(ev::roc_auc(torch::tensor({0.1, 0.4, 0.35, 0.8}), torch::tensor({0, 0, 1, 1})) ==
        Approx(0.75));
  // All scores tied: every positive/negative pair is a tie.
  CHECK(ev::roc_auc(torch::tensor({0.5, 0.5, 0.5}), torch::tensor({0, 1, 1})) == Approx(0.5));
  // Perfect and inverted rankings; bool and float targets accepted.
  CHECK(ev::roc_auc(torch::tensor({1.0, 2.0, 3.0}), torch::tensor({false, true, true})) == 1.0);
  CHECK(ev::roc_auc(torch::tensor({3.0, 2.0, 1.0}), torch::tensor({0.0, 1.0, 1.0})) == 0.0);
}

TEST_CASE("metrics agree with scikit-learn on random data with ties", "[eval][metrics][python]") {
  if (!python_has("sklearn, numpy")) {
    WARN("skipped: " << python()
                     << " cannot import sklearn and numpy (apt install python3-sklearn)");
    return;
  }
  TempDir dir("convirt-eval-sk");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  const int64_t n = 257, labels = 4;
  // Scores rounded to one decimal: many ties inside and across classes.
  auto scores = (at::rand({n, labels}, gen, at::kDouble) * 10).round() / 10;
  auto targets = at::rand({n, labels}, gen, at::kDouble).lt(0.3).to(at::kDouble);
  // Make label 0 group-consistent: groups of 1-4 images share the first image's target.
  auto groups = at::empty({n}, at::kLong);
  int64_t gid = 0;
  for (int64_t i = 0; i < n;) {
    const int64_t len = std::min<int64_t>(1 + (i * 7) % 4, n - i);
    groups.narrow(0, i, len).fill_(gid++);
    targets.narrow(0, i, len).select(1, 0).fill_(targets[i][0].item<double>());
    i += len;
  }
  auto mask = at::rand({n, labels}, gen, at::kDouble).gt(0.15).to(at::kDouble);
  mask.select(1, 3).zero_();
  mask.select(1, 3).narrow(0, 0, 5).fill_(1);
  targets.select(1, 3).narrow(0, 0, 5).zero_();  // label 3: one class among kept -> undefined
  auto masked_targets = targets.clone();
  masked_targets.masked_fill_(mask.eq(0), -1.0);  // masked entries may hold anything
  auto logits = at::randn({n, 5}, gen, at::kDouble);
  auto classes = at::randint(0, 5, {n}, gen, at::kLong);
  const int64_t q = 24, c = 160;
  auto sim = (at::rand({q, c}, gen, at::kDouble) * 8).round() / 8;  // ties in the ranking
  auto qcat = at::randint(0, 8, {q}, gen, at::kLong);
  auto ccat = at::arange(c, at::kLong).remainder(8);
  write_tensor(dir / "scores.txt", scores);
  write_tensor(dir / "targets.txt", targets);
  write_tensor(dir / "mask.txt", mask);
  write_tensor(dir / "logits.txt", logits);
  write_tensor(dir / "classes.txt", classes);
  write_tensor(dir / "groups.txt", groups);
  write_tensor(dir / "sim.txt", sim);
  write_tensor(dir / "qcat.txt", qcat);
  write_tensor(dir / "ccat.txt", ccat);
  auto ref = run_reference(dir);
  REQUIRE(ref.size() == 4 + 1 + 1 + 4);

  auto auc = ev::multilabel_roc_auc(scores, masked_targets, mask);
  double sum = 0;
  for (int64_t l = 0; l < labels; ++l) {
    const double r = ref["auc" + std::to_string(l)];
    INFO("label " << l);
    if (std::isnan(r)) {
      CHECK(std::isnan(auc.per_label[l]));
    } else {
      CHECK(auc.per_label[l] == Approx(r).epsilon(1e-12));
      sum += r;
    }
  }
  CHECK(auc.defined_labels == 3);
  CHECK(auc.mean == Approx(sum / 3).epsilon(1e-12));
  // Without a mask, column 0 through the binary entry point.
  CHECK(ev::roc_auc(scores.select(1, 0).to(at::kFloat), targets.select(1, 0)) ==
        Approx(ev::multilabel_roc_auc(scores, targets).per_label[0]).epsilon(1e-6));
  CHECK(ev::accuracy(logits, classes) == Approx(ref["acc"]).epsilon(1e-12));
  CHECK(ev::grouped_roc_auc(scores.select(1, 0), targets.select(1, 0), groups) ==
        Approx(ref["group_auc"]).epsilon(1e-12));
  auto p = ev::precision_at_ks(sim, qcat, ccat, {1, 5, 10, 50});
  for (int k : {1, 5, 10, 50}) {
    INFO("k " << k);
    CHECK(p.at(k) == Approx(ref["p" + std::to_string(k)]).epsilon(1e-12));
  }
}

TEST_CASE("metrics reject bad input with messages naming the argument", "[eval][metrics]") {
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(ev::roc_auc(torch::tensor({0.1, 0.2}), torch::tensor({1, 1})),
                    Contains("only one class"));
  CHECK_THROWS_AS(ev::roc_auc(torch::tensor({0.1, 0.2}), torch::tensor({1, 1})), c10::ValueError);
  CHECK_THROWS_WITH(ev::roc_auc(torch::tensor({0.1, 0.2}), torch::tensor({0, 2})),
                    Contains("targets must hold only 0 and 1"));
  CHECK_THROWS_WITH(ev::roc_auc(torch::tensor({0.1, std::nan("")}), torch::tensor({0, 1})),
                    Contains("scores must be finite"));
  CHECK_THROWS_WITH(ev::roc_auc(torch::rand({2, 2}), torch::ones({2, 2})),
                    Contains("scores must be 1-D"));
  CHECK_THROWS_WITH(ev::multilabel_roc_auc(torch::rand({3, 2}), torch::ones({3, 3})),
                    Contains("targets must have the shape of scores [3, 2], got [3, 3]"));
  CHECK_THROWS_AS(ev::accuracy(torch::rand({3, 2}), torch::tensor({0.0, 1.0, 1.0})),
                  c10::TypeError);
  CHECK_THROWS_WITH(ev::accuracy(torch::rand({3, 2}), torch::tensor({0, 1})),
                    Contains("predictions has 3 rows but targets has 2"));
  CHECK_THROWS_WITH(ev::grouped_roc_auc(torch::tensor({0.1, 0.2, 0.3}), torch::tensor({0, 1, 1}),
                                        torch::tensor({5, 5, 6})),
                    Contains("group 5 has mixed targets"));
  CHECK_THROWS_WITH(ev::precision_at_k(torch::rand({2, 4}), torch::tensor({0, 1}),
                                       torch::tensor({0, 1, 0, 1}), 5),
                    Contains("k must be in [1, C = 4], got 5"));
  CHECK_THROWS_AS(ev::roc_auc(torch::Tensor(), torch::tensor({0, 1})), c10::ValueError);
}

TEST_CASE("accuracy takes class ids or scores, group_mean averages per group", "[eval][metrics]") {
  CHECK(ev::accuracy(torch::tensor({0, 2, 1, 1}), torch::tensor({0, 2, 2, 1})) == Approx(0.75));
  // Ties in the scores: the first maximum wins, as argmax.
  CHECK(ev::accuracy(torch::tensor({{0.5, 0.5}, {0.2, 0.8}}), torch::tensor({0, 1})) == 1.0);
  auto [means, ids] = ev::group_mean(torch::tensor({1.0, 3.0, 10.0}), torch::tensor({9, 9, 2}));
  CHECK(ids.equal(torch::tensor({2, 9}, torch::kLong)));
  CHECK(means.allclose(torch::tensor({10.0, 2.0}, torch::kDouble)));
}

TEST_CASE("retrieval precision: separated categories are perfect, ties are deterministic",
          "[eval][retrieval]") {
  const int64_t cats = 8, per = 30;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  auto centres = at::randn({cats, 32}, gen);
  auto ccat = at::arange(cats, at::kLong).repeat_interleave(per);
  auto cand = centres.index_select(0, ccat) + 0.05 * at::randn({cats * per, 32}, gen);
  auto qcat = at::arange(cats, at::kLong).repeat_interleave(5);
  auto query = centres.index_select(0, qcat) * 3.0 + 0.05 * at::randn({cats * 5, 32}, gen);
  auto r = ev::retrieval_precision(query, qcat, cand, ccat);
  CHECK(r.precision.at(5) == 1.0);
  CHECK(r.precision.at(10) == 1.0);
  CHECK(r.precision.at(50) == Approx(30.0 / 50.0));  // only 30 candidates per category exist
  CHECK(r.per_category.size() == cats);
  CHECK(r.num_queries == cats * 5);
  CHECK(ev::retrieval_chance_level(ccat, 3) == Approx(1.0 / 8));
  // Identical embeddings everywhere: ranking falls back to candidate order.
  auto same = at::ones({1, 4});
  CHECK(ev::precision_at_k(ev::cosine_similarity_matrix(same, at::ones({6, 4})), torch::tensor({1}),
                           torch::tensor({1, 1, 0, 0, 0, 1}), 2) == 1.0);
  CHECK_THROWS_WITH(ev::retrieval_precision(at::ones({2, 3}), torch::tensor({0, 1}),
                                            at::ones({4, 5}), torch::tensor({0, 1, 0, 1})),
                    Catch::Matchers::Contains("share their width D, got 3 and 5"));
  CHECK(ev::chexpert_8x200_categories().size() == 8);
}
