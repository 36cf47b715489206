// convirt._C.train: pretraining driven from Python. The whole run is C++
// (convirt::train::Pretrainer) with the GIL released; the Python callback runs with the GIL
// re-acquired, and Ctrl-C is noticed there (PyErr_CheckSignals), turned into request_stop() so that
// the trainer writes its checkpoint and returns, and then re-raised as KeyboardInterrupt.
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/image/preprocess.h>
#include <convirt/image/transforms.h>
#include <convirt/models/presets.h>
#include <convirt/text/wordpiece.h>
#include <convirt/train/pretrainer.h>

#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>

namespace py = pybind11;

namespace convirt::python {
namespace {

py::dict metrics_dict(const train::StepMetrics& m) {
  py::dict d;
  d["step"] = m.step;
  d["loss"] = m.loss;
  d["image_to_text"] = m.image_to_text;
  d["text_to_image"] = m.text_to_image;
  d["image_to_text_accuracy"] = m.image_to_text_accuracy;
  d["text_to_image_accuracy"] = m.text_to_image_accuracy;
  d["learning_rate"] = m.learning_rate;
  d["images_per_second"] = m.images_per_second;
  d["eta_seconds"] = m.eta_seconds;
  d["is_eval"] = m.is_eval;
  if (m.is_eval) d["val_loss"] = m.val_loss;
  return d;
}

// The model a config names: a preset ("small" sized to the tokenizer's vocabulary, "paper") or
// the JSON of a ModelConfig.
models::ModelConfig model_config(const std::string& model, int64_t vocab_size) {
  models::ModelConfig cfg;
  if (!model.empty() && model.front() == '{') {
    cfg = models::ModelConfig::from_json(model);
  } else if (model == "small") {
    cfg = models::small_preset(vocab_size);
  } else {
    cfg = models::preset(model);
  }
  CONVIRT_CHECK_VALUE(cfg.bert().config().vocab_size() == vocab_size,
                      "model: the text encoder's vocab_size must equal the tokenizer's (",
                      vocab_size, "), got ", cfg.bert().config().vocab_size());
  return cfg;
}

struct PretrainArgs {
  std::string out_dir, train_csv, val_csv, vocab, model, image_column, text_column;
  bool augment = true;
  train::PretrainOptions options{""};
};

py::dict run_pretraining(const PretrainArgs& a, const py::object& callback) {
  auto tokenizer = std::make_shared<const text::WordPieceTokenizer>(
      text::WordPieceTokenizer::from_vocab_file(a.vocab));
  const auto cfg = model_config(a.model, tokenizer->vocab_size());
  const int64_t size = cfg.image_size();

  data::ImageTransform train_tf;
  if (a.augment) {
    auto aug = image::paper_augmentation(image::PaperAugmentationOptions().size(size));
    train_tf = [aug](const at::Tensor& img, uint64_t seed) { return (*aug)(img, seed); };
  } else {
    train_tf = [size](const at::Tensor& img, uint64_t) {
      return image::eval_preprocess(img, size);
    };
  }
  // Validation loss must be deterministic: no augmentation, the evaluation preprocessing.
  data::ImageTransform val_tf = [size](const at::Tensor& img, uint64_t) {
    return image::eval_preprocess(img, size);
  };
  auto csv_opts = [&](data::ImageTransform tf) {
    return data::CsvPairsOptions()
        .image_column(a.image_column)
        .text_column(a.text_column)
        .channels(cfg.resnet().in_channels())
        .transform(std::move(tf));
  };
  auto train_set = std::make_shared<data::CsvPairsDataset>(a.train_csv, csv_opts(train_tf));
  auto val_set = std::make_shared<data::CsvPairsDataset>(a.val_csv, csv_opts(val_tf));

  // Tokens per sentence: the model's (it sized the position embeddings) unless given.
  train::PretrainOptions options = a.options;
  if (options.max_length() <= 0) options.max_length(cfg.max_length());

  auto model = models::make_convirt(cfg);
  train::Pretrainer trainer(model, tokenizer, train_set, val_set, options);

  std::optional<py::error_already_set> pending;  // raised once run() has returned
  bool interrupted = false;
  auto cb = [&](const train::StepMetrics& m) -> bool {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {  // Ctrl-C: stop after this step, checkpoint, then raise
      pending.emplace();
      interrupted = true;
      trainer.request_stop();
      return false;
    }
    if (callback.is_none()) return true;
    try {
      py::object keep_going = callback(metrics_dict(m));
      return keep_going.is_none() || keep_going.cast<bool>();
    } catch (py::error_already_set& e) {
      pending.emplace(std::move(e));
      return false;
    }
  };

  train::PretrainResult r;
  {
    py::gil_scoped_release release;
    r = trainer.run(cb);
  }
  if (pending) throw *pending;

  py::dict d;
  d["steps"] = r.steps;
  d["evaluations"] = r.evaluations;
  d["best_val_loss"] = r.best_val_loss;
  d["best_step"] = r.best_step;
  d["skipped_steps"] = r.skipped_steps;
  d["bad_samples"] = r.bad_samples;
  d["best_checkpoint"] = r.best_checkpoint;
  d["stop_reason"] = r.stop_reason;
  d["interrupted"] = interrupted;
  d["model_config"] = cfg.to_json();
  return d;
}

}  // namespace

void bind_train(py::module_& m) {
  auto t = m.def_submodule("train", "ConVIRT pretraining");
  t.def(
      "pretrain",
      [](const std::string& out_dir, const std::string& train_csv, const std::string& val_csv,
         const std::string& vocab, const std::string& model, const std::string& image_column,
         const std::string& text_column, bool augment, const std::string& objective,
         double learning_rate, double weight_decay, int64_t batch_size, double temperature,
         double image_to_text_weight, int64_t eval_every, int64_t lr_patience, double lr_decay,
         int64_t max_evals, int64_t max_steps, double max_seconds, double grad_clip_norm,
         bool mixed_precision, int64_t max_bad_steps, int64_t max_length, int64_t log_every,
         bool verbose, uint64_t seed, int64_t workers, bool resume, const std::string& device,
         const py::object& callback) {
        CONVIRT_CHECK_VALUE(!out_dir.empty(), "out_dir must not be empty");
        CONVIRT_CHECK_TYPE(callback.is_none() || PyCallable_Check(callback.ptr()),
                           "callback must be callable or None, got ",
                           std::string(py::str(py::type::of(callback).attr("__name__"))));
        PretrainArgs a;
        a.out_dir = out_dir;
        a.train_csv = train_csv;
        a.val_csv = val_csv;
        a.vocab = vocab;
        a.model = model;
        a.image_column = image_column;
        a.text_column = text_column;
        a.augment = augment;
        a.options = train::PretrainOptions(out_dir)
                        .objective(train::parse_objective(objective))
                        .learning_rate(learning_rate)
                        .weight_decay(weight_decay)
                        .batch_size(batch_size)
                        .temperature(temperature)
                        .image_to_text_weight(image_to_text_weight)
                        .eval_every(eval_every)
                        .lr_patience(lr_patience)
                        .lr_decay(lr_decay)
                        .max_evals(max_evals)
                        .max_steps(max_steps)
                        .max_seconds(max_seconds)
                        .grad_clip_norm(grad_clip_norm)
                        .mixed_precision(mixed_precision)
                        .max_bad_steps(max_bad_steps)
                        .max_length(max_length)
                        .log_every(log_every)
                        .verbose(verbose)
                        .seed(seed)
                        .workers(workers)
                        .resume(resume)
                        .device(torch::Device(device));
        return run_pretraining(a, callback);
      },
      py::kw_only(), py::arg("out_dir"), py::arg("train_csv"), py::arg("val_csv"), py::arg("vocab"),
      py::arg("model") = "small", py::arg("image_column") = "image",
      py::arg("text_column") = "text", py::arg("augment") = true, py::arg("objective") = "convirt",
      py::arg("learning_rate") = 1e-4, py::arg("weight_decay") = 1e-6, py::arg("batch_size") = 32,
      py::arg("temperature") = 0.1, py::arg("image_to_text_weight") = 0.75,
      py::arg("eval_every") = 5000, py::arg("lr_patience") = 5, py::arg("lr_decay") = 0.5,
      py::arg("max_evals") = 200, py::arg("max_steps") = 0, py::arg("max_seconds") = 0.0,
      py::arg("grad_clip_norm") = 0.0, py::arg("mixed_precision") = true,
      py::arg("max_bad_steps") = 20, py::arg("max_length") = 0, py::arg("log_every") = 20,
      py::arg("verbose") = true, py::arg("seed") = 0, py::arg("workers") = 2,
      py::arg("resume") = true, py::arg("device") = "cpu", py::arg("callback") = py::none());
}

}  // namespace convirt::python
