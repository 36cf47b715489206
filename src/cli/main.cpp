// The `convirt` program: synth, pretrain, eval (linear | finetune | retrieval), tsne, reproduce.
// Each subcommand parses its options and calls the library (convirt::pipeline and the areas under
// it); no experiment logic lives here.

#include "config_file.h"

#include <convirt/core/threads.h>
#include <convirt/core/version.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/subsets.h>
#include <convirt/dist/launch.h>
#include <convirt/eval/finetune.h>
#include <convirt/eval/linear_probe.h>
#include <convirt/eval/plot.h>
#include <convirt/eval/retrieval.h>
#include <convirt/eval/tables.h>
#include <convirt/eval/tsne.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/train/pretrainer.h>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace fs = std::filesystem;
using namespace convirt;

namespace {

train::Pretrainer* g_running = nullptr;

// Ctrl-C (or SIGTERM) asks the trainer to stop after the current step; it then writes its
// checkpoint and returns, so `convirt pretrain` can be resumed later with the same command.
void on_signal(int) {
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

struct PretrainArgs {
  std::string data, out = "runs/pretrain", preset = "small", objective = "convirt", vocab;
  int64_t vocab_size = 2048, image_size = 64, batch_size = 32, max_steps = 0, max_evals = 0,
          eval_every = 500, threads = 0, workers = 2, log_every = 20;
  double lr = 1e-4, weight_decay = 1e-6, max_seconds = 0, temperature = 0.1, weight = 0.75,
         grad_clip = 0;
  uint64_t seed = 0;
  bool no_resume = false;
};

int run_pretrain(const PretrainArgs& a) {
  set_num_threads(static_cast<int>(a.threads));
  auto config = models::preset(a.preset);
  const int64_t channels = config.resnet().in_channels();
  auto train_set =
      pipeline::load_pairs(a.data, "train", pipeline::pretrain_transform(a.image_size), channels);
  auto val_set =
      pipeline::load_pairs(a.data, "validate", pipeline::eval_transform(a.image_size), channels);
  const std::string vocab = a.vocab.empty() ? (fs::path(a.out) / "vocab.txt").string() : a.vocab;
  auto tokenizer = pipeline::build_tokenizer(*train_set, a.vocab_size, vocab);
  if (a.preset == "small") config = models::small_preset(tokenizer->vocab_size());
  config.bert().config().vocab_size(tokenizer->vocab_size());
  torch::manual_seed(a.seed);
  auto model = models::make_convirt(config);
  train::PretrainOptions opts(a.out);
  opts.objective(train::parse_objective(a.objective))
      .learning_rate(a.lr)
      .weight_decay(a.weight_decay)
      .batch_size(a.batch_size)
      .temperature(a.temperature)
      .image_to_text_weight(a.weight)
      .eval_every(a.eval_every)
      .max_evals(a.max_evals)
      .max_steps(a.max_steps)
      .max_seconds(a.max_seconds)
      .grad_clip_norm(a.grad_clip)
      .max_length(config.max_length())
      .log_every(a.log_every)
      .seed(a.seed)
      .workers(a.workers)
      .resume(!a.no_resume)
      .device(torch::cuda::is_available() ? torch::Device(torch::kCUDA)
                                          : torch::Device(torch::kCPU));
  train::Pretrainer trainer(model, tokenizer, train_set, val_set, opts);
  g_running = &trainer;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  auto r = trainer.run();
  g_running = nullptr;
  const std::string final_model = (fs::path(a.out) / "model.pt").string();
  io::save_convirt(*trainer.model(), final_model);
  std::printf(
      "pretraining stopped (%s) after %lld steps; best validation loss %.4f at step %lld\n"
      "model (best validation): %s\nmetrics: %s\n",
      r.stop_reason.c_str(), static_cast<long long>(r.steps), r.best_val_loss,
      static_cast<long long>(r.best_step), final_model.c_str(),
      (fs::path(a.out) / "metrics.jsonl").string().c_str());
  return 0;
}

struct EvalArgs {
  std::string model, vocab, chexpert_train, chexpert_test, retrieval_dir, image_root, out,
      method_name;
  std::vector<double> fractions = {0.01, 0.1, 1.0};
  int64_t seeds = 5, image_size = 64, threads = 0, workers = 2, finetune_steps = 0;
  std::string uncertain = "zeros";
  std::vector<std::string> labels = data::chexpert_paper_labels();
};

// Linear or fine-tuning protocol of a checkpoint on a CheXpert-format labelled set.
int run_eval_classification(const EvalArgs& a, bool finetune) {
  set_num_threads(static_cast<int>(a.threads));
  auto model = io::load_convirt(a.model);
  const int64_t channels = model->config().resnet().in_channels();
  auto opts = data::ChexpertOptions()
                  .labels(a.labels)
                  .uncertain(data::parse_uncertain_policy(a.uncertain))
                  .transform(pipeline::eval_transform(a.image_size))
                  .channels(channels);
  data::ChexpertDataset train_ds(a.chexpert_train, opts);
  data::ChexpertDataset test_ds(a.chexpert_test, opts);
  auto all = pipeline::load_labeled(train_ds, a.workers);
  auto test = pipeline::load_labeled(test_ds, a.workers);
  auto split = data::stratified_split(all.targets, 0.85, 0);
  auto train = all.select(torch::tensor(split.first, torch::kLong));
  auto val = all.select(torch::tensor(split.second, torch::kLong));
  std::vector<uint64_t> seeds;
  for (int64_t s = 0; s < a.seeds; ++s) seeds.push_back(static_cast<uint64_t>(s));
  auto classifier = eval::ClassifierOptions(eval::ClassificationTask::kMultiLabel);
  eval::Results results;
  const std::string protocol = finetune ? "finetune" : "linear";
  const std::string name =
      a.method_name.empty() ? fs::path(a.model).stem().string() : a.method_name;
  std::vector<eval::SweepCell> cells;
  if (finetune) {
    cells = eval::label_fraction_sweep(
        train, a.fractions, seeds, [&](const eval::LabeledSet& subset, uint64_t seed) {
          auto fresh = io::load_convirt(a.model);
          auto o = eval::FinetuneOptions(
              eval::ClassifierOptions(classifier).seed(seed).max_steps(a.finetune_steps));
          return eval::finetune(pipeline::image_encoder(fresh), subset, val, test, o).test_metric;
        });
  } else {
    auto encoder = pipeline::image_encoder(model);
    encoder.set_training(false);
    auto ftrain = train, fval = val, ftest = test;
    ftrain.inputs = eval::extract_features(encoder, train.inputs);
    fval.inputs = eval::extract_features(encoder, val.inputs);
    ftest.inputs = eval::extract_features(encoder, test.inputs);
    cells = eval::label_fraction_sweep(
        ftrain, a.fractions, seeds, [&](const eval::LabeledSet& subset, uint64_t seed) {
          return eval::train_linear_probe(subset, fval, ftest,
                                          eval::ClassifierOptions(classifier).seed(seed))
              .test_metric;
        });
  }
  eval::add_sweep(results, protocol, name, "CheXpert", cells);
  std::cout << eval::format_classification_table(results, protocol);
  if (!a.out.empty()) {
    results.save(a.out);
    std::cout << "results: " << a.out << "\n";
  }
  return 0;
}

int run_eval_retrieval(const EvalArgs& a) {
  set_num_threads(static_cast<int>(a.threads));
  auto model = io::load_convirt(a.model);
  model->eval();
  torch::NoGradGuard no_grad;
  const int64_t channels = model->config().resnet().in_channels();
  data::RetrievalSet set(a.retrieval_dir, data::RetrievalOptions()
                                              .image_root(a.image_root)
                                              .transform(pipeline::eval_transform(a.image_size))
                                              .channels(channels));
  auto candidates = pipeline::load_labeled(*set.candidates(), a.workers);
  auto queries = pipeline::load_labeled(*set.image_queries(), a.workers);
  auto cand_emb = model->encode_image(candidates.inputs);
  auto query_emb = model->encode_image(queries.inputs);
  eval::Results results;
  const std::string name =
      a.method_name.empty() ? fs::path(a.model).stem().string() : a.method_name;
  auto ii = eval::retrieval_precision(query_emb, queries.targets.argmax(1), cand_emb,
                                      candidates.targets.argmax(1));
  for (const auto& [k, p] : ii.precision) results.set_retrieval(name, "image_image", k, 100 * p);
  if (!a.vocab.empty()) {
    auto tokenizer = text::WordPieceTokenizer::from_vocab_file(a.vocab);
    std::vector<std::string> texts;
    std::vector<int64_t> cats;
    for (const auto& q : set.text_queries()) {
      texts.push_back(q.text);
      cats.push_back(q.category);
    }
    auto enc = tokenizer.encode_batch(texts, model->config().max_length());
    auto text_emb = model->encode_text(enc.input_ids, enc.attention_mask);
    auto ti = eval::retrieval_precision(text_emb, torch::tensor(cats, torch::kLong), cand_emb,
                                        candidates.targets.argmax(1));
    for (const auto& [k, p] : ti.precision) results.set_retrieval(name, "text_image", k, 100 * p);
  }
  std::cout << eval::format_retrieval_table(results);
  if (!a.out.empty()) results.save(a.out);
  return 0;
}

struct TsneArgs {
  std::vector<std::string> models;
  std::string retrieval_dir, image_root, out = "tsne.svg";
  int64_t image_size = 64, categories = 5, threads = 0;
  double perplexity = 30;
  uint64_t seed = 0;
};

int run_tsne(const TsneArgs& a) {
  set_num_threads(static_cast<int>(a.threads));
  std::vector<eval::ScatterPanel> panels;
  std::vector<std::string> names;
  for (const auto& path : a.models) {
    auto model = io::load_convirt(path);
    model->eval();
    torch::NoGradGuard no_grad;
    data::RetrievalSet set(a.retrieval_dir, data::RetrievalOptions()
                                                .image_root(a.image_root)
                                                .transform(pipeline::eval_transform(a.image_size))
                                                .channels(model->config().resnet().in_channels()));
    auto candidates = pipeline::load_labeled(*set.candidates(), 2);
    auto cats = candidates.targets.argmax(1);
    auto shown = cats.lt(a.categories);
    auto emb = model->encode_image(candidates.inputs.index({shown}));
    auto t = eval::tsne(emb, eval::TSNEOptions().perplexity(a.perplexity).seed(a.seed));
    panels.push_back(
        {fs::path(path).parent_path().filename().string(), t.embedding, cats.index({shown})});
    if (names.empty())
      names.assign(set.categories().begin(), set.categories().begin() + a.categories);
  }
  eval::write_scatter_svg(a.out, panels, eval::ScatterPlotOptions().category_names(names));
  std::cout << "t-SNE figure: " << a.out << "\n";
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
      "Every subcommand also takes --config FILE.json: a JSON object of its long option names; "
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
  c_pre->add_option("--data", pre.data, "MIMIC-CXR-JPG-layout root (images, reports, CSVs)")
      ->required();
  c_pre->add_option("--out", pre.out, "Run folder (checkpoints, metrics.jsonl, model.pt)")
      ->capture_default_str();
  c_pre->add_option("--preset", pre.preset, "Model preset: small | paper")->capture_default_str();
  c_pre->add_option("--objective", pre.objective, "convirt | binary")->capture_default_str();
  c_pre->add_option("--vocab", pre.vocab, "vocab.txt to use (default: built from the corpus)");
  c_pre->add_option("--vocab-size", pre.vocab_size, "Size of a vocabulary built from the corpus")
      ->capture_default_str();
  c_pre->add_option("--image-size", pre.image_size, "Model input side in pixels")
      ->capture_default_str();
  c_pre->add_option("--batch-size", pre.batch_size)->capture_default_str();
  c_pre->add_option("--lr", pre.lr, "Adam learning rate")->capture_default_str();
  c_pre->add_option("--weight-decay", pre.weight_decay)->capture_default_str();
  c_pre->add_option("--temperature", pre.temperature, "tau")->capture_default_str();
  c_pre->add_option("--image-to-text-weight", pre.weight, "lambda")->capture_default_str();
  c_pre->add_option("--eval-every", pre.eval_every, "Validation period in steps")
      ->capture_default_str();
  c_pre->add_option("--max-evals", pre.max_evals, "Stop after this many validations (0: none)")
      ->capture_default_str();
  c_pre->add_option("--max-steps", pre.max_steps, "Stop after this many steps (0: none)")
      ->capture_default_str();
  c_pre->add_option("--max-seconds", pre.max_seconds, "Stop after this much time (0: none)")
      ->capture_default_str();
  c_pre->add_option("--grad-clip", pre.grad_clip, "Gradient norm clip (0: off)")
      ->capture_default_str();
  c_pre->add_option("--log-every", pre.log_every)->capture_default_str();
  c_pre->add_option("--threads", pre.threads, "Intra-op threads (0: all cores)")
      ->capture_default_str();
  c_pre->add_option("--workers", pre.workers, "Data loading threads")->capture_default_str();
  c_pre->add_option("--seed", pre.seed)->capture_default_str();
  c_pre->add_flag("--no-resume", pre.no_resume, "Start over even if out/last.ckpt exists");

  // eval linear | finetune | retrieval
  EvalArgs ev;
  auto* c_eval = app.add_subcommand("eval", "Evaluate a pretrained model");
  c_eval->require_subcommand(1);
  auto add_common = [&](CLI::App* c) {
    c->add_option("--model", ev.model, "convirt model checkpoint (model.pt)")->required();
    c->add_option("--image-size", ev.image_size)->capture_default_str();
    c->add_option("--threads", ev.threads)->capture_default_str();
    c->add_option("--workers", ev.workers)->capture_default_str();
    c->add_option("--name", ev.method_name, "Method name in the table");
    c->add_option("--out", ev.out, "Write results.json here");
  };
  auto add_classification = [&](CLI::App* c) {
    add_common(c);
    c->add_option("--train-csv", ev.chexpert_train, "CheXpert-format train.csv")->required();
    c->add_option("--test-csv", ev.chexpert_test, "CheXpert-format test csv (e.g. valid.csv)")
        ->required();
    c->add_option("--labels", ev.labels, "Label columns")->capture_default_str();
    c->add_option("--uncertain", ev.uncertain, "Uncertain labels: zeros | ones | ignore")
        ->capture_default_str();
    c->add_option("--fractions", ev.fractions, "Label fractions")->capture_default_str();
    c->add_option("--seeds", ev.seeds, "Runs per fraction")->capture_default_str();
  };
  auto* c_lin = c_eval->add_subcommand("linear", "Linear protocol (frozen encoder)");
  add_classification(c_lin);
  auto* c_ft = c_eval->add_subcommand("finetune", "Fine-tuning protocol");
  add_classification(c_ft);
  c_ft->add_option("--finetune-steps", ev.finetune_steps, "Step budget (0: paper epochs)")
      ->capture_default_str();
  auto* c_ret = c_eval->add_subcommand("retrieval", "Zero-shot retrieval on the 8x200 format");
  add_common(c_ret);
  c_ret->add_option("--retrieval-dir", ev.retrieval_dir, "Folder of the 8x200 CSVs")->required();
  c_ret->add_option("--vocab", ev.vocab, "vocab.txt of the model (enables text->image)");
  c_ret->add_option("--image-root", ev.image_root,
                    "Folder holding CheXpert-v1.0-small (default: the retrieval folder's parent)");

  // tsne
  TsneArgs ts;
  auto* c_tsne = app.add_subcommand("tsne", "t-SNE of candidate image embeddings (Figure 3)");
  c_tsne->add_option("--model", ts.models, "One or more model checkpoints (one panel each)")
      ->required();
  c_tsne->add_option("--retrieval-dir", ts.retrieval_dir)->required();
  c_tsne->add_option("--image-root", ts.image_root,
                     "Folder holding CheXpert-v1.0-small (default: the retrieval folder's parent)");
  c_tsne->add_option("--out", ts.out, "SVG file")->capture_default_str();
  c_tsne->add_option("--image-size", ts.image_size)->capture_default_str();
  c_tsne->add_option("--categories", ts.categories, "First k categories shown")
      ->capture_default_str();
  c_tsne->add_option("--perplexity", ts.perplexity)->capture_default_str();
  c_tsne->add_option("--seed", ts.seed)->capture_default_str();

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
    return app.exit(e);
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
    if (c_launch->parsed()) return dist::launch(launch, launch_command);
    if (c_pre->parsed()) return run_pretrain(pre);
    if (c_lin->parsed()) return run_eval_classification(ev, false);
    if (c_ft->parsed()) return run_eval_classification(ev, true);
    if (c_ret->parsed()) return run_eval_retrieval(ev);
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
