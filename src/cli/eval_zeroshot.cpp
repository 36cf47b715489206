#include "eval_zeroshot.h"

#include <convirt/eval/tables.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

namespace convirt::cli {

EvalZeroShotCommand::EvalZeroShotCommand(CLI::App* eval) {
  app_ = eval->add_subcommand(
      "zeroshot", "Zero-shot classification from text prompts (no labels used for training)");
  auto& o = options_;
  app_->add_option("--model", o.model_path(), "convirt model checkpoint (model.pt)")->required();
  app_->add_option(
      "--vocab", o.vocab(),
      "vocab.txt of the model (default: the one the model carries; for a model without one, "
      "beside the checkpoint or in the folder above)");
  app_->add_option("--prompts", o.prompts_path(),
                   "Prompt file {\"labels\": {LABEL: {\"positive\": [...], \"negative\": [...]}}} "
                   "(default: the built-in prompts, resources/prompts/default.json)");
  app_->add_option(
          "--dataset", dataset_,
          "chexpert (mean AUC) | rsna (AUC) | covidx (accuracy) | mura (patient-level AUC)")
      ->capture_default_str();
  app_->add_option("--test-csv", o.test_csv(), "chexpert: test CSV (CheXpert's valid.csv)");
  app_->add_option(
      "--image-root", o.image_root(),
      "chexpert: folder the CSV paths are relative to (default: found next to the CSV)");
  app_->add_option("--data-root", o.data_root(),
                   "rsna: folder of stage_2_train_labels.csv; covidx: folder of test.txt; mura: "
                   "MURA-v1.1 or its parent");
  app_->add_option("--labels", o.labels(), "chexpert: label columns (default: the paper's five)");
  app_->add_option("--uncertain", o.uncertain(),
                   "chexpert: uncertain labels: zeros | ones | ignore")
      ->capture_default_str();
  app_->add_option("--mura-level", o.mura_level(), "mura: AUC level: patient | study | image")
      ->capture_default_str();
  app_->add_flag("--skip-bad-rows", o.skip_bad_rows(),
                 "Skip and count table rows that are ragged or not UTF-8 (default: an error naming "
                 "the file, line and column)");
  app_->add_option("--test-fraction", o.test_fraction(), "rsna: share held out as the test set")
      ->capture_default_str();
  app_->add_option("--split-seed", o.split_seed(), "rsna: seed of the test split")
      ->capture_default_str();
  app_->add_option("--image-size", o.image_size(), "Input side in pixels (0: the model's)")
      ->capture_default_str();
  app_->add_option("--batch-size", o.batch_size(), "Images per forward pass")
      ->capture_default_str();
  app_->add_option("--threads", o.threads(), "Intra-op threads (0: all cores)")
      ->capture_default_str();
  app_->add_option("--workers", o.workers(), "Image decoding threads")->capture_default_str();
  app_->add_option("--name", o.method_name(), "Method name in the results");
  app_->add_option("--out", out_, "Write results.json here");
}

int EvalZeroShotCommand::run() {
  options_.dataset(pipeline::parse_dataset_kind(dataset_)).verbose(true);
  const auto r = pipeline::zero_shot(options_);
  std::printf("zero-shot %s on %s (%lld images): %s %.4f\n", r.method.c_str(), r.task.c_str(),
              static_cast<long long>(r.images), r.metric_name.c_str(), r.metric);
  if (r.per_label.size() > 1) {
    for (size_t i = 0; i < r.per_label.size(); ++i) {
      std::printf("  %-20s AUC %.4f\n", r.labels[i].c_str(), r.per_label[i]);
    }
  }
  eval::Results results;
  pipeline::add_zero_shot(results, r);
  std::cout << eval::format_zero_shot_table(results);
  if (!out_.empty()) {
    results.save(out_);
    std::cout << "results: " << out_ << "\n";
  }
  return 0;
}

Subcommand add_eval_zeroshot(CLI::App& eval) {
  auto command = std::make_shared<EvalZeroShotCommand>(&eval);
  return {command->app(), [command] { return command->run(); }};
}

}  // namespace convirt::cli
