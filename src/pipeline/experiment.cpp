#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/mimic_cxr.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/loader.h>
#include <convirt/data/subsets.h>
#include <convirt/eval/finetune.h>
#include <convirt/eval/linear_probe.h>
#include <convirt/eval/metrics.h>
#include <convirt/eval/plot.h>
#include <convirt/eval/retrieval.h>
#include <convirt/eval/tsne.h>
#include <convirt/image/preprocess.h>
#include <convirt/image/transforms.h>
#include <convirt/io/checkpoint.h>
#include <convirt/io/torchvision.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/pipeline/pretrain.h>
#include <convirt/pipeline/report.h>
#include <convirt/pipeline/zero_shot.h>
#include <convirt/text/vocab_builder.h>
#include <convirt/train/metrics_log.h>
#include <convirt/train/objective.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace convirt::pipeline {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSyntheticMarker = ".convirt_synthetic_complete";

// The labelled task of the synthetic set. The generator draws no consolidation, so its nearest
// finding, pneumonia, stands in for the fifth of the paper's CheXpert labels.
const std::vector<std::string>& synthetic_task_labels() {
  static const std::vector<std::string> labels = {"Atelectasis", "Cardiomegaly", "Edema",
                                                  "Pleural Effusion", "Pneumonia"};
  return labels;
}

std::string display_name(const std::string& method) {
  if (method == "random") return "Random init";
  if (method == "imagenet") return "ImageNet init";
  if (method == "binary") return "Contrastive-Binary";
  if (method == "convirt") return "ConVIRT";
  return method;
}

void log(bool verbose, const std::string& msg) {
  if (verbose) std::fprintf(stderr, "[reproduce] %s\n", msg.c_str());
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Category index of one-hot retrieval labels ([N, C] -> [N]).
torch::Tensor categories_of(const torch::Tensor& labels) {
  return labels.argmax(1);
}

// The report's inputs: the pretraining log of every method that was trained (not random init, nor
// the ImageNet row, which are written without training).
ReportInputs report_inputs(const fs::path& out, const ReproduceOptions& o,
                           const ReproduceSummary& summary) {
  ReportInputs in;
  in.run_dir = out.string();
  in.results = summary.results;
  in.tables = summary.tables;
  for (const auto& method : o.methods()) {
    const fs::path log = out / ("pretrain-" + method) / "metrics.jsonl";
    if (fs::exists(log)) in.pretraining_logs.emplace_back(method, log.string());
  }
  return in;
}

}  // namespace

torch::Tensor image_embeddings(models::ConVIRTModel& model, const torch::Tensor& images,
                               int64_t batch_size) {
  CONVIRT_CHECK_VALUE(batch_size > 0, "batch_size must be positive, got ", batch_size);
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += batch_size) {
    out.push_back(
        model->encode_image(images.slice(0, i, std::min(images.size(0), i + batch_size))));
  }
  return torch::cat(out);
}

data::synthetic::SyntheticSummary ensure_synthetic(
    const std::string& dir, const data::synthetic::SyntheticOptions& options) {
  const fs::path marker = fs::path(dir) / kSyntheticMarker;
  data::synthetic::SyntheticSummary s;
  if (fs::exists(marker)) {
    std::ifstream in(marker);
    std::map<std::string, std::string> kv;
    std::string line;
    while (std::getline(in, line)) {
      auto eq = line.find('=');
      if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
    }
    s.root = kv["root"];
    s.mimic_root = kv["mimic_root"];
    s.chexpert_root = kv["chexpert_root"];
    s.chexpert_train_csv = kv["chexpert_train_csv"];
    s.chexpert_valid_csv = kv["chexpert_valid_csv"];
    s.retrieval_dir = kv["retrieval_dir"];
    if (fs::exists(s.mimic_root) && fs::exists(s.chexpert_train_csv) &&
        fs::exists(s.retrieval_dir)) {
      return s;
    }
  }
  s = data::synthetic::generate(options, dir);
  // The marker is written last, so an interrupted generation is redone rather than half-used.
  std::ostringstream marker_text;
  marker_text << "root=" << s.root << "\nmimic_root=" << s.mimic_root
              << "\nchexpert_root=" << s.chexpert_root
              << "\nchexpert_train_csv=" << s.chexpert_train_csv
              << "\nchexpert_valid_csv=" << s.chexpert_valid_csv
              << "\nretrieval_dir=" << s.retrieval_dir << "\n";
  write_file_atomically(marker.string(), marker_text.str(), "synthetic data marker");
  return s;
}

data::ImageTransform pretrain_transform(int64_t size) {
  auto augment = image::paper_augmentation(image::PaperAugmentationOptions().size(size));
  return [augment](const at::Tensor& img, uint64_t seed) { return (*augment)(img, seed); };
}

data::ImageTransform eval_transform(int64_t size) {
  return [size](const at::Tensor& img, uint64_t) { return image::eval_preprocess(img, size); };
}

std::shared_ptr<data::PairedDataset> load_pairs(const std::string& mimic_root,
                                                const std::string& split,
                                                data::ImageTransform transform, int64_t channels) {
  return std::make_shared<data::MimicCxrDataset>(
      mimic_root,
      data::MimicCxrOptions().split(split).transform(std::move(transform)).channels(channels));
}

std::shared_ptr<text::WordPieceTokenizer> build_tokenizer(const data::PairedDataset& corpus,
                                                          int64_t vocab_size,
                                                          const std::string& vocab_path) {
  if (fs::exists(vocab_path)) {
    return std::make_shared<text::WordPieceTokenizer>(
        text::WordPieceTokenizer::from_vocab_file(vocab_path));
  }
  std::vector<std::string> texts;
  for (const auto& r : corpus.records())
    for (const auto& s : r.sentences) texts.push_back(s);
  auto vocab =
      text::build_wordpiece_vocab(texts, text::VocabBuilderOptions().vocab_size(vocab_size));
  if (fs::path(vocab_path).has_parent_path())
    fs::create_directories(fs::path(vocab_path).parent_path());
  text::save_vocab(vocab, vocab_path);
  return std::make_shared<text::WordPieceTokenizer>(std::move(vocab));
}

eval::LabeledSet load_labeled(const data::LabeledDataset& dataset, int64_t threads,
                              bool with_groups) {
  auto shared = std::shared_ptr<const data::Dataset>(&dataset, [](const data::Dataset*) {});
  data::Loader loader(shared, data::LoaderOptions()
                                  .batch_size(128)
                                  .shuffle(false)
                                  .drop_last(false)
                                  .workers(threads > 0 ? threads : 2)
                                  .max_bad_fraction(0.05));
  std::vector<torch::Tensor> images, labels, masks;
  std::vector<std::string> patients;
  while (auto batch = loader.next()) {
    if (batch->size() == 0) continue;
    images.push_back(batch->images);
    labels.push_back(batch->labels);
    masks.push_back(batch->mask);
    patients.insert(patients.end(), batch->patients.begin(), batch->patients.end());
  }
  CONVIRT_CHECK(!images.empty(), "the labelled dataset yielded no readable image");
  eval::LabeledSet set;
  set.inputs = torch::cat(images);
  set.targets = torch::cat(labels);
  set.mask = torch::cat(masks);
  if (with_groups) {
    // Patient-level evaluation (MURA): the protocols then report the AUC of per-patient means.
    std::map<std::string, int64_t> ids;
    std::vector<int64_t> groups;
    for (const auto& p : patients) groups.push_back(ids.emplace(p, ids.size()).first->second);
    set.groups = torch::tensor(groups, torch::kLong);
  }
  if (loader.bad_samples().count() > 0)
    std::fprintf(stderr, "%s\n", loader.bad_samples().summary().c_str());
  return set;
}

eval::Encoder image_encoder(models::ConVIRTModel model) {
  auto encoder = model->image_encoder;
  return eval::make_encoder(
      encoder.ptr(), [encoder](const torch::Tensor& x) mutable { return encoder->forward(x); },
      encoder->output_dim());
}

ReproduceSummary reproduce(const ReproduceOptions& o) {
  const auto t_start = std::chrono::steady_clock::now();
  const bool v = o.verbose();
  set_num_threads(static_cast<int>(o.threads()));
  const fs::path out(o.out_dir());
  fs::create_directories(out);

  // 1. Data.
  const std::string data_dir = o.data_dir().empty() ? (out / "data").string() : o.data_dir();
  log(v, "data: " + data_dir);
  auto synth = ensure_synthetic(data_dir, o.synthetic());
  models::ModelConfig base_config = models::preset(o.preset());
  const int64_t channels = base_config.image_channels();
  // The vocabulary is built once, here, and every method's run reads it: one vocabulary for the
  // whole comparison.
  auto train_pairs =
      load_pairs(synth.mimic_root, "train", eval_transform(o.image_size()), channels);
  const std::string vocab_path = (out / "vocab.txt").string();
  auto tokenizer = build_tokenizer(*train_pairs, o.vocab_size(), vocab_path);
  log(v, "pairs: " + std::to_string(train_pairs->size()) + " train; vocabulary " +
             std::to_string(tokenizer->vocab_size()) + " tokens");
  // The retrieval set's tables are read now (its images only in step 4), so that a set too small
  // for Table 2's P@50 fails before any training rather than after it.
  data::RetrievalSet retrieval(synth.retrieval_dir, data::RetrievalOptions()
                                                        .image_root(synth.chexpert_root)
                                                        .transform(eval_transform(o.image_size()))
                                                        .channels(channels));
  {
    const auto n_candidates = static_cast<int64_t>(retrieval.candidates()->size());
    CONVIRT_CHECK_VALUE(n_candidates >= 50,
                        "retrieval_candidates: Table 2's P@50 needs at least 50 ",
                        "retrieval candidates, but '", synth.retrieval_dir, "' has ", n_candidates,
                        " (retrieval_candidates per category times the 8 categories)");
  }
  // Every method's run: the same pipeline as `convirt pretrain` (pipeline/pretrain.h).
  auto job_for = [&](const std::string& method) {
    PretrainJob job((out / ("pretrain-" + method)).string());
    job.data(synth.mimic_root)
        .model(o.preset())
        .image_size(o.image_size())
        .vocab(vocab_path)
        .threads(o.threads());
    job.trainer()
        .objective(
            train::objective_name(method == "random" || method == "imagenet" ? "convirt" : method))
        .batch_size(o.batch_size())
        .learning_rate(o.learning_rate())
        .eval_every(o.eval_every())
        .max_evals(0)
        .max_steps(o.pretrain_steps())
        .max_seconds(o.pretrain_steps() > 0 ? 0.0 : o.pretrain_seconds())
        .workers(o.workers())
        .seed(o.seed())
        .verbose(v);
    return job;
  };
  const models::ModelConfig config = job_model_config(job_for("random"), tokenizer->vocab_size());

  // 2. One model per method: random init is the untrained model; the others are pretrained.
  std::map<std::string, std::string> checkpoints;
  for (const auto& method : o.methods()) {
    const fs::path dir = out / ("pretrain-" + method);
    const std::string ckpt = (dir / "model.pt").string();
    if (method == "random" || method == "imagenet") {
      torch::manual_seed(o.seed());
      auto model = models::make_convirt(config);
      if (method == "imagenet") {
        CONVIRT_CHECK_VALUE(!o.imagenet_weights().empty(),
                            "method 'imagenet' needs imagenet_weights (a torchvision ResNet "
                            "state_dict saved with torch.save)");
        auto resnet = model->image_encoder->inner_as<models::ResNetImpl>();
        CONVIRT_CHECK_VALUE(resnet != nullptr, "method 'imagenet' needs a ResNet image encoder");
        io::load_torchvision_resnet(*resnet, o.imagenet_weights());
      }
      // An untrained text encoder still reads ids of this vocabulary (zero-shot, retrieval).
      model->set_vocabulary(train::vocabulary_record(*tokenizer));
      fs::create_directories(dir);
      io::save_convirt(*model, ckpt);
    } else {
      log(v, "pretraining " + display_name(method) + " into " + dir.string());
      const auto run = pretrain(job_for(method));
      const auto& r = run.result;
      log(v, display_name(method) + ": " + std::to_string(r.steps) +
                 " steps, best validation loss " + std::to_string(r.best_val_loss) + " at step " +
                 std::to_string(r.best_step));
    }
    checkpoints[method] = ckpt;
  }

  // 3. Classification protocols on the CheXpert-style labelled set (valid.csv is the test set,
  //    as the paper uses CheXpert's expert-labelled validation set; train.csv is split 85/15).
  const std::string task = "CheXpert";
  auto label_opts = data::ChexpertOptions()
                        .labels(synthetic_task_labels())
                        .transform(eval_transform(o.image_size()))
                        .channels(channels);
  data::ChexpertDataset chex_train(synth.chexpert_train_csv, label_opts);
  data::ChexpertDataset chex_test(synth.chexpert_valid_csv, label_opts);
  eval::LabeledSet all_train = load_labeled(chex_train, o.workers());
  eval::LabeledSet test = load_labeled(chex_test, o.workers());
  auto split = data::stratified_split(all_train.targets, 0.85, o.seed());
  eval::LabeledSet train = all_train.select(torch::tensor(split.first, torch::kLong));
  eval::LabeledSet val = all_train.select(torch::tensor(split.second, torch::kLong));
  log(v, "labelled set: " + std::to_string(train.size()) + " train, " + std::to_string(val.size()) +
             " validation, " + std::to_string(test.size()) + " test");

  std::vector<uint64_t> linear_seeds, finetune_seeds;
  for (int64_t s = 0; s < o.linear_seeds(); ++s) linear_seeds.push_back(o.seed() + s);
  for (int64_t s = 0; s < o.finetune_seeds(); ++s) finetune_seeds.push_back(o.seed() + s);

  eval::Results results;
  // One thread per linear probe: its batches are tiny and threads only add synchronisation.
  auto classifier = eval::ClassifierOptions(eval::ClassificationTask::kMultiLabel)
                        .learning_rate(o.classifier_learning_rate());
  for (const auto& method : o.methods()) {
    const std::string name = display_name(method);
    auto model = io::load_convirt(checkpoints[method]);
    eval::Encoder encoder = image_encoder(model);
    encoder.set_training(false);
    eval::LabeledSet ftrain = train, fval = val, ftest = test;
    ftrain.inputs = eval::extract_features(encoder, train.inputs);
    fval.inputs = eval::extract_features(encoder, val.inputs);
    ftest.inputs = eval::extract_features(encoder, test.inputs);
    auto cells = eval::label_fraction_sweep(
        ftrain, o.fractions(), linear_seeds, [&](const eval::LabeledSet& subset, uint64_t seed) {
          auto r = eval::train_linear_probe(
              subset, fval, ftest, eval::ClassifierOptions(classifier).seed(seed).num_threads(1));
          return r.test_metric;
        });
    eval::add_sweep(results, "linear", name, task, cells);
    log(v, "linear protocol done for " + name);

    if (o.finetune()) {
      auto ft_cells = eval::label_fraction_sweep(
          train, o.fractions(), finetune_seeds, [&](const eval::LabeledSet& subset, uint64_t seed) {
            auto fresh = io::load_convirt(checkpoints[method]);
            auto opts =
                eval::FinetuneOptions(
                    eval::ClassifierOptions(classifier).seed(seed).max_steps(o.finetune_steps()))
                    .warmup_steps(o.finetune_warmup_steps());
            return eval::finetune(image_encoder(fresh), subset, val, test, opts).test_metric;
          });
      eval::add_sweep(results, "finetune", name, task, ft_cells);
      log(v, "fine-tuning protocol done for " + name);
    }
  }

  // 4. Zero-shot retrieval (Table 2) and the t-SNE figure (Figure 3).
  eval::LabeledSet candidates = load_labeled(*retrieval.candidates(), o.workers());
  eval::LabeledSet image_queries = load_labeled(*retrieval.image_queries(), o.workers());
  const torch::Tensor cand_cat = categories_of(candidates.targets);
  const torch::Tensor query_cat = categories_of(image_queries.targets);
  std::vector<std::string> text_queries;
  std::vector<int64_t> text_cat;
  for (const auto& q : retrieval.text_queries()) {
    text_queries.push_back(q.text);
    text_cat.push_back(q.category);
  }
  std::vector<eval::ScatterPanel> panels;
  // Figure 3 shows five categories.
  const torch::Tensor shown = cand_cat.lt(5);
  for (const auto& method : o.methods()) {
    const std::string name = display_name(method);
    auto model = io::load_convirt(checkpoints[method]);
    torch::Tensor cand_emb = image_embeddings(model, candidates.inputs);
    torch::Tensor query_emb = image_embeddings(model, image_queries.inputs);
    auto ii = eval::retrieval_precision(query_emb, query_cat, cand_emb, cand_cat);
    for (const auto& [k, p] : ii.precision) results.set_retrieval(name, "image_image", k, 100 * p);
    if (method == "convirt" || method == "binary") {
      torch::NoGradGuard no_grad;
      auto enc = tokenizer->encode_batch(text_queries, config.max_length());
      torch::Tensor text_emb = model->encode_text(enc.input_ids, enc.attention_mask);
      auto ti = eval::retrieval_precision(text_emb, torch::tensor(text_cat, torch::kLong), cand_emb,
                                          cand_cat);
      for (const auto& [k, p] : ti.precision) results.set_retrieval(name, "text_image", k, 100 * p);
    }
    {
      // Zero-shot classification of the labelled test set from the default prompts: no label is
      // used. Untrained text encoders (random, ImageNet init) give the chance row. It reuses the
      // loaded model and draws no random numbers, so every other number of the run is unchanged.
      auto scores = zero_shot_scores(model, *tokenizer, image_embeddings(model, test.inputs),
                                     synthetic_task_labels(), default_prompts(),
                                     eval::ClassificationTask::kMultiLabel);
      results.set_zero_shot(name, task,
                            100 * eval::multilabel_roc_auc(scores, test.targets, test.mask).mean);
    }
    if (method == "random" || method == "imagenet" || method == "convirt") {
      auto t = eval::tsne(cand_emb.index({shown}), eval::TSNEOptions().seed(o.seed()));
      panels.push_back({name, t.embedding, cand_cat.index({shown})});
    }
  }
  log(v, "retrieval done");

  // 5. Outputs.
  ReproduceSummary summary;
  summary.results = results;
  summary.results_json = (out / "results.json").string();
  results.save(summary.results_json);
  std::vector<std::string> names(retrieval.categories().begin(),
                                 retrieval.categories().begin() + 5);
  summary.tsne_svg = (out / "figure3_tsne.svg").string();
  if (!panels.empty()) {
    eval::write_scatter_svg(summary.tsne_svg, panels,
                            eval::ScatterPlotOptions()
                                .title("t-SNE of candidate image embeddings (Figure 3 style)")
                                .category_names(names));
  }
  std::ostringstream tables;
  tables << "## Table 1(a): linear classification (AUC %, mean +- std over " << o.linear_seeds()
         << " seeds)\n\n"
         << eval::format_classification_table(results, "linear") << "\n";
  if (o.finetune()) {
    tables << "## Table 1(b): fine-tuning (AUC %, mean +- std over " << o.finetune_seeds()
           << " seed(s))\n\n"
           << eval::format_classification_table(results, "finetune") << "\n";
  }
  tables << "## Zero-shot classification from text prompts (mean AUC %, no labels used)\n\n"
         << eval::format_zero_shot_table(results) << "\n";
  tables << "## Table 2: zero-shot retrieval, Precision@k (%), chance "
         << 100.0 / static_cast<double>(retrieval.categories().size()) << "\n\n"
         << eval::format_retrieval_table(results) << "\n";
  summary.tables = tables.str();
  summary.tables_md = (out / "tables.md").string();
  write_file_atomically(summary.tables_md, summary.tables, "tables");
  summary.report_md = write_report(report_inputs(out, o, summary)).report_md;
  log(v, "finished in " + train::format_duration(seconds_since(t_start)));
  return summary;
}

}  // namespace convirt::pipeline
