// convirt._C.train: pretraining driven from Python. The whole run is C++ (pipeline::pretrain, the
// same call as `convirt pretrain`; the options cross as PretrainJob JSON) with the GIL released;
// the Python callback runs with the GIL re-acquired, and Ctrl-C is noticed there
// (PyErr_CheckSignals), turned into request_stop() so that the trainer writes its checkpoint and
// returns, and then re-raised as KeyboardInterrupt.
#include "bind.h"

#include <convirt/core/check.h>
#include <convirt/pipeline/pretrain.h>
#include <convirt/text/wordpiece.h>
#include <convirt/train/precision.h>
#include <convirt/train/pretrainer.h>

#include <pybind11/stl.h>

#include <filesystem>
#include <optional>
#include <string>
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
  d["temperature"] = m.temperature;
  d["images_per_second"] = m.images_per_second;
  d["eta_seconds"] = m.eta_seconds;
  d["is_eval"] = m.is_eval;
  if (m.is_eval) d["val_loss"] = m.val_loss;
  return d;
}

// The model a config names: a preset ("small" sized to the tokenizer's vocabulary, "paper") or
// the JSON of a ModelConfig. `fit_vocab` sizes a named preset's text encoder to the tokenizer, as
// `convirt pretrain --data` does for a vocabulary it built from the corpus.
// The run is C++ with the GIL released; the callback and Ctrl-C are checked with the GIL held on
// every logged step.
py::dict run_pretraining(const pipeline::PretrainJob& job, const py::object& callback) {
  CONVIRT_CHECK_TYPE(callback.is_none() || PyCallable_Check(callback.ptr()),
                     "callback must be callable or None, got ",
                     std::string(py::str(py::type::of(callback).attr("__name__"))));
  std::optional<py::error_already_set> pending;  // raised once the run has returned
  bool interrupted = false;
  train::Pretrainer* running = nullptr;
  pipeline::PretrainHooks hooks;
  hooks.on_trainer = [&](train::Pretrainer* t) { running = t; };
  hooks.interrupted = [&] { return pending.has_value(); };
  hooks.on_step = [&](const train::StepMetrics& m) -> bool {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) {  // Ctrl-C: stop after this step, checkpoint, then raise
      pending.emplace();
      interrupted = true;
      if (running) running->request_stop();
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
  pipeline::PretrainRun run;
  {
    py::gil_scoped_release release;
    run = pipeline::pretrain(job, hooks);
  }
  if (pending) throw *pending;
  const auto& r = run.result;
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
  d["model_config"] = run.model->config().to_json();
  // The model the run ends with (the best validation weights), as `convirt pretrain` writes it.
  d["model"] = run.model_path;
  d["vocab"] = run.vocab_path;
  d["skipped"] = (std::filesystem::path(job.out_dir()) / "skipped.tsv").string();
  return d;
}

}  // namespace

void bind_train(py::module_& m) {
  auto t = m.def_submodule("train", "ConVIRT pretraining");
  t.def(
      "pretrain",
      [](const std::string& job_json, const py::object& callback) {
        return run_pretraining(pipeline::PretrainJob::from_json(job_json), callback);
      },
      py::arg("job_json"), py::arg("callback") = py::none(),
      "Runs pipeline::pretrain on a job given as PretrainJob JSON (see convirt.train.pretrain).");
  t.def(
      "pretrain_defaults", [] { return pipeline::PretrainJob().to_json(); },
      "Every pretraining option with its default, as PretrainJob JSON (the one source of them).");
  // The one source of these defaults: convirt.train.PRETRAIN_DEFAULTS reads them from here.
  t.attr("DEFAULT_DEVICE") = train::kDefaultDevice;
  t.attr("DEFAULT_PRECISION") = train::kDefaultPrecision;
}

}  // namespace convirt::python
