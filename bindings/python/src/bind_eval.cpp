// convirt._C.eval: metrics, the linear protocol, retrieval, t-SNE, plots and the results tables,
// and the paper's evaluation experiments from a config (pipeline::evaluate for the classification
// protocols, zero-shot retrieval on the 8x200 set). Tensors cross as torch.Tensor; options are
// keyword arguments with the C++ defaults.
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/eval/line_chart.h>
#include <convirt/eval/linear_probe.h>
#include <convirt/eval/metrics.h>
#include <convirt/eval/plot.h>
#include <convirt/eval/protocol.h>
#include <convirt/eval/retrieval.h>
#include <convirt/eval/tables.h>
#include <convirt/eval/tsne.h>
#include <convirt/pipeline/embed.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/pipeline/retrieval.h>
#include <convirt/pipeline/zero_shot.h>

#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

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

// Thrown out of pipeline::evaluate's progress callback to end the sweep: the Python error (the
// callback's own, or KeyboardInterrupt) is raised once evaluate has unwound.
struct StopSweep {};

py::dict progress_dict(const convirt::pipeline::EvaluateProgress& p) {
  py::dict d;
  d["method"] = p.method;
  d["task"] = p.task;
  d["protocol"] = p.protocol;
  d["fraction"] = p.fraction;
  d["seed"] = p.seed;
  d["run"] = p.run;
  d["total_runs"] = p.total_runs;
  d["metric"] = p.metric;
  d["train_examples"] = p.train_examples;
  d["streamed"] = p.streamed;
  d["bad_images"] = p.bad_images;
  d["seconds"] = p.seconds;
  return d;
}

// EvaluateOptions from the config's keys (ValueError naming an unknown key).
convirt::pipeline::EvaluateOptions evaluate_options(const py::dict& config) {
  namespace pl = convirt::pipeline;
  pl::EvaluateOptions o;
  for (const auto& [key_handle, v] : config) {
    const auto key = key_handle.cast<std::string>();
    if (key == "model") {
      o.model_path(v.cast<std::string>());
    } else if (key == "method_name") {
      o.method_name(v.cast<std::string>());
    } else if (key == "dataset") {
      o.dataset(pl::parse_dataset_kind(v.cast<std::string>()));
    } else if (key == "protocol") {
      o.protocol(pl::parse_protocol(v.cast<std::string>()));
    } else if (key == "train_csv") {
      o.train_csv(v.cast<std::string>());
    } else if (key == "test_csv") {
      o.test_csv(v.cast<std::string>());
    } else if (key == "image_root") {
      o.image_root(v.cast<std::string>());
    } else if (key == "data_root") {
      o.data_root(v.cast<std::string>());
    } else if (key == "labels") {
      o.labels(v.cast<std::vector<std::string>>());
    } else if (key == "uncertain") {
      o.uncertain(v.cast<std::string>());
    } else if (key == "mura_level") {
      o.mura_level(v.cast<std::string>());
    } else if (key == "skip_bad_rows") {
      o.skip_bad_rows(v.cast<bool>());
    } else if (key == "val_fraction") {
      o.val_fraction(v.cast<double>());
    } else if (key == "test_fraction") {
      o.test_fraction(v.cast<double>());
    } else if (key == "split_seed") {
      o.split_seed(v.cast<uint64_t>());
    } else if (key == "fractions") {
      o.fractions(v.cast<std::vector<double>>());
    } else if (key == "seeds") {
      o.seeds(v.cast<int64_t>());
    } else if (key == "first_seed") {
      o.first_seed(v.cast<uint64_t>());
    } else if (key == "learning_rate") {
      o.learning_rate(v.cast<double>());
    } else if (key == "batch_size") {
      o.batch_size(v.cast<int64_t>());
    } else if (key == "max_epochs") {
      o.max_epochs(v.cast<int64_t>());
    } else if (key == "max_steps") {
      o.max_steps(v.cast<int64_t>());
    } else if (key == "warmup_steps") {
      o.warmup_steps(v.cast<int64_t>());
    } else if (key == "warmup_learning_rate") {
      o.warmup_learning_rate(v.cast<double>());
    } else if (key == "image_size") {
      o.image_size(v.cast<int64_t>());
    } else if (key == "data_mode") {
      o.data_mode(pl::parse_data_mode(v.cast<std::string>()));
    } else if (key == "max_memory_bytes") {
      o.max_memory_bytes(v.cast<int64_t>());
    } else if (key == "threads") {
      o.threads(v.cast<int64_t>());
    } else if (key == "workers") {
      o.workers(v.cast<int64_t>());
    } else if (key == "verbose") {
      o.verbose(v.cast<bool>());
    } else {
      CONVIRT_CHECK_VALUE(false, "evaluate: unknown config key '", key, "'");
    }
  }
  return o;
}

// The linear or fine-tuning sweep. The GIL is released for the whole sweep; the callback takes it
// per finished run, where Ctrl-C is noticed too.
ev::Results evaluate_classification(const py::dict& config, const py::object& callback) {
  auto options = evaluate_options(config);
  std::optional<py::error_already_set> pending;
  auto on_run = [&](const convirt::pipeline::EvaluateProgress& p) {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {
      pending.emplace();
      throw StopSweep{};
    }
    if (callback.is_none()) return;
    try {
      callback(progress_dict(p));
    } catch (py::error_already_set& e) {
      pending.emplace(std::move(e));
      throw StopSweep{};
    }
  };
  ev::Results results;
  try {
    py::gil_scoped_release release;
    results = convirt::pipeline::evaluate(options, on_run);
  } catch (const StopSweep&) {
  }
  if (pending) throw *pending;
  return results;
}

// Zero-shot retrieval on an 8x200-style set (pipeline::evaluate_retrieval, as `convirt eval
// retrieval`): image->image always, text->image when a vocabulary is given.
ev::Results evaluate_retrieval(const std::string& model_path, const std::string& retrieval_dir,
                               const std::string& image_root, const std::string& vocab,
                               const std::string& method_name, int64_t image_size,
                               const std::vector<int64_t>& ks, int64_t workers, int64_t threads) {
  CONVIRT_CHECK_VALUE(!model_path.empty(), "evaluate: model (a convirt checkpoint) is required");
  CONVIRT_CHECK_VALUE(!retrieval_dir.empty(),
                      "evaluate: retrieval_dir is required for protocol 'retrieval'");
  CONVIRT_CHECK_VALUE(threads >= 0, "evaluate: threads must be >= 0 (0: all cores), got ", threads);
  if (threads > 0) convirt::set_num_threads(static_cast<int>(threads));
  return convirt::pipeline::evaluate_retrieval(convirt::pipeline::RetrievalEvalOptions(model_path)
                                                   .method_name(method_name)
                                                   .retrieval_dir(retrieval_dir)
                                                   .image_root(image_root)
                                                   .vocab(vocab)
                                                   .image_size(image_size)
                                                   .ks(ks)
                                                   .workers(workers));
}

// Zero-shot classification from prompts (pipeline::zero_shot, as `convirt eval zeroshot`). The
// prompts come as a file path or as JSON text (the Python layer serialises a dict).
py::dict zero_shot(convirt::pipeline::ZeroShotOptions options, const std::string& dataset,
                   const std::string& prompts_json, int64_t threads) {
  CONVIRT_CHECK_VALUE(!options.model_path().empty(),
                      "zero_shot: model (a convirt checkpoint) is required");
  CONVIRT_CHECK_VALUE(prompts_json.empty() || options.prompts_path().empty(),
                      "zero_shot: give prompts as a path or as a dict, not both");
  options.dataset(convirt::pipeline::parse_dataset_kind(dataset)).threads(threads);
  if (!prompts_json.empty()) {
    options.prompts(convirt::pipeline::PromptSet::from_json(prompts_json, "prompts"));
  }
  convirt::pipeline::ZeroShotResult r;
  {
    py::gil_scoped_release release;
    r = convirt::pipeline::zero_shot(options);
  }
  ev::Results results;
  convirt::pipeline::add_zero_shot(results, r);
  py::dict d;
  d["method"] = r.method;
  d["task"] = r.task;
  d["metric_name"] = r.metric_name;
  d["metric"] = r.metric;
  d["labels"] = r.labels;
  d["per_label"] = r.per_label;
  d["images"] = r.images;
  d["results"] = results;
  d["table"] = ev::format_zero_shot_table(results);
  return d;
}

// Sets an option only when Python gave it, so every default stays in the C++ options struct.
template <typename T, typename Setter>
void set_if(const std::optional<T>& v, Setter&& set) {
  if (v.has_value()) set(*v);
}

// pipeline::embed (as `convirt embed`). The progress callback runs with the GIL held; an exception
// it raises stops the run, leaving the finished shards for a re-run to resume from.
py::dict embed(const convirt::pipeline::EmbedOptions& options, const py::object& progress) {
  convirt::pipeline::EmbedCallback cb;
  if (!progress.is_none()) {
    cb = [&progress](const convirt::pipeline::EmbedProgress& p) {
      py::gil_scoped_acquire acquire;
      py::dict d;
      d["kind"] = p.kind;
      d["done"] = p.done;
      d["total"] = p.total;
      d["resumed"] = p.resumed;
      progress(d);
    };
  }
  convirt::pipeline::EmbedResult r;
  {
    py::gil_scoped_release release;
    r = convirt::pipeline::embed(options, cb);
  }
  py::dict d;
  d["files"] = r.files;
  d["image_paths"] = r.image_paths;
  d["texts"] = r.texts;
  d["skipped"] = r.skipped;
  d["tensors"] = r.tensors;
  d["resumed"] = r.resumed;
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
  m.def("accuracy", &ev::accuracy, py::arg("predictions"), py::arg("targets"),
        "Fraction of predictions (class ids, or scores [N, C] reduced by argmax) equal to the "
        "targets.");
  m.def("grouped_roc_auc", &ev::grouped_roc_auc, py::arg("scores"), py::arg("targets"),
        py::arg("groups"),
        "ROC-AUC after averaging the scores of each group (MURA's patient-level AUC).");
  m.def("group_mean", &ev::group_mean, py::arg("values"), py::arg("groups"),
        "(group ids, mean of values per group).");
  m.def("precision_at_k", &ev::precision_at_k, py::arg("similarity"), py::arg("query_labels"),
        py::arg("candidate_labels"), py::arg("k"),
        "Precision@k of ranking candidates by similarity [Q, C]: the share of the top k with the "
        "query's label.");
  m.def("precision_at_ks", &ev::precision_at_ks, py::arg("similarity"), py::arg("query_labels"),
        py::arg("candidate_labels"), py::arg("ks"),
        "Precision@k for several k, as {k: precision}.");
  m.def("cosine_similarity_matrix", &ev::cosine_similarity_matrix, py::arg("a"), py::arg("b"),
        "[Q, C] cosine similarities of the rows of a and b.");
  m.def(
      "retrieval_precision",
      [](const torch::Tensor& q, const torch::Tensor& ql, const torch::Tensor& c,
         const torch::Tensor& cl, const std::vector<int64_t>& ks) {
        auto r = ev::retrieval_precision(q, ql, c, cl, ks);
        return py::make_tuple(r.precision, r.per_category);
      },
      py::arg("query_emb"), py::arg("query_labels"), py::arg("candidate_emb"),
      py::arg("candidate_labels"), py::arg("ks") = std::vector<int64_t>{5, 10, 50});
  m.def("chexpert_8x200_categories", &ev::chexpert_8x200_categories,
        "The eight CheXpert 8x200 retrieval categories.");

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
        py::arg("k"),
        "Share of each point's k nearest neighbours with its label (cluster purity of a layout).");

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
      "render_line_chart_svg",
      [](const std::vector<py::dict>& panels, const std::string& title) {
        std::vector<ev::LineChartPanel> ps;
        for (const auto& d : panels) {
          ev::LineChartPanel p;
          p.title = d.contains("title") ? d["title"].cast<std::string>() : "";
          p.x_label = d.contains("x_label") ? d["x_label"].cast<std::string>() : "";
          p.y_label = d.contains("y_label") ? d["y_label"].cast<std::string>() : "";
          p.log_x = d.contains("log_x") && d["log_x"].cast<bool>();
          p.log_y = d.contains("log_y") && d["log_y"].cast<bool>();
          if (d.contains("series")) {
            for (const auto& item : d["series"].cast<std::vector<py::dict>>()) {
              ev::LineSeries l;
              l.name = item["name"].cast<std::string>();
              l.x = item["x"].cast<std::vector<double>>();
              l.y = item["y"].cast<std::vector<double>>();
              if (item.contains("err")) l.err = item["err"].cast<std::vector<double>>();
              p.series.push_back(std::move(l));
            }
          }
          ps.push_back(std::move(p));
        }
        return ev::render_line_chart_svg(ps, ev::LineChartOptions().title(title));
      },
      py::arg("panels"), py::arg("title") = "");

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
  m.def("fraction_key", &ev::fraction_key, py::arg("fraction"),
        "The results.json key of a label fraction: percent without the sign (0.01 -> \"1\").");

  m.def("evaluate_classification", &evaluate_classification, py::arg("config"),
        py::arg("callback") = py::none(),
        "pipeline::evaluate: the linear or fine-tuning sweep a config dict describes.");
  m.def(
      "evaluate_retrieval",
      [](const std::string& model, const std::string& retrieval_dir, const std::string& image_root,
         const std::string& vocab, const std::string& method_name, int64_t image_size,
         const std::vector<int64_t>& ks, int64_t workers, int64_t threads) {
        py::gil_scoped_release release;
        return evaluate_retrieval(model, retrieval_dir, image_root, vocab, method_name, image_size,
                                  ks, workers, threads);
      },
      py::kw_only(), py::arg("model"), py::arg("retrieval_dir"), py::arg("image_root") = "",
      py::arg("vocab") = "", py::arg("method_name") = "", py::arg("image_size") = 0,
      py::arg("ks") = std::vector<int64_t>{5, 10, 50}, py::arg("workers") = 2,
      py::arg("threads") = 0,
      "Zero-shot retrieval on an 8x200-style set (image->image, text->image).");

  m.def(
      "zero_shot",
      [](const std::string& model, const std::string& dataset, const std::string& prompts_path,
         const std::string& prompts_json, const std::string& vocab, const std::string& test_csv,
         const std::string& image_root, const std::string& data_root,
         const std::vector<std::string>& labels, const std::string& uncertain,
         const std::string& mura_level, bool skip_bad_rows, double test_fraction,
         uint64_t split_seed, const std::string& method_name, int64_t image_size,
         int64_t batch_size, int64_t workers, int64_t threads) {
        return zero_shot(convirt::pipeline::ZeroShotOptions(model)
                             .prompts_path(prompts_path)
                             .vocab(vocab)
                             .test_csv(test_csv)
                             .image_root(image_root)
                             .data_root(data_root)
                             .labels(labels)
                             .uncertain(uncertain)
                             .mura_level(mura_level)
                             .skip_bad_rows(skip_bad_rows)
                             .test_fraction(test_fraction)
                             .split_seed(split_seed)
                             .method_name(method_name)
                             .image_size(image_size)
                             .batch_size(batch_size)
                             .workers(workers),
                         dataset, prompts_json, threads);
      },
      py::kw_only(), py::arg("model"), py::arg("dataset") = "chexpert",
      py::arg("prompts_path") = "", py::arg("prompts_json") = "", py::arg("vocab") = "",
      py::arg("test_csv") = "", py::arg("image_root") = "", py::arg("data_root") = "",
      py::arg("labels") = std::vector<std::string>{}, py::arg("uncertain") = "zeros",
      py::arg("mura_level") = "patient", py::arg("skip_bad_rows") = false,
      py::arg("test_fraction") = 0.1, py::arg("split_seed") = 0, py::arg("method_name") = "",
      py::arg("image_size") = 0, py::arg("batch_size") = 64, py::arg("workers") = 2,
      py::arg("threads") = 0,
      "Zero-shot classification of a labelled dataset's test split from text prompts.");
  m.def(
      "embed",
      [](const std::string& model, const std::string& out, const std::string& images,
         const std::string& texts, const std::optional<std::string>& features,
         const std::optional<std::string>& vocab, const std::optional<std::string>& image_column,
         const std::optional<std::string>& image_root, const std::optional<int64_t>& image_size,
         const std::optional<int64_t>& batch_size, const std::optional<int64_t>& shard_size,
         const std::optional<int64_t>& threads, const std::optional<int64_t>& workers,
         const py::object& progress) {
        convirt::pipeline::EmbedOptions o(model);
        o.out(out).images(images).texts(texts);
        set_if(features, [&](const auto& v) { o.features(v); });
        set_if(vocab, [&](const auto& v) { o.vocab(v); });
        set_if(image_column, [&](const auto& v) { o.image_column(v); });
        set_if(image_root, [&](const auto& v) { o.image_root(v); });
        set_if(image_size, [&](auto v) { o.image_size(v); });
        set_if(batch_size, [&](auto v) { o.batch_size(v); });
        set_if(shard_size, [&](auto v) { o.shard_size(v); });
        set_if(threads, [&](auto v) { o.threads(v); });
        set_if(workers, [&](auto v) { o.workers(v); });
        return embed(o, progress);
      },
      py::kw_only(), py::arg("model"), py::arg("out"), py::arg("images") = "",
      py::arg("texts") = "", py::arg("features") = py::none(), py::arg("vocab") = py::none(),
      py::arg("image_column") = py::none(), py::arg("image_root") = py::none(),
      py::arg("image_size") = py::none(), py::arg("batch_size") = py::none(),
      py::arg("shard_size") = py::none(), py::arg("threads") = py::none(),
      py::arg("workers") = py::none(), py::arg("progress") = py::none(),
      "Embeddings of an image folder / CSV and a text file into .safetensors or .npy "
      "(pipeline::embed); None = the library's default.");
  m.def(
      "search",
      [](const std::string& index, const std::string& text, const std::string& image,
         const std::optional<int64_t>& k, const std::optional<std::string>& target,
         const std::optional<std::string>& model, const std::optional<std::string>& vocab) {
        convirt::pipeline::SearchOptions o(index);
        o.text(text).image(image);
        set_if(k, [&](auto v) { o.k(v); });
        set_if(target, [&](const auto& v) { o.target(v); });
        set_if(model, [&](const auto& v) { o.model_path(v); });
        set_if(vocab, [&](const auto& v) { o.vocab(v); });
        std::vector<convirt::pipeline::SearchHit> hits;
        {
          py::gil_scoped_release release;
          hits = convirt::pipeline::search(o);
        }
        py::list out;
        for (const auto& h : hits) {
          py::dict d;
          d["rank"] = h.rank;
          d["score"] = h.score;
          d["index"] = h.index;
          d["item"] = h.item;
          out.append(d);
        }
        return out;
      },
      py::kw_only(), py::arg("index"), py::arg("text") = "", py::arg("image") = "",
      py::arg("k") = py::none(), py::arg("target") = py::none(), py::arg("model") = py::none(),
      py::arg("vocab") = py::none(),
      "Nearest entries of an embeddings file to a text or image query (pipeline::search).");
  m.def(
      "write_npy",
      [](const std::string& path, const torch::Tensor& array) {
        convirt::pipeline::write_npy(path, array);
      },
      py::arg("path"), py::arg("array"), "Writes a tensor as a NumPy .npy file, atomically.");
  m.def(
      "default_prompts_json", [] { return convirt::pipeline::default_prompts().to_json(); },
      "The built-in zero-shot prompts (resources/prompts/default.json) as JSON text.");

  py::class_<ev::Results>(m, "Results",
                          "The cells of the paper's tables (percent, mean and standard deviation), "
                          "saved as results.json.")
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
      .def("set_zero_shot", &ev::Results::set_zero_shot, py::arg("method"), py::arg("task"),
           py::arg("value"))
      .def("zero_shot", &ev::Results::zero_shot, py::arg("method"), py::arg("task"))
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
          py::arg("decimals") = 1)
      .def(
          "format_zero_shot_table",
          [](const ev::Results& r, int decimals) {
            return ev::format_zero_shot_table(r, decimals);
          },
          py::arg("decimals") = 1);
}

}  // namespace convirt::python
