#include "pretrain.h"

#include <convirt/pipeline/pretrain.h>
#include <convirt/train/metrics_log.h>
#include <convirt/train/pretrainer.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

namespace fs = std::filesystem;

namespace convirt::cli {
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

// `convirt pretrain`: the flags are bound to a pipeline::PretrainJob's fields, so their defaults
// are the library's. Two enums travel as their names.
struct PretrainArgs {
  pipeline::PretrainJob job;
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

}  // namespace

Subcommand add_pretrain(CLI::App& app) {
  auto args = std::make_shared<PretrainArgs>();
  auto& pre = *args;
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
  c_pre
      ->add_option("--objective", tr.objective(),
                   "convirt | binary (or contrastive-binary) | an objective registered by the "
                   "program (train::register_objective)")
      ->capture_default_str();
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
  c_pre
      ->add_option("--optimizer", tr.optimizer(),
                   "adam (the paper's) | adamw (decoupled weight decay) | sgd (momentum 0.9)")
      ->capture_default_str();
  c_pre->add_option("--lr", tr.learning_rate(), "Learning rate")->capture_default_str();
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
  return {c_pre, [args] { return run_pretrain(*args); }};
}

}  // namespace convirt::cli
