#include "reproduce.h"

#include "synth.h"

#include <convirt/pipeline/experiment.h>

#include <iostream>
#include <memory>

namespace convirt::cli {
namespace {

struct ReproduceArgs {
  pipeline::ReproduceOptions rep;
  bool quick = false;
};

int run_reproduce(CLI::App* c_rep, ReproduceArgs& args) {
  auto& rep = args.rep;
  const bool quick = args.quick;
  if (c_rep->count("--pretrain-seconds") > 0 && c_rep->count("--pretrain-steps") == 0) {
    rep.pretrain_steps(0);
  }
  if (quick) {
    // Smaller defaults: an option given on the command line (or in --config) still wins.
    const auto given = [&](const char* flag) { return c_rep->count(flag) > 0; };
    auto& synth = rep.synthetic();
    if (!given("--train-studies")) synth.train_studies(300);
    if (!given("--validate-studies")) synth.validate_studies(40);
    if (!given("--test-studies")) synth.test_studies(10);
    if (!given("--chexpert-train")) synth.chexpert_train(300);
    if (!given("--chexpert-valid")) synth.chexpert_valid(100);
    if (!given("--retrieval-candidates")) synth.retrieval_candidates(20);
    if (!given("--pretrain-seconds") && !given("--pretrain-steps")) rep.pretrain_steps(30);
    if (!given("--eval-every")) rep.eval_every(15);
    if (!given("--linear-seeds")) rep.linear_seeds(2);
    if (!given("--finetune-seeds")) rep.finetune_seeds(1);
    if (!given("--finetune-steps")) rep.finetune_steps(20);
    if (!given("--finetune-warmup-steps")) rep.finetune_warmup_steps(10);
    if (!given("--fractions")) rep.fractions({0.1, 1.0});
  }
  auto summary = pipeline::reproduce(rep);
  std::cout << "\n" << summary.tables;
  std::cout << "results: " << summary.results_json << "\ntables: " << summary.tables_md
            << "\nfigure: " << summary.tsne_svg << "\n";
  return 0;
}

}  // namespace

Subcommand add_reproduce(CLI::App& app) {
  auto args = std::make_shared<ReproduceArgs>();
  auto& rep = args->rep;
  bool& quick = args->quick;
  auto* c_rep = app.add_subcommand(
      "reproduce", "The whole pipeline: data, pretraining, Tables 1 and 2, Figure 3");
  c_rep->add_option("--out", rep.out_dir(), "Run folder")->capture_default_str();
  c_rep->add_option("--data", rep.data_dir(), "Existing synthetic dataset (default: generate)");
  c_rep->add_option("--preset", rep.preset(), "small | paper")->capture_default_str();
  c_rep->add_option("--methods", rep.methods(), "random binary convirt imagenet")
      ->capture_default_str();
  c_rep->add_option("--imagenet-weights", rep.imagenet_weights(),
                    "torchvision ResNet state_dict for the ImageNet-init row");
  c_rep->add_option("--image-size", rep.image_size())->capture_default_str();
  c_rep->add_option("--vocab-size", rep.vocab_size())->capture_default_str();
  c_rep
      ->add_option("--pretrain-seconds", rep.pretrain_seconds(),
                   "Wall-clock budget per pretrained method (replaces the step budget)")
      ->capture_default_str();
  c_rep->add_option("--pretrain-steps", rep.pretrain_steps(), "Step budget per pretrained method")
      ->capture_default_str();
  c_rep->add_option("--eval-every", rep.eval_every())->capture_default_str();
  c_rep->add_option("--batch-size", rep.batch_size())->capture_default_str();
  c_rep->add_option("--lr", rep.learning_rate(), "Pretraining learning rate")
      ->capture_default_str();
  c_rep
      ->add_option("--classifier-lr", rep.classifier_learning_rate(),
                   "Learning rate of the evaluation classifiers")
      ->capture_default_str();
  c_rep->add_option("--fractions", rep.fractions())->capture_default_str();
  c_rep->add_option("--linear-seeds", rep.linear_seeds())->capture_default_str();
  c_rep->add_option("--finetune-seeds", rep.finetune_seeds())->capture_default_str();
  c_rep->add_option("--finetune-steps", rep.finetune_steps())->capture_default_str();
  c_rep
      ->add_option("--finetune-warmup-steps", rep.finetune_warmup_steps(),
                   "Head-only steps before the encoder is unfrozen (paper: 200)")
      ->capture_default_str();
  c_rep->add_flag("--finetune,!--no-finetune", rep.finetune(), "Run Table 1(b)");
  c_rep->add_option("--threads", rep.threads())->capture_default_str();
  c_rep->add_option("--workers", rep.workers())->capture_default_str();
  c_rep->add_option("--seed", rep.seed())->capture_default_str();
  c_rep->add_flag(
      "--quick", quick,
      "A much smaller run (a smoke test of the pipeline); options given explicitly still apply");
  add_synthetic_options(c_rep, rep.synthetic());
  return {c_rep, [c_rep, args] { return run_reproduce(c_rep, *args); }};
}

}  // namespace convirt::cli
