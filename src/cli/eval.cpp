#include "eval.h"

#include "eval_zeroshot.h"

#include <convirt/core/threads.h>
#include <convirt/eval/tables.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/pipeline/retrieval.h>

#include <iostream>
#include <memory>
#include <string>

namespace convirt::cli {
namespace {

struct EvalArgs {
  std::string model, vocab, retrieval_dir, image_root, out, method_name;
  int64_t image_size = 0, threads = 0, workers = 2;  // image_size 0: the model's
  // linear | finetune: the options of pipeline::evaluate, with their flags' strings.
  pipeline::EvaluateOptions eval;
  std::string dataset = "chexpert", data_mode = "auto";
  int64_t max_memory_mb = 4096;
};

// Linear or fine-tuning protocol of a checkpoint on one of the paper's labelled datasets.
int run_eval_classification(EvalArgs a, bool finetune) {
  auto& o = a.eval;
  o.model_path(a.model)
      .method_name(a.method_name)
      .image_root(a.image_root)
      .image_size(a.image_size)
      .threads(a.threads)
      .workers(a.workers)
      .dataset(pipeline::parse_dataset_kind(a.dataset))
      .data_mode(pipeline::parse_data_mode(a.data_mode))
      .max_memory_bytes(a.max_memory_mb << 20)
      .protocol(finetune ? pipeline::Protocol::kFinetune : pipeline::Protocol::kLinear)
      .verbose(true);
  auto results = pipeline::evaluate(o);
  std::cout << eval::format_classification_table(results, to_string(o.protocol()));
  if (!a.out.empty()) {
    results.save(a.out);
    std::cout << "results: " << a.out << "\n";
  }
  return 0;
}

int run_eval_retrieval(const EvalArgs& a) {
  set_num_threads(static_cast<int>(a.threads));
  auto results = pipeline::evaluate_retrieval(pipeline::RetrievalEvalOptions(a.model)
                                                  .method_name(a.method_name)
                                                  .retrieval_dir(a.retrieval_dir)
                                                  .image_root(a.image_root)
                                                  .vocab(a.vocab)
                                                  .image_size(a.image_size)
                                                  .workers(a.workers));
  std::cout << eval::format_retrieval_table(results);
  if (!a.out.empty()) {
    results.save(a.out);
    std::cout << "results: " << a.out << "\n";
  }
  return 0;
}

}  // namespace

std::vector<Subcommand> add_eval(CLI::App& app) {
  // linear, finetune and retrieval share one set of arguments: only one of them is parsed.
  auto args = std::make_shared<EvalArgs>();
  auto& ev = *args;
  auto* c_eval = app.add_subcommand("eval", "Evaluate a pretrained model");
  c_eval->require_subcommand(1);
  auto add_common = [&](CLI::App* c) {
    c->add_option("--model", ev.model, "convirt model checkpoint (model.pt)")->required();
    c->add_option("--image-size", ev.image_size, "Input side in pixels (0: the model's)")
        ->capture_default_str();
    c->add_option("--threads", ev.threads, "Intra-op threads (0: all cores)")
        ->capture_default_str();
    c->add_option("--workers", ev.workers, "Image decoding threads")->capture_default_str();
    c->add_option("--name", ev.method_name, "Method name in the table");
    c->add_option("--out", ev.out, "Write results.json here");
  };
  auto add_classification = [&](CLI::App* c) {
    add_common(c);
    auto& o = ev.eval;
    c->add_option("--dataset", ev.dataset,
                  "chexpert (mean AUC, 5 labels) | rsna (AUC) | covidx (accuracy, 3 classes) | "
                  "mura (patient-level AUC)")
        ->capture_default_str();
    c->add_option("--train-csv", o.train_csv(), "chexpert: CheXpert-format train.csv");
    c->add_option("--test-csv", o.test_csv(), "chexpert: test CSV (CheXpert's valid.csv)");
    c->add_option(
        "--image-root", ev.image_root,
        "chexpert: folder the CSV paths are relative to (default: found next to the CSV)");
    c->add_option("--data-root", o.data_root(),
                  "rsna: folder of stage_2_train_labels.csv; covidx: folder of train.txt/test.txt; "
                  "mura: MURA-v1.1 or its parent");
    c->add_option("--labels", o.labels(), "chexpert: label columns (default: the paper's five)");
    c->add_option("--uncertain", o.uncertain(), "chexpert: uncertain labels: zeros | ones | ignore")
        ->capture_default_str();
    c->add_option("--mura-level", o.mura_level(), "mura: AUC level: patient | study | image")
        ->capture_default_str();
    c->add_flag("--skip-bad-rows", o.skip_bad_rows(),
                "Skip and count table rows that are ragged or not UTF-8 (default: an error naming "
                "the file, line and column)");
    c->add_option("--val-fraction", o.val_fraction(),
                  "Share of the training data held out for model selection")
        ->capture_default_str();
    c->add_option("--test-fraction", o.test_fraction(), "rsna: share held out as the test set")
        ->capture_default_str();
    c->add_option("--split-seed", o.split_seed(), "Seed of the train/val(/test) split")
        ->capture_default_str();
    c->add_option("--fractions", o.fractions(),
                  "Label fractions (default: 0.01 0.1 1; covidx: 0.1 1)");
    c->add_option("--seeds", o.seeds(), "Runs per fraction")->capture_default_str();
    c->add_option("--first-seed", o.first_seed(), "Seed of the first run")->capture_default_str();
    c->add_option("--lr", o.learning_rate(),
                  "Classifier learning rate (0: the paper's, 1e-4; covidx 1e-3)")
        ->capture_default_str();
    c->add_option("--batch-size", o.batch_size(), "Classifier training batch")
        ->capture_default_str();
    c->add_option("--max-epochs", o.max_epochs(), "Epoch budget per run (early stopping: 10)")
        ->capture_default_str();
  };
  auto* c_lin = c_eval->add_subcommand("linear", "Linear protocol (frozen encoder)");
  add_classification(c_lin);
  auto* c_ft = c_eval->add_subcommand("finetune", "Fine-tuning protocol");
  add_classification(c_ft);
  c_ft->add_option("--finetune-steps", ev.eval.max_steps(),
                   "Step budget per run, warm-up included (0: early stopping only)")
      ->capture_default_str();
  c_ft->add_option("--warmup-steps", ev.eval.warmup_steps(), "Head-only warm-up steps")
      ->capture_default_str();
  c_ft->add_option("--warmup-lr", ev.eval.warmup_learning_rate(), "Warm-up learning rate")
      ->capture_default_str();
  c_ft->add_option("--data-mode", ev.data_mode,
                   "auto | memory | stream: keep decoded images in memory or stream batches "
                   "through the loader (auto: stream above --max-memory-mb)")
      ->capture_default_str();
  c_ft->add_option("--max-memory-mb", ev.max_memory_mb, "auto: largest in-memory image set (MB)")
      ->capture_default_str();
  auto* c_ret = c_eval->add_subcommand("retrieval", "Zero-shot retrieval on the 8x200 format");
  add_common(c_ret);
  c_ret->add_option("--retrieval-dir", ev.retrieval_dir, "Folder of the 8x200 CSVs")->required();
  c_ret->add_option("--vocab", ev.vocab,
                    "vocab.txt of the model (default: the one the model carries, which enables "
                    "text->image; one given must match it)");
  c_ret->add_option("--image-root", ev.image_root,
                    "Folder holding CheXpert-v1.0-small (default: the retrieval folder's parent)");
  return {{c_lin, [args] { return run_eval_classification(*args, false); }},
          {c_ft, [args] { return run_eval_classification(*args, true); }},
          {c_ret, [args] { return run_eval_retrieval(*args); }},
          add_eval_zeroshot(*c_eval)};
}

}  // namespace convirt::cli
