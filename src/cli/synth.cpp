#include "synth.h"

#include <convirt/core/threads.h>
#include <convirt/pipeline/experiment.h>

#include <cstdio>
#include <memory>
#include <string>

namespace convirt::cli {
namespace {

struct SynthArgs {
  std::string out = "runs/synthetic";
  data::synthetic::SyntheticOptions opts;
};

int run_synth(const SynthArgs& synth) {
  set_num_threads(0);
  auto s = pipeline::ensure_synthetic(synth.out, synth.opts);
  std::printf(
      "synthetic dataset in %s\n  pairs (MIMIC-CXR-JPG layout): %s\n  labelled: %s, "
      "%s\n  retrieval (8x200 format): %s\n",
      s.root.c_str(), s.mimic_root.c_str(), s.chexpert_train_csv.c_str(),
      s.chexpert_valid_csv.c_str(), s.retrieval_dir.c_str());
  return 0;
}

}  // namespace

void add_synthetic_options(CLI::App* app, data::synthetic::SyntheticOptions& o) {
  app->add_option("--train-studies", o.train_studies(), "Paired training studies")
      ->capture_default_str();
  app->add_option("--validate-studies", o.validate_studies(), "Paired validation studies")
      ->capture_default_str();
  app->add_option("--test-studies", o.test_studies(), "Paired test studies")->capture_default_str();
  app->add_option("--chexpert-train", o.chexpert_train(), "Labelled training images")
      ->capture_default_str();
  app->add_option("--chexpert-valid", o.chexpert_valid(), "Labelled test images")
      ->capture_default_str();
  app->add_option("--retrieval-candidates", o.retrieval_candidates(),
                  "Retrieval candidates per category (official: 200)")
      ->capture_default_str();
  app->add_option("--synthetic-image-size", o.image_size(), "Side of the generated images")
      ->capture_default_str();
  app->add_option("--difficulty", o.difficulty(), "0 (clear findings) .. 1 (subtle, noisy)")
      ->capture_default_str();
  app->add_option("--prevalence", o.prevalence(), "Probability of each finding")
      ->capture_default_str();
  app->add_option("--data-seed", o.seed(), "Seed of the generator")->capture_default_str();
}

Subcommand add_synth(CLI::App& app) {
  auto synth = std::make_shared<SynthArgs>();
  auto* c_synth = app.add_subcommand("synth",
                                     "Write the synthetic paired dataset (MIMIC-CXR-JPG "
                                     "layout, CheXpert-style labels, 8x200 retrieval set)");
  c_synth->add_option("--out", synth->out, "Output folder")->capture_default_str();
  add_synthetic_options(c_synth, synth->opts);
  return {c_synth, [synth] { return run_synth(*synth); }};
}

}  // namespace convirt::cli
