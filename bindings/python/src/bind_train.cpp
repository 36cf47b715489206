// convirt._C.train: pretraining driven from Python. The whole run is C++
// (convirt::train::Pretrainer) with the GIL released; the Python callback runs with the GIL
// re-acquired, and Ctrl-C is noticed there (PyErr_CheckSignals), turned into request_stop() so that
// the trainer writes its checkpoint and returns, and then re-raised as KeyboardInterrupt.
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/dist/process_group.h>
#include <convirt/image/preprocess.h>
#include <convirt/image/transforms.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/text/wordpiece.h>
#include <convirt/train/initial_weights.h>
#include <convirt/train/precision.h>
#include <convirt/train/pretrainer.h>

#include <pybind11/stl.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>

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
// the JSON of a ModelConfig. `fit_vocab` sizes a named preset's text encoder to the tokenizer, as
// `convirt pretrain --data` does for a vocabulary it built from the corpus.
models::ModelConfig model_config(const std::string& model, int64_t vocab_size, bool fit_vocab) {
  models::ModelConfig cfg;
  if (!model.empty() && model.front() == '{') {
    cfg = models::ModelConfig::from_json(model);
  } else if (model == "small") {
    cfg = models::small_preset(vocab_size);
  } else {
    cfg = models::preset(model);
    if (fit_vocab) cfg.bert().config().vocab_size(vocab_size);
  }
  CONVIRT_CHECK_VALUE(cfg.bert().config().vocab_size() == vocab_size,
                      "model: the text encoder's vocab_size must equal the tokenizer's (",
                      vocab_size, "), got ", cfg.bert().config().vocab_size());
  return cfg;
}

struct PretrainArgs {
  std::string out_dir, data, train_csv, val_csv, vocab, model, image_column, text_column;
  int64_t vocab_size = 2048, image_size = 0;
  bool augment = true;
  train::PretrainOptions options{""};
  std::string device = train::kDefaultDevice;
  train::InitialWeightsOptions init;
};

// The config a model name stands for before the tokenizer exists: its channels and image size are
// needed to read the MIMIC-CXR root, whose reports the vocabulary is then built from.
models::ModelConfig base_config(const std::string& model) {
  if (!model.empty() && model.front() == '{') return models::ModelConfig::from_json(model);
  return model == "small" ? models::small_preset() : models::preset(model);
}

// The training and validation pairs: the MIMIC-CXR-JPG splits "train" / "validate" under
// `data` (as `convirt pretrain --data`), or two CSV files.
std::pair<std::shared_ptr<data::PairedDataset>, std::shared_ptr<data::PairedDataset>> load_pairs(
    const PretrainArgs& a, int64_t size, int64_t channels) {
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
  if (!a.data.empty()) {
    return {pipeline::load_pairs(a.data, "train", train_tf, channels),
            pipeline::load_pairs(a.data, "validate", val_tf, channels)};
  }
  auto csv_opts = [&](data::ImageTransform tf) {
    return data::CsvPairsOptions()
        .image_column(a.image_column)
        .text_column(a.text_column)
        .channels(channels)
        .transform(std::move(tf));
  };
  return {std::make_shared<data::CsvPairsDataset>(a.train_csv, csv_opts(train_tf)),
          std::make_shared<data::CsvPairsDataset>(a.val_csv, csv_opts(val_tf))};
}

py::dict run_pretraining(const PretrainArgs& a, const py::object& callback) {
  const bool from_root = !a.data.empty();
  std::shared_ptr<data::PairedDataset> train_set, val_set;
  std::shared_ptr<const text::WordPieceTokenizer> tokenizer;
  models::ModelConfig cfg;
  // Under torchrun / `convirt launch` every rank runs this function; one process otherwise.
  const auto ctx = dist::DistributedContext::from_environment();
  {
    // Indexing a real MIMIC-CXR root and building the vocabulary take a while: without the GIL.
    py::gil_scoped_release release;
    const std::string& text_init = a.init.text_init();
    if (from_root) {
      const auto base = base_config(a.model);
      const int64_t size = a.image_size > 0 ? a.image_size : base.image_size();
      std::tie(train_set, val_set) = load_pairs(a, size, base.resnet().in_channels());
      const std::string vocab =
          a.vocab.empty() ? (std::filesystem::path(a.out_dir) / "vocab.txt").string() : a.vocab;
      if (text_init.empty()) {
        // Rank 0 builds and writes the vocabulary; the others then read that very file.
        std::shared_ptr<text::WordPieceTokenizer> built;
        dist::run_on_main(
            ctx, [&] { built = pipeline::build_tokenizer(*train_set, a.vocab_size, vocab); },
            "building the vocabulary " + vocab);
        if (!ctx.is_main()) built = pipeline::build_tokenizer(*train_set, a.vocab_size, vocab);
        tokenizer = built;
      }
    } else if (text_init.empty()) {
      tokenizer = std::make_shared<const text::WordPieceTokenizer>(
          text::WordPieceTokenizer::from_vocab_file(a.vocab));
    }
    if (!text_init.empty()) {
      // The pretrained BERT's folder gives the vocabulary and (initial_config) the architecture.
      tokenizer = train::hf_tokenizer(text_init);
      cfg = base_config(a.model);
      if (a.model == "small") cfg = models::small_preset(tokenizer->vocab_size());
      cfg.bert().config().vocab_size(tokenizer->vocab_size());
    } else {
      cfg = model_config(a.model, tokenizer->vocab_size(), /*fit_vocab=*/from_root);
    }
    if (a.image_size > 0) cfg.image_size(a.image_size);
    if (!from_root)
      std::tie(train_set, val_set) = load_pairs(a, cfg.image_size(), cfg.resnet().in_channels());
  }

  train::PretrainOptions options = a.options;
  options.distributed(ctx);
  options.device(train::resolve_device(a.device, ctx.local_rank()));

  torch::manual_seed(options.seed());  // the same initial weights for the same config
  std::string init_log;
  auto model = train::make_initialised_model(cfg, a.init, &init_log);
  cfg = model->config();
  if (options.verbose() && ctx.is_main() && !init_log.empty())
    std::fprintf(stderr, "[init] %s", init_log.c_str());
  // Tokens per sentence: the model's (it sized the position embeddings) unless given.
  if (options.max_length() <= 0) options.max_length(cfg.max_length());
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
  // The model the run ends with (the best validation checkpoint's weights when there was one), as
  // `convirt pretrain` writes it; an interrupted run leaves it out (resume from last.ckpt instead).
  std::string final_model;
  if (!pending && ctx.is_main()) {
    final_model = (std::filesystem::path(a.out_dir) / "model.pt").string();
    py::gil_scoped_release release;
    io::save_convirt(*trainer.model(), final_model);
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
  d["model"] = final_model;
  d["vocab"] = !a.init.text_init().empty()
                   ? (std::filesystem::path(a.init.text_init()) / "vocab.txt").string()
               : from_root && a.vocab.empty()
                   ? (std::filesystem::path(a.out_dir) / "vocab.txt").string()
                   : a.vocab;
  return d;
}

}  // namespace

void bind_train(py::module_& m) {
  auto t = m.def_submodule("train", "ConVIRT pretraining");
  t.def(
      "pretrain",
      [](const std::string& out_dir, const std::string& data, const std::string& train_csv,
         const std::string& val_csv, const std::string& vocab, int64_t vocab_size,
         int64_t image_size, int64_t threads, const std::string& model,
         const std::string& image_column, const std::string& text_column, bool augment,
         const std::string& objective, double learning_rate, double weight_decay,
         int64_t batch_size, double temperature, double image_to_text_weight, int64_t eval_every,
         int64_t lr_patience, double lr_decay, int64_t max_evals, int64_t max_steps,
         double max_seconds, double grad_clip_norm, const std::string& precision,
         int64_t max_bad_steps, int64_t max_length, int64_t log_every, bool verbose, uint64_t seed,
         int64_t workers, bool resume, const std::string& device, const std::string& image_init,
         const std::string& text_init, int64_t text_frozen_layers, bool allow_option_change,
         const py::object& callback) {
        CONVIRT_CHECK_VALUE(!out_dir.empty(), "out_dir must not be empty");
        CONVIRT_CHECK_VALUE(data.empty() || (train_csv.empty() && val_csv.empty()),
                            "give either data (a MIMIC-CXR-JPG root) or train_csv and val_csv, "
                            "not both; got data='",
                            data, "', train_csv='", train_csv, "'");
        CONVIRT_CHECK_VALUE(!data.empty() || (!train_csv.empty() && !val_csv.empty()),
                            "give data (a MIMIC-CXR-JPG root) or both train_csv and val_csv");
        CONVIRT_CHECK_VALUE(text_init.empty() || vocab.empty(),
                            "give vocab or text_init, not both: text_init uses its folder's "
                            "vocab.txt; got vocab='",
                            vocab, "'");
        CONVIRT_CHECK_VALUE(!data.empty() || !vocab.empty() || !text_init.empty(),
                            "vocab is required with train_csv / val_csv (with data it defaults to "
                            "a vocabulary built from the corpus into out_dir/vocab.txt)");
        // An explicit vocabulary must exist: a typo must not silently build (and use) a new one.
        CONVIRT_CHECK_VALUE(vocab.empty() || std::filesystem::is_regular_file(vocab),
                            "vocab: no such file '", vocab,
                            "'; leave vocab empty to build one from the training reports into "
                            "out_dir/vocab.txt (with data)");
        CONVIRT_CHECK_VALUE(vocab_size > 0, "vocab_size must be positive, got ", vocab_size);
        CONVIRT_CHECK_VALUE(image_size >= 0, "image_size must be >= 0 (0: the model's), got ",
                            image_size);
        CONVIRT_CHECK_VALUE(threads >= 0, "threads must be >= 0 (0: all cores), got ", threads);
        if (threads > 0) convirt::set_num_threads(static_cast<int>(threads));
        CONVIRT_CHECK_TYPE(callback.is_none() || PyCallable_Check(callback.ptr()),
                           "callback must be callable or None, got ",
                           std::string(py::str(py::type::of(callback).attr("__name__"))));
        PretrainArgs a;
        a.out_dir = out_dir;
        a.data = data;
        a.vocab_size = vocab_size;
        a.image_size = image_size;
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
                        .precision(train::parse_precision(precision))
                        .max_bad_steps(max_bad_steps)
                        .max_length(max_length)
                        .log_every(log_every)
                        .verbose(verbose)
                        .seed(seed)
                        .workers(workers)
                        .resume(resume)
                        .allow_option_change(allow_option_change);
        // Resolved in run_pretraining, where the job's local rank is known; checked here already
        // so that a missing GPU, an impossible precision or a missing file fail before any data is
        // read.
        train::resolve_precision(a.options.precision(), train::resolve_device(device));
        a.device = device;
        a.init.image_init(image_init).text_init(text_init).text_frozen_layers(text_frozen_layers);
        a.init.validate();
        return run_pretraining(a, callback);
      },
      py::kw_only(), py::arg("out_dir"), py::arg("data") = "", py::arg("train_csv") = "",
      py::arg("val_csv") = "", py::arg("vocab") = "", py::arg("vocab_size") = 2048,
      py::arg("image_size") = 0, py::arg("threads") = 0, py::arg("model") = "small",
      py::arg("image_column") = "image", py::arg("text_column") = "text", py::arg("augment") = true,
      py::arg("objective") = "convirt", py::arg("learning_rate") = 1e-4,
      py::arg("weight_decay") = 1e-6, py::arg("batch_size") = 32, py::arg("temperature") = 0.1,
      py::arg("image_to_text_weight") = 0.75, py::arg("eval_every") = 5000,
      py::arg("lr_patience") = 5, py::arg("lr_decay") = 0.5, py::arg("max_evals") = 200,
      py::arg("max_steps") = 0, py::arg("max_seconds") = 0.0, py::arg("grad_clip_norm") = 0.0,
      py::arg("precision") = train::kDefaultPrecision, py::arg("max_bad_steps") = 20,
      py::arg("max_length") = 0, py::arg("log_every") = 20, py::arg("verbose") = true,
      py::arg("seed") = 0, py::arg("workers") = 2, py::arg("resume") = true,
      py::arg("device") = train::kDefaultDevice, py::arg("image_init") = "",
      py::arg("text_init") = "", py::arg("text_frozen_layers") = -1,
      py::arg("allow_option_change") = false, py::arg("callback") = py::none());
  // The one source of these defaults: convirt.train.PRETRAIN_DEFAULTS reads them from here.
  t.attr("DEFAULT_DEVICE") = train::kDefaultDevice;
  t.attr("DEFAULT_PRECISION") = train::kDefaultPrecision;
}

}  // namespace convirt::python
