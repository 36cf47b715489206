// The `convirt` program: synth, pretrain, eval (linear | finetune | retrieval | zeroshot), embed,
// search, tsne, reproduce.
// Each subcommand parses its options and calls the library (convirt::pipeline and the areas under
// it); no experiment logic lives here.

#include "config_file.h"
#include "embed.h"
#include "eval_zeroshot.h"
#include "search.h"

#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/core/version.h>
#include <convirt/dist/launch.h>
#include <convirt/eval/tables.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/pipeline/pretrain.h>
#include <convirt/pipeline/retrieval.h>
#include <convirt/pipeline/tsne_figure.h>
#include <convirt/train/initial_weights.h>
#include <convirt/train/metrics_log.h>
#include <convirt/train/pretrainer.h>
#include <convirt/train/run_folder.h>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

namespace fs = std::filesystem;
using namespace convirt;

namespace {

train::Pretrainer* g_running = nullptr;
volatile std::sig_atomic_t g_signal = 0;

// Ctrl-C (or SIGTERM) asks the trainer to stop after the current step; it then writes its
// checkpoint and returns, so `convirt pretrain` can be resumed later with the same command. A
// second signal is not caught: it ends the program at once, as the user then means.
void on_signal(int sig) {
  g_signal = sig;
  std::signal(sig, SIG_DFL);
  if (g_running) g_running->request_stop();
}

struct SynthArgs {
  std::string out = "runs/synthetic";
  data::synthetic::SyntheticOptions opts;
  int64_t train = 0, image_size = 0;
};

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

// `convirt pretrain`: the flags are bound to a pipeline::PretrainJob's fields, so their defaults
// are the library's. Two enums travel as their names.
struct PretrainArgs {
  pipeline::PretrainJob job;
  std::string objective = train::to_string(job.trainer().objective());
  std::string precision = train::to_string(job.trainer().precision());
  std::string sync_batch_norm = train::to_string(job.trainer().sync_batch_norm());
  bool no_resume = false;
};

// A run stopped by a signal is not a finished run: it says so in metrics.jsonl and on stderr,
// writes no model.pt, and exits as a shell reports the signal (128 + its number: 130 SIGINT, 143
// SIGTERM).
int report_interrupted(const std::string& out, bool main, int sig, int64_t step) {
  const std::string name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal";
  if (main) {
    train::JsonLinesWriter((fs::path(out) / "metrics.jsonl").string())
        .write({{"event", std::string("interrupted")}, {"signal", name}, {"step", step}});
    std::fprintf(stderr,
                 "convirt: pretraining interrupted by %s at step %lld; checkpoint: %s (run the "
                 "same command to resume)\n",
                 name.c_str(), static_cast<long long>(step),
                 (fs::path(out) / "last.ckpt").string().c_str());
  }
  return 128 + sig;
}

int run_pretrain(PretrainArgs a) {
  auto& job = a.job;
  job.trainer()
      .objective(train::parse_objective(a.objective))
      .precision(train::parse_precision(a.precision))
      .sync_batch_norm(train::parse_sync_batch_norm(a.sync_batch_norm))
      .resume(!a.no_resume);
  pipeline::PretrainHooks hooks;
  hooks.on_trainer = [](train::Pretrainer* trainer) { g_running = trainer; };
  hooks.interrupted = [] { return g_signal != 0; };
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const auto run = pipeline::pretrain(job, hooks);
  if (run.interrupted)
    return report_interrupted(job.out_dir(), run.is_main, g_signal, run.result.steps);
  if (!run.is_main) return 0;
  const auto& r = run.result;
  std::printf(
      "pretraining stopped (%s) after %lld steps; best validation loss %.4f at step %lld\n"
      "model (best validation): %s\nmetrics: %s\n",
      r.stop_reason.c_str(), static_cast<long long>(r.steps), r.best_val_loss,
      static_cast<long long>(r.best_step), run.model_path.c_str(),
      (fs::path(job.out_dir()) / "metrics.jsonl").string().c_str());
  return 0;
}

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

struct TsneArgs {
  std::vector<std::string> models, names;
  std::string retrieval_dir, image_root, out = "tsne.svg";
  int64_t image_size = 0, categories = 5, threads = 0;  // image_size 0: each model's
  double perplexity = 30;
  uint64_t seed = 0;
};

int run_tsne(const TsneArgs& a) {
  set_num_threads(static_cast<int>(a.threads));
  auto out = pipeline::tsne_figure(pipeline::TsneFigureOptions()
                                       .model_paths(a.models)
                                       .names(a.names)
                                       .retrieval_dir(a.retrieval_dir)
                                       .image_root(a.image_root)
                                       .out(a.out)
                                       .image_size(a.image_size)
                                       .categories(a.categories)
                                       .perplexity(a.perplexity)
                                       .seed(a.seed));
  std::cout << "t-SNE figure: " << out << "\n";
  return 0;
}

// libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main). Its default lets idle OpenMP
// threads spin, which on a small machine steals the cores from the data-loading threads:
// pretraining ran 10x slower on 2 busy cores. So unless the user chose a policy, the program
// re-executes itself once with the passive one.
void ensure_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
}

}  // namespace

int main(int argc, char** argv) {
  ensure_passive_openmp(argv);
  std::vector<std::string> args(argv, argv + argc);
  try {
    args = cli::expand_config_args(args);
  } catch (const std::exception& e) {
    std::cerr << "convirt: " << e.what() << "\n";
    return 2;
  }
  CLI::App app{"convirt " + version() +
               ": ConVIRT contrastive pretraining of medical image encoders from paired reports"};
  app.set_version_flag("--version", version());
  app.require_subcommand(1);
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.footer(
      "Every subcommand also takes --config FILE (.json, or .yaml/.yml): a JSON object or YAML "
      "mapping of its long option names, optionally under a section named after the subcommand; "
      "flags on the command line override the file.");

  // synth
  SynthArgs synth;
  auto* c_synth = app.add_subcommand("synth",
                                     "Write the synthetic paired dataset (MIMIC-CXR-JPG "
                                     "layout, CheXpert-style labels, 8x200 retrieval set)");
  c_synth->add_option("--out", synth.out, "Output folder")->capture_default_str();
  add_synthetic_options(c_synth, synth.opts);

  // pretrain
  PretrainArgs pre;
  auto* c_pre = app.add_subcommand("pretrain",
                                   "Pretrain ConVIRT (or the binary baseline) on "
                                   "paired images and reports");
  auto& job = pre.job;
  auto& tr = job.trainer();
  c_pre->add_option("--data", job.data(), "MIMIC-CXR-JPG-layout root (images, reports, CSVs)");
  c_pre->add_option("--train-csv", job.train_csv(),
                    "Instead of --data: CSV of training pairs (image path(s), report text)");
  c_pre->add_option("--val-csv", job.val_csv(), "Instead of --data: CSV of validation pairs");
  c_pre->add_option("--image-column", job.image_column(), "CSV column of the image path(s)")
      ->capture_default_str();
  c_pre->add_option("--text-column", job.text_column(), "CSV column of the report text")
      ->capture_default_str();
  c_pre->add_option("--out", tr.out_dir(), "Run folder (checkpoints, metrics.jsonl, model.pt)")
      ->capture_default_str();
  c_pre
      ->add_option("--preset,--model", job.model(),
                   "Model: a preset (small | paper) or a ModelConfig JSON file")
      ->capture_default_str();
  c_pre->add_option("--objective", pre.objective, "convirt | binary")->capture_default_str();
  c_pre->add_option("--vocab", job.vocab(),
                    "Existing vocab.txt to use (default: built from the corpus into "
                    "OUT/vocab.txt)");
  c_pre->add_option("--vocab-size", job.vocab_size(), "Size of a vocabulary built from the corpus")
      ->capture_default_str();
  c_pre
      ->add_option("--image-size", job.image_size(),
                   "Model input side in pixels (0: the preset's, small 64, paper 224)")
      ->capture_default_str();
  c_pre
      ->add_flag("--augment,!--no-augment", job.augment(),
                 "The paper's augmentation on the training images")
      ->capture_default_str();
  c_pre->add_option("--batch-size", tr.batch_size())->capture_default_str();
  c_pre->add_option("--lr", tr.learning_rate(), "Adam learning rate")->capture_default_str();
  c_pre->add_option("--weight-decay", tr.weight_decay())->capture_default_str();
  c_pre->add_option("--temperature", tr.temperature(), "tau")->capture_default_str();
  c_pre->add_option("--image-to-text-weight", tr.image_to_text_weight(), "lambda")
      ->capture_default_str();
  c_pre->add_flag("--learn-temperature", tr.learn_temperature(),
                  "Learn tau from --temperature, in log space clamped to [0.01, 100] (CLIP's "
                  "practice; the paper keeps it fixed)");
  c_pre->add_option("--eval-every", tr.eval_every(), "Validation period in steps")
      ->capture_default_str();
  c_pre
      ->add_option("--lr-patience", tr.lr_patience(),
                   "Validations without improvement before the learning rate decays")
      ->capture_default_str();
  c_pre->add_option("--lr-decay", tr.lr_decay(), "Learning rate factor on a plateau")
      ->capture_default_str();
  c_pre->add_option("--max-evals", tr.max_evals(), "Stop after this many validations (0: none)")
      ->capture_default_str();
  c_pre->add_option("--max-steps", tr.max_steps(), "Stop after this many steps (0: none)")
      ->capture_default_str();
  c_pre->add_option("--max-seconds", tr.max_seconds(), "Stop after this much time (0: none)")
      ->capture_default_str();
  c_pre->add_option("--grad-clip", tr.grad_clip_norm(), "Gradient norm clip (0: off)")
      ->capture_default_str();
  c_pre->add_option("--max-length", tr.max_length(), "Tokens per sentence (0: the model config's)")
      ->capture_default_str();
  c_pre
      ->add_option("--max-bad-fraction", tr.max_bad_fraction(),
                   "Largest fraction of pairs that may be skipped as unusable (listed in "
                   "OUT/skipped.tsv); more stops the run (negative: no limit)")
      ->capture_default_str();
  c_pre->add_flag("--skip-bad-rows", job.skip_bad_rows(),
                  "Skip table rows that are ragged or not UTF-8, listed in OUT/skipped.tsv "
                  "(default: an error naming the file, line and column)");
  c_pre
      ->add_option("--max-bad-steps", tr.max_bad_steps(),
                   "Consecutive non-finite losses before the run stops")
      ->capture_default_str();
  c_pre->add_option("--log-every", tr.log_every())->capture_default_str();
  c_pre->add_option("--threads", job.threads(), "Intra-op threads (0: all cores)")
      ->capture_default_str();
  c_pre->add_option("--workers", tr.workers(), "Data loading threads")->capture_default_str();
  c_pre->add_option("--seed", tr.seed())->capture_default_str();
  c_pre->add_flag("--no-resume", pre.no_resume, "Start over even if out/last.ckpt exists");
  c_pre->add_flag("--allow-option-change", tr.allow_option_change(),
                  "Let a resume change its budgets (--max-steps, --max-evals, --max-seconds, "
                  "--log-every, --workers, --max-bad-fraction); other options must match "
                  "out/run_options.json");
  c_pre->add_option("--image-init", job.init().image_init(),
                    "torchvision ResNet state_dict (.pth, .safetensors) to start the image "
                    "encoder from (paper: ImageNet); it sets the ResNet's depth and width");
  c_pre->add_option("--text-init", job.init().text_init(),
                    "Hugging Face BERT folder to start the text encoder from (paper: "
                    "ClinicalBERT); its config.json, vocab.txt and tokenizer_config.json are used");
  c_pre
      ->add_option("--text-frozen-layers", job.init().text_frozen_layers(),
                   "BERT layers kept frozen with --text-init, with the embeddings (-1: the "
                   "paper's, the first half; 0: none)")
      ->capture_default_str();
  c_pre
      ->add_option("--device", job.device(), "auto | cpu | cuda | cuda:N (auto: CUDA when present)")
      ->capture_default_str();
  c_pre
      ->add_option("--precision", pre.precision,
                   "auto | fp32 | bf16 | fp16 (auto: bf16 on CUDA, fp32 on CPU; fp16: CUDA only)")
      ->capture_default_str();
  c_pre
      ->add_option("--sync-batch-norm", pre.sync_batch_norm,
                   "auto | on | off: BatchNorm statistics over the global batch when several "
                   "ranks train (auto: when the model has BatchNorm layers)")
      ->capture_default_str();

  // eval linear | finetune | retrieval
  EvalArgs ev;
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
  cli::EvalZeroShotCommand c_zeroshot(c_eval);
  cli::EmbedCommand c_embed(&app);
  cli::SearchCommand c_search(&app);

  // tsne
  TsneArgs ts;
  auto* c_tsne = app.add_subcommand("tsne", "t-SNE of candidate image embeddings (Figure 3)");
  c_tsne->add_option("--model", ts.models, "One or more model checkpoints (one panel each)")
      ->required();
  c_tsne->add_option("--retrieval-dir", ts.retrieval_dir, "Folder of the 8x200 CSVs")->required();
  c_tsne->add_option("--image-root", ts.image_root,
                     "Folder holding CheXpert-v1.0-small (default: the retrieval folder's parent)");
  c_tsne->add_option("--out", ts.out, "SVG file")->capture_default_str();
  c_tsne->add_option("--names", ts.names, "Panel titles, one per model (default: run folders)");
  c_tsne->add_option("--image-size", ts.image_size, "Input side in pixels (0: each model's)")
      ->capture_default_str();
  c_tsne->add_option("--categories", ts.categories, "First k categories shown")
      ->capture_default_str();
  c_tsne->add_option("--perplexity", ts.perplexity, "t-SNE perplexity (lowered for small sets)")
      ->capture_default_str();
  c_tsne->add_option("--seed", ts.seed, "Seed of the t-SNE layout")->capture_default_str();

  // reproduce
  pipeline::ReproduceOptions rep;
  bool quick = false;
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
  c_rep->add_flag("--quick", quick, "A much smaller run (a smoke test of the pipeline)");
  add_synthetic_options(c_rep, rep.synthetic());

  // launch
  dist::LaunchOptions launch;
  std::vector<std::string> launch_command;
  auto* c_launch = app.add_subcommand(
      "launch",
      "Start N processes of a command with torchrun's variables (RANK, WORLD_SIZE, "
      "LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and supervise them");
  c_launch->add_option("--nproc", launch.nproc(), "Processes on this machine")
      ->capture_default_str();
  c_launch->add_option("--nnodes", launch.nnodes(), "Machines")->capture_default_str();
  c_launch->add_option("--node-rank", launch.node_rank(), "This machine's index")
      ->capture_default_str();
  c_launch->add_option("--master-addr", launch.master_addr())->capture_default_str();
  c_launch->add_option("--master-port", launch.master_port(), "0: a free port")
      ->capture_default_str();
  c_launch->add_option("command", launch_command, "The command after --")->required();

  std::vector<const char*> cargs;
  for (const auto& s : args) cargs.push_back(s.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; every real usage error is status 2.
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    if (c_synth->parsed()) {
      set_num_threads(0);
      auto s = pipeline::ensure_synthetic(synth.out, synth.opts);
      std::printf(
          "synthetic dataset in %s\n  pairs (MIMIC-CXR-JPG layout): %s\n  labelled: %s, "
          "%s\n  retrieval (8x200 format): %s\n",
          s.root.c_str(), s.mimic_root.c_str(), s.chexpert_train_csv.c_str(),
          s.chexpert_valid_csv.c_str(), s.retrieval_dir.c_str());
      return 0;
    }
    if (c_launch->parsed()) {
      // `convirt launch -- pretrain ...`: a convirt subcommand names this very program.
      static const std::set<std::string> kSubcommands{"synth", "pretrain", "eval", "tsne",
                                                      "reproduce"};
      if (kSubcommands.count(launch_command.front()) > 0)
        launch_command.insert(launch_command.begin(), fs::read_symlink("/proc/self/exe").string());
      return dist::launch(launch, launch_command);
    }
    if (c_pre->parsed()) return run_pretrain(pre);
    if (c_lin->parsed()) return run_eval_classification(ev, false);
    if (c_ft->parsed()) return run_eval_classification(ev, true);
    if (c_ret->parsed()) return run_eval_retrieval(ev);
    if (c_zeroshot.parsed()) return c_zeroshot.run();
    if (c_embed.parsed()) return c_embed.run();
    if (c_search.parsed()) return c_search.run();
    if (c_tsne->parsed()) return run_tsne(ts);
    if (c_rep->parsed()) {
      if (c_rep->count("--pretrain-seconds") > 0 && c_rep->count("--pretrain-steps") == 0) {
        rep.pretrain_steps(0);
      }
      if (quick) {
        rep.synthetic()
            .train_studies(300)
            .validate_studies(40)
            .test_studies(10)
            .chexpert_train(300)
            .chexpert_valid(100)
            .retrieval_candidates(20);
        rep.pretrain_seconds(0)
            .pretrain_steps(30)
            .eval_every(15)
            .linear_seeds(2)
            .finetune_seeds(1)
            .finetune_steps(20)
            .finetune_warmup_steps(10)
            .fractions({0.1, 1.0});
      }
      auto summary = pipeline::reproduce(rep);
      std::cout << "\n" << summary.tables;
      std::cout << "results: " << summary.results_json << "\ntables: " << summary.tables_md
                << "\nfigure: " << summary.tsne_svg << "\n";
      return 0;
    }
  } catch (const c10::Error& e) {
    std::cerr << "convirt: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "convirt: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
