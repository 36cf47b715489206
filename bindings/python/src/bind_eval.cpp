// convirt._C.eval: metrics, the linear protocol, retrieval, t-SNE, plots and the results tables.
// Tensors cross as torch.Tensor; options are keyword arguments with the C++ defaults.
#include "bind.h"

#include <convirt/eval/linear_probe.h>
#include <convirt/eval/metrics.h>
#include <convirt/eval/plot.h>
#include <convirt/eval/protocol.h>
#include <convirt/eval/retrieval.h>
#include <convirt/eval/tables.h>
#include <convirt/eval/tsne.h>

#include <pybind11/stl.h>

#include <optional>

namespace py = pybind11;
namespace ev = convirt::eval;

namespace convirt::python {
namespace {

torch::Tensor or_undefined(const std::optional<torch::Tensor>& t) {
  return t.has_value() ? *t : torch::Tensor();
}

py::object optional_value(const std::optional<ev::ResultValue>& v) {
  if (!v) return py::none();
  return py::make_tuple(v->mean, v->stddev);
}

py::dict result_to_dict(const ev::ClassifierResult& r) {
  py::dict d;
  d["test_metric"] = r.test_metric;
  d["metric"] = ev::to_string(r.metric);
  d["best_val_metric"] = r.best_val_metric;
  d["best_epoch"] = r.best_epoch;
  d["test_loss"] = r.test_loss;
  d["test_per_label_auc"] = r.test_per_label_auc;
  d["test_mean_auc"] = r.test_mean_auc;
  d["test_accuracy"] = r.test_accuracy;
  d["test_group_auc"] = r.test_group_auc;
  d["test_probabilities"] = r.test_probabilities;
  d["epochs"] = r.epochs;
  d["steps"] = r.steps;
  py::list history;
  for (const auto& e : r.history) {
    py::dict h;
    h["epoch"] = e.epoch;
    h["steps"] = e.steps;
    h["train_loss"] = e.train_loss;
    h["val_loss"] = e.val_loss;
    h["val_metric"] = e.val_metric;
    h["learning_rate"] = e.learning_rate;
    history.append(h);
  }
  d["history"] = history;
  return d;
}

}  // namespace

void bind_eval(py::module_& root) {
  auto m = root.def_submodule("eval", "ConVIRT evaluation: metrics, protocols, retrieval, t-SNE");

  m.def("roc_auc", &ev::roc_auc, py::arg("scores"), py::arg("targets"),
        "Binary ROC-AUC; ties count one half (equals sklearn.metrics.roc_auc_score).");
  m.def(
      "multilabel_roc_auc",
      [](const torch::Tensor& scores, const torch::Tensor& targets,
         const std::optional<torch::Tensor>& mask) {
        auto r = ev::multilabel_roc_auc(scores, targets, or_undefined(mask));
        return py::make_tuple(r.per_label, r.mean, r.defined_labels);
      },
      py::arg("scores"), py::arg("targets"), py::arg("mask") = py::none(),
      "Per-label AUC (NaN where one class only), mean over defined labels, number of defined "
      "labels.");
  m.def("accuracy", &ev::accuracy, py::arg("predictions"), py::arg("targets"));
  m.def("grouped_roc_auc", &ev::grouped_roc_auc, py::arg("scores"), py::arg("targets"),
        py::arg("groups"));
  m.def("group_mean", &ev::group_mean, py::arg("values"), py::arg("groups"));
  m.def("precision_at_k", &ev::precision_at_k, py::arg("similarity"), py::arg("query_labels"),
        py::arg("candidate_labels"), py::arg("k"));
  m.def("precision_at_ks", &ev::precision_at_ks, py::arg("similarity"), py::arg("query_labels"),
        py::arg("candidate_labels"), py::arg("ks"));
  m.def("cosine_similarity_matrix", &ev::cosine_similarity_matrix, py::arg("a"), py::arg("b"));
  m.def(
      "retrieval_precision",
      [](const torch::Tensor& q, const torch::Tensor& ql, const torch::Tensor& c,
         const torch::Tensor& cl, const std::vector<int64_t>& ks) {
        auto r = ev::retrieval_precision(q, ql, c, cl, ks);
        return py::make_tuple(r.precision, r.per_category);
      },
      py::arg("query_emb"), py::arg("query_labels"), py::arg("candidate_emb"),
      py::arg("candidate_labels"), py::arg("ks") = std::vector<int64_t>{5, 10, 50});
  m.def("chexpert_8x200_categories", &ev::chexpert_8x200_categories);

  m.def(
      "tsne",
      [](const torch::Tensor& x, int64_t dims, double perplexity, int64_t max_iterations,
         double learning_rate, double early_exaggeration, int64_t exaggeration_iterations,
         bool normalize, uint64_t seed) {
        ev::TSNEResult r;
        {
          // Only the computation runs without the GIL; building the Python result needs it.
          py::gil_scoped_release release;
          r = ev::tsne(x, ev::TSNEOptions()
                              .dims(dims)
                              .perplexity(perplexity)
                              .max_iterations(max_iterations)
                              .learning_rate(learning_rate)
                              .early_exaggeration(early_exaggeration)
                              .exaggeration_iterations(exaggeration_iterations)
                              .normalize(normalize)
                              .seed(seed));
        }
        return py::make_tuple(r.embedding, r.kl_divergence);
      },
      py::arg("x"), py::arg("dims") = 2, py::arg("perplexity") = 30.0,
      py::arg("max_iterations") = 1000, py::arg("learning_rate") = 0.0,
      py::arg("early_exaggeration") = 12.0, py::arg("exaggeration_iterations") = 250,
      py::arg("normalize") = false, py::arg("seed") = 0);
  m.def("knn_label_agreement", &ev::knn_label_agreement, py::arg("points"), py::arg("labels"),
        py::arg("k"));

  m.def(
      "render_scatter_svg",
      [](const std::vector<std::tuple<std::string, torch::Tensor, torch::Tensor>>& panels,
         const std::string& title, const std::vector<std::string>& category_names) {
        std::vector<ev::ScatterPanel> ps;
        for (const auto& [t, p, l] : panels) ps.push_back({t, p, l});
        return ev::render_scatter_svg(
            ps, ev::ScatterPlotOptions().title(title).category_names(category_names));
      },
      py::arg("panels"), py::arg("title") = "",
      py::arg("category_names") = std::vector<std::string>{});

  m.def(
      "linear_probe",
      [](const std::tuple<torch::Tensor, torch::Tensor, std::optional<torch::Tensor>,
                          std::optional<torch::Tensor>>& train,
         const std::tuple<torch::Tensor, torch::Tensor, std::optional<torch::Tensor>,
                          std::optional<torch::Tensor>>& val,
         const std::tuple<torch::Tensor, torch::Tensor, std::optional<torch::Tensor>,
                          std::optional<torch::Tensor>>& test,
         const std::string& task, const std::string& metric, double learning_rate,
         double weight_decay, double dropout, int64_t batch_size, int64_t lr_patience,
         double lr_decay, int64_t early_stop_patience, int64_t max_epochs, int64_t max_steps,
         uint64_t seed, int num_threads) {
        auto to_set = [](const auto& t) {
          return ev::LabeledSet{std::get<0>(t), std::get<1>(t), or_undefined(std::get<2>(t)),
                                or_undefined(std::get<3>(t))};
        };
        auto opts = ev::ClassifierOptions(ev::parse_classification_task(task))
                        .metric(ev::parse_classifier_metric(metric))
                        .learning_rate(learning_rate)
                        .weight_decay(weight_decay)
                        .dropout(dropout)
                        .batch_size(batch_size)
                        .lr_patience(lr_patience)
                        .lr_decay(lr_decay)
                        .early_stop_patience(early_stop_patience)
                        .max_epochs(max_epochs)
                        .max_steps(max_steps)
                        .seed(seed)
                        .num_threads(num_threads);
        ev::ClassifierResult r;
        {
          py::gil_scoped_release release;
          r = ev::train_linear_probe(to_set(train), to_set(val), to_set(test), opts);
        }
        return result_to_dict(r);
      },
      py::arg("train"), py::arg("val"), py::arg("test"), py::arg("task") = "multilabel",
      py::arg("metric") = "auto", py::arg("learning_rate") = 1e-4, py::arg("weight_decay") = 1e-6,
      py::arg("dropout") = 0.2, py::arg("batch_size") = 64, py::arg("lr_patience") = 3,
      py::arg("lr_decay") = 0.5, py::arg("early_stop_patience") = 10, py::arg("max_epochs") = 100,
      py::arg("max_steps") = 0, py::arg("seed") = 0, py::arg("num_threads") = 0,
      "The linear protocol on features. Each split is (inputs, targets, mask=None, groups=None).");
  m.def(
      "summarize",
      [](const std::vector<double>& values) {
        auto c = ev::summarize(values);
        return py::make_tuple(c.mean, c.stddev);
      },
      py::arg("values"), "(mean, sample standard deviation)");
  m.def("fraction_key", &ev::fraction_key, py::arg("fraction"));

  py::class_<ev::Results>(m, "Results")
      .def(py::init<>())
      .def("set_classification", &ev::Results::set_classification, py::arg("protocol"),
           py::arg("method"), py::arg("task"), py::arg("fraction"), py::arg("mean"),
           py::arg("stddev") = ev::Results::kUnknown)
      .def("set_retrieval", &ev::Results::set_retrieval, py::arg("method"), py::arg("direction"),
           py::arg("k"), py::arg("mean"), py::arg("stddev") = ev::Results::kUnknown)
      .def(
          "classification",
          [](const ev::Results& r, const std::string& p, const std::string& m, const std::string& t,
             const std::string& f) { return optional_value(r.classification(p, m, t, f)); },
          py::arg("protocol"), py::arg("method"), py::arg("task"), py::arg("fraction"))
      .def(
          "retrieval",
          [](const ev::Results& r, const std::string& m, const std::string& d, int64_t k) {
            return optional_value(r.retrieval(m, d, k));
          },
          py::arg("method"), py::arg("direction"), py::arg("k"))
      .def("methods", &ev::Results::methods, py::arg("section"))
      .def("tasks", &ev::Results::tasks, py::arg("section"))
      .def("to_json", &ev::Results::to_json, py::arg("indent") = 2)
      .def_static("from_json", &ev::Results::from_json, py::arg("text"))
      .def("save", &ev::Results::save, py::arg("path"))
      .def_static("load", &ev::Results::load, py::arg("path"))
      .def(
          "format_classification_table",
          [](const ev::Results& r, const std::string& protocol, int decimals) {
            return ev::format_classification_table(r, protocol, decimals);
          },
          py::arg("protocol"), py::arg("decimals") = 1)
      .def(
          "format_retrieval_table",
          [](const ev::Results& r, int decimals) {
            return ev::format_retrieval_table(r, decimals);
          },
          py::arg("decimals") = 1);
}

}  // namespace convirt::python
