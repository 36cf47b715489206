#pragma once
// What the example programs share: `--key value` arguments, and the default setting every example
// runs in when no real data is given: a small synthetic dataset and two small models on it, an
// untrained one ("Random init") and one pretrained with ConVIRT for a few hundred steps. Both are
// written once into the work folder and reused by later runs.

#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/eval/tables.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/evaluate.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/train/pretrainer.h>

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace convirt_example {

/// `--key value` pairs; `--flag` alone reads as "true".
class Args {
 public:
  Args(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      CONVIRT_CHECK_VALUE(a.rfind("--", 0) == 0 && a.size() > 2, "expected --option, got '", a,
                          "'");
      const bool has_value = i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0;
      values_[a.substr(2)] = has_value ? argv[++i] : "true";
    }
  }
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  std::string str(const std::string& key, const std::string& fallback = "") const {
    auto it = values_.find(key);
    return it == values_.end() ? fallback : it->second;
  }
  int64_t integer(const std::string& key, int64_t fallback) const {
    return has(key) ? std::stoll(str(key)) : fallback;
  }
  double number(const std::string& key, double fallback) const {
    return has(key) ? std::stod(str(key)) : fallback;
  }
  /// A comma-separated list of numbers ("0.01,0.1,1").
  std::vector<double> numbers(const std::string& key, std::vector<double> fallback) const {
    if (!has(key)) return fallback;
    std::vector<double> out;
    for (const auto& item : strings(key)) out.push_back(std::stod(item));
    return out;
  }
  /// A comma-separated list ("a.pt,b.pt").
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    std::stringstream ss(str(key));
    for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
    return out;
  }

 private:
  std::map<std::string, std::string> values_;
};

/// The synthetic setting: data, vocabulary and the two models' checkpoints.
struct SyntheticSetting {
  convirt::data::synthetic::SyntheticSummary data;
  std::string vocab;
  std::string random_model;
  std::string convirt_model;
};

/// Generates (or reuses) the synthetic dataset under `work/data` and the two models under
/// `work/random` and `work/convirt`. Sizes come from `args`: --studies (paired training studies,
/// default 600), --labelled (labelled training images, default 400), --candidates (retrieval
/// candidates per category, default 20), --pretrain-steps (default 300), --seed; --mimic-root DIR
/// pretrains ConVIRT on a real MIMIC-CXR-JPG root instead of the synthetic pairs.
inline SyntheticSetting synthetic_setting(const std::string& work, const Args& args) {
  namespace fs = std::filesystem;
  const int64_t studies = args.integer("studies", 600);
  const int64_t labelled = args.integer("labelled", 400);
  const uint64_t seed = static_cast<uint64_t>(args.integer("seed", 0));
  SyntheticSetting s;
  s.data = convirt::pipeline::ensure_synthetic(
      (fs::path(work) / "data").string(), convirt::data::synthetic::SyntheticOptions()
                                              .train_studies(studies)
                                              .validate_studies(std::max<int64_t>(studies / 10, 40))
                                              .test_studies(8)
                                              .chexpert_train(labelled)
                                              .chexpert_valid(std::max<int64_t>(labelled / 3, 30))
                                              .retrieval_candidates(args.integer("candidates", 20))
                                              .image_size(64)
                                              .seed(seed));
  const int64_t channels = convirt::models::small_preset().image_channels();
  // --mimic-root pretrains on real MIMIC-CXR-JPG pairs instead (the small model, 64 px).
  const std::string pairs = args.str("mimic-root", s.data.mimic_root);
  auto train = convirt::pipeline::load_pairs(pairs, "train",
                                             convirt::pipeline::pretrain_transform(64), channels);
  auto val = convirt::pipeline::load_pairs(pairs, "validate", convirt::pipeline::eval_transform(64),
                                           channels);
  s.vocab = (fs::path(work) / "vocab.txt").string();
  auto tokenizer = convirt::pipeline::build_tokenizer(*train, 1024, s.vocab);
  auto config = convirt::models::small_preset(tokenizer->vocab_size());

  s.random_model = (fs::path(work) / "random" / "model.pt").string();
  if (!fs::exists(s.random_model)) {
    torch::manual_seed(seed);
    auto model = convirt::models::make_convirt(config);
    fs::create_directories(fs::path(s.random_model).parent_path());
    convirt::io::save_convirt(*model, s.random_model);
  }
  s.convirt_model = (fs::path(work) / "convirt" / "model.pt").string();
  if (!fs::exists(s.convirt_model)) {
    torch::manual_seed(seed);
    auto model = convirt::models::make_convirt(config);
    const int64_t steps = args.integer("pretrain-steps", 300);
    // The small preset trains from scratch, where 5e-4 converges faster than the paper's 1e-4
    // (which starts from ImageNet and ClinicalBERT weights).
    convirt::train::PretrainOptions opts((fs::path(work) / "convirt").string());
    opts.learning_rate(5e-4)
        .max_steps(steps)
        .eval_every(std::max<int64_t>(steps / 3, 1))
        .max_evals(0)
        .max_length(config.max_length())
        .log_every(std::max<int64_t>(steps / 10, 1))
        .seed(seed);
    convirt::train::Pretrainer trainer(model, tokenizer, train, val, opts);
    trainer.run();
    convirt::io::save_convirt(*trainer.model(), s.convirt_model);
  }
  return s;
}

/// The models to compare: --models a.pt,b.pt (with --names A,B), or the synthetic setting's Random
/// init and ConVIRT. Returns (name, checkpoint) pairs.
inline std::vector<std::pair<std::string, std::string>> models_to_compare(
    const Args& args, const SyntheticSetting* synthetic) {
  std::vector<std::pair<std::string, std::string>> out;
  if (args.has("models")) {
    const auto paths = args.strings("models");
    const auto names = args.strings("names");
    for (size_t i = 0; i < paths.size(); ++i) {
      out.emplace_back(i < names.size() ? names[i] : convirt::pipeline::method_name_for(paths[i]),
                       paths[i]);
    }
  } else {
    out.emplace_back("Random init", synthetic->random_model);
    out.emplace_back("ConVIRT", synthetic->convirt_model);
  }
  return out;
}

/// Table 1 (linear or fine-tuning protocol) for every model on one dataset: the synthetic
/// CheXpert-style set by default, or --dataset chexpert|rsna|covidx|mura with --train-csv and
/// --test-csv (CheXpert) or --data-root (the others). Prints the table and writes
/// <out>/results.json; returns its path.
inline std::string table1(convirt::pipeline::Protocol protocol, const Args& args) {
  namespace fs = std::filesystem;
  const std::string work =
      args.str("out", "runs/example-" + convirt::pipeline::to_string(protocol));
  const bool real = args.has("train-csv") || args.has("data-root");
  std::unique_ptr<SyntheticSetting> synthetic;
  if (!args.has("models") || !real) {
    synthetic = std::make_unique<SyntheticSetting>(synthetic_setting(work, args));
  }
  auto opts =
      convirt::pipeline::EvaluateOptions()
          .protocol(protocol)
          .dataset(convirt::pipeline::parse_dataset_kind(args.str("dataset", "chexpert")))
          .fractions(args.numbers("fractions", {}))
          .seeds(args.integer("seeds", protocol == convirt::pipeline::Protocol::kLinear ? 5 : 1))
          .max_epochs(args.integer("max-epochs", 100))
          // Real data: the paper's recipe (early stopping, 200 warm-up steps). The synthetic
          // setting: the budgets of `convirt reproduce`, so that it takes minutes.
          .max_steps(args.integer("max-steps", real ? 0 : 150))
          .warmup_steps(args.integer("warmup-steps", real ? 200 : 50))
          .data_mode(convirt::pipeline::parse_data_mode(args.str("data-mode", "auto")))
          .verbose(true);
  if (real) {
    opts.train_csv(args.str("train-csv"))
        .test_csv(args.str("test-csv"))
        .data_root(args.str("data-root"));
  } else {
    // The synthetic labelled set has no consolidation; pneumonia, its nearest finding, stands in.
    opts.train_csv(synthetic->data.chexpert_train_csv)
        .test_csv(synthetic->data.chexpert_valid_csv)
        .labels({"Atelectasis", "Cardiomegaly", "Edema", "Pleural Effusion", "Pneumonia"})
        // The synthetic labelled sets are 100x smaller than the paper's: 1e-3 (not 1e-4) lets a
        // head learn from 1% of them.
        .learning_rate(args.number("lr", 1e-3));
  }
  convirt::eval::Results all;
  for (const auto& [name, path] : models_to_compare(args, synthetic.get())) {
    auto results = convirt::pipeline::evaluate(
        convirt::pipeline::EvaluateOptions(opts).model_path(path).method_name(name));
    all.merge(results);
  }
  std::cout << convirt::eval::format_classification_table(all,
                                                          convirt::pipeline::to_string(protocol));
  const std::string out = (fs::path(work) / "results.json").string();
  fs::create_directories(work);
  all.save(out);
  std::cout << "results: " << out << "\n";
  return out;
}

/// Runs an example's body with the intra-op threads set from the hardware (or CONVIRT_NUM_THREADS),
/// and turns an error into one line on stderr and exit status 1 rather than an uncaught exception.
inline int run_example(int argc, char** argv, const std::function<void(const Args&)>& body) {
  try {
    convirt::set_num_threads(0);
    const Args args(argc, argv);
    body(args);
    return 0;
  } catch (const c10::Error& e) {
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace convirt_example
