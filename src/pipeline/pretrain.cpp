#include <convirt/pipeline/pretrain.h>

#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/data/datasets/mimic_cxr.h>
#include <convirt/dist/process_group.h>
#include <convirt/image/preprocess.h>
#include <convirt/io/checkpoint.h>
#include <convirt/models/presets.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/train/objective.h>
#include <convirt/train/run_folder.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

namespace convirt::pipeline {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

// Every option of a job under its JSON name, in one list: to_json and from_json both walk it, so a
// new option is added once. Enums are written as their names.
template <class F>
void for_each_field(PretrainJob& j, F&& f) {
  auto& t = j.trainer();
  f("out_dir", t.out_dir());
  f("data", j.data());
  f("train_csv", j.train_csv());
  f("val_csv", j.val_csv());
  f("image_column", j.image_column());
  f("text_column", j.text_column());
  f("skip_bad_rows", j.skip_bad_rows());
  f("augment", j.augment());
  f("model", j.model());
  f("image_size", j.image_size());
  f("vocab", j.vocab());
  f("vocab_size", j.vocab_size());
  f("image_init", j.init().image_init());
  f("text_init", j.init().text_init());
  f("text_frozen_layers", j.init().text_frozen_layers());
  f("device", j.device());
  f("threads", j.threads());
  f("objective", t.objective());
  f("optimizer", t.optimizer());
  f("learning_rate", t.learning_rate());
  f("weight_decay", t.weight_decay());
  f("batch_size", t.batch_size());
  f("temperature", t.temperature());
  f("image_to_text_weight", t.image_to_text_weight());
  f("learn_temperature", t.learn_temperature());
  f("eval_every", t.eval_every());
  f("lr_patience", t.lr_patience());
  f("lr_decay", t.lr_decay());
  f("max_evals", t.max_evals());
  f("max_steps", t.max_steps());
  f("max_seconds", t.max_seconds());
  f("grad_clip_norm", t.grad_clip_norm());
  f("precision", t.precision());
  f("sync_batch_norm", t.sync_batch_norm());
  f("max_bad_steps", t.max_bad_steps());
  f("max_bad_fraction", t.max_bad_fraction());
  f("max_length", t.max_length());
  f("log_every", t.log_every());
  f("verbose", t.verbose());
  f("seed", t.seed());
  f("workers", t.workers());
  f("resume", t.resume());
  f("allow_option_change", t.allow_option_change());
}

struct ToJson {
  Json* out;
  template <class T>
  void operator()(const char* name, T& value) {
    (*out)[name] = value;
  }
  void operator()(const char* name, train::Precision& value) { (*out)[name] = to_string(value); }
  void operator()(const char* name, train::SyncBatchNormMode& value) {
    (*out)[name] = to_string(value);
  }
};

std::string type_name(const Json& v) {
  return v.type_name();
}

struct FromJson {
  const Json* in;
  std::set<std::string>* seen;

  const Json* find(const char* name) {
    auto it = in->find(name);
    if (it == in->end()) return nullptr;
    seen->insert(name);
    return &*it;
  }
  void operator()(const char* name, std::string& value) {
    if (auto v = find(name)) {
      CONVIRT_CHECK_TYPE(v->is_string(), name, " must be a string, got ", type_name(*v));
      value = v->get<std::string>();
    }
  }
  void operator()(const char* name, bool& value) {
    if (auto v = find(name)) {
      CONVIRT_CHECK_TYPE(v->is_boolean(), name, " must be true or false, got ", type_name(*v));
      value = v->get<bool>();
    }
  }
  void operator()(const char* name, int64_t& value) {
    if (auto v = find(name)) {
      CONVIRT_CHECK_TYPE(v->is_number_integer(), name, " must be an integer, got ", v->dump());
      value = v->get<int64_t>();
    }
  }
  void operator()(const char* name, uint64_t& value) {
    if (auto v = find(name)) {
      CONVIRT_CHECK_TYPE(v->is_number_integer(), name, " must be an integer, got ", v->dump());
      CONVIRT_CHECK_VALUE(v->is_number_unsigned() || v->get<int64_t>() >= 0, name,
                          " must be >= 0, got ", v->dump());
      value = v->get<uint64_t>();
    }
  }
  void operator()(const char* name, double& value) {
    if (auto v = find(name)) {
      CONVIRT_CHECK_TYPE(v->is_number(), name, " must be a number, got ", type_name(*v));
      value = v->get<double>();
    }
  }
  void operator()(const char* name, train::Precision& value) {
    std::string s;
    (*this)(name, s);
    if (seen->count(name)) value = train::parse_precision(s);
  }
  void operator()(const char* name, train::SyncBatchNormMode& value) {
    std::string s;
    (*this)(name, s);
    if (seen->count(name)) value = train::parse_sync_batch_norm(s);
  }
};

void validate(const PretrainJob& j) {
  CONVIRT_CHECK_VALUE(!j.out_dir().empty(), "out_dir must name the run folder");
  CONVIRT_CHECK_VALUE(j.data().empty() || (j.train_csv().empty() && j.val_csv().empty()),
                      "give either data (a MIMIC-CXR-JPG root) or train_csv and val_csv, not "
                      "both; got data='",
                      j.data(), "', train_csv='", j.train_csv(), "'");
  CONVIRT_CHECK_VALUE(!j.data().empty() || (!j.train_csv().empty() && !j.val_csv().empty()),
                      "give data (a MIMIC-CXR-JPG root) or both train_csv and val_csv; got "
                      "train_csv='",
                      j.train_csv(), "', val_csv='", j.val_csv(), "'");
  CONVIRT_CHECK_VALUE(j.init().text_init().empty() || j.vocab().empty(),
                      "vocab and text_init both name the vocabulary; text_init uses its folder's "
                      "vocab.txt, got vocab '",
                      j.vocab(), "'");
  // An explicit vocabulary must exist: a typo must not silently build (and use) a new one.
  CONVIRT_CHECK_VALUE(j.vocab().empty() || fs::is_regular_file(j.vocab()), "vocab: no such file '",
                      j.vocab(), "'; leave it empty to build a vocabulary from the training ",
                      "reports into ", (fs::path(j.out_dir()) / "vocab.txt").string());
  CONVIRT_CHECK_VALUE(j.vocab_size() > 0, "vocab_size must be > 0, got ", j.vocab_size());
  CONVIRT_CHECK_VALUE(j.image_size() >= 0, "image_size must be >= 0 (0: the model config's), got ",
                      j.image_size());
  CONVIRT_CHECK_VALUE(j.threads() >= 0, "threads must be >= 0 (0: all cores), got ", j.threads());
  const double f = j.trainer().max_bad_fraction();
  CONVIRT_CHECK_VALUE(f < 0 || f <= 1, "max_bad_fraction must be in [0, 1] (negative: no limit), ",
                      "got ", f);
  // Names are checked before any data is read (the trainer would refuse them only after).
  train::objective_name(j.trainer().objective());
  train::check_optimizer(j.trainer().optimizer());
  j.init().validate();
}

data::ImageTransform train_transform(const PretrainJob& j, int64_t size) {
  return j.augment() ? pretrain_transform(size) : eval_transform(size);
}

// The first word of a skip reason ("cannot decode image: <detail>" -> "cannot decode image"), so
// the summary counts reasons rather than listing every file.
std::string reason_kind(const std::string& reason) {
  return reason.substr(0, reason.find(':'));
}

std::string skip_counts(const data::BadSampleLog& log) {
  std::map<std::string, int64_t> by_reason;
  for (const auto& s : log.entries()) ++by_reason[reason_kind(s.reason)];
  std::string out;
  for (const auto& [reason, n] : by_reason)
    out += (out.empty() ? "" : ", ") + std::to_string(n) + " " + reason;
  return out.empty() ? "none skipped" : out;
}

std::string tsv_field(std::string s) {
  for (auto& c : s)
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  return s;
}

// out_dir/skipped.tsv: every pair left out of the run and why (indexing: missing or unusable
// report, missing image; decoding: an image that would not read during training).
void write_skipped(const fs::path& out, const data::Dataset& train, const data::Dataset& val,
                   const std::vector<data::BadSample>& decoded) {
  std::string text = "split\tstage\tpath\treason\n";
  auto add = [&](const char* split, const char* stage, const data::BadSample& s) {
    text += std::string(split) + "\t" + stage + "\t" + tsv_field(s.path) + "\t" +
            tsv_field(s.reason) + "\n";
  };
  for (const auto& s : train.skipped().entries()) add("train", "index", s);
  for (const auto& s : val.skipped().entries()) add("validate", "index", s);
  for (const auto& s : decoded) add("train", "decode", s);
  write_file_atomically((out / "skipped.tsv").string(), text, "skipped samples");
}

std::string millions(int64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2fM", static_cast<double>(n) / 1e6);
  return buf;
}

// Clears the front end's pointer to the trainer however run() ends.
struct TrainerHandle {
  const PretrainHooks& hooks;
  TrainerHandle(const PretrainHooks& h, train::Pretrainer* trainer) : hooks(h) {
    if (hooks.on_trainer) hooks.on_trainer(trainer);
  }
  ~TrainerHandle() {
    if (hooks.on_trainer) hooks.on_trainer(nullptr);
  }
};

}  // namespace

std::string PretrainJob::to_json() const {
  Json j;
  PretrainJob copy = *this;
  for_each_field(copy, ToJson{&j});
  return j.dump(2);
}

PretrainJob PretrainJob::from_json(const std::string& text) {
  Json in;
  try {
    in = Json::parse(text);
  } catch (const std::exception& e) {
    CONVIRT_CHECK_VALUE(false, "pretraining options: not valid JSON: ", e.what());
  }
  CONVIRT_CHECK_TYPE(in.is_object(), "pretraining options must be a JSON object, got ",
                     in.type_name());
  PretrainJob job;
  std::set<std::string> seen;
  for_each_field(job, FromJson{&in, &seen});
  // An objective is a registered name (train/objective.h): an unknown one fails here, listing them.
  train::objective_name(job.trainer().objective());
  train::check_optimizer(job.trainer().optimizer());
  std::vector<std::string> unknown;
  for (const auto& item : in.items())
    if (!seen.count(item.key())) unknown.push_back(item.key());
  if (!unknown.empty()) {
    Json known;
    for_each_field(job, ToJson{&known});
    std::string names, known_names;
    for (const auto& u : unknown) names += (names.empty() ? "" : ", ") + u;
    for (const auto& k : known.items()) known_names += (known_names.empty() ? "" : ", ") + k.key();
    CONVIRT_CHECK_VALUE(false, "unknown pretraining option(s) ", names, "; known: ", known_names);
  }
  return job;
}

models::ModelConfig job_model_config(const PretrainJob& job, int64_t vocab_size) {
  models::ModelConfig config = models::config_from(job.model());
  if (models::is_preset_spec(job.model())) {
    // A preset is a family: its text encoder takes the vocabulary's size.
    const int64_t size = config.image_size();
    if (job.model() == "small") config = models::small_preset(vocab_size).image_size(size);
    config.bert().config().vocab_size(vocab_size);
  } else if (job.vocab().empty() && job.init().text_init().empty()) {
    // A vocabulary built from the corpus has the size the corpus gives it, not a chosen one.
    config.bert().config().vocab_size(vocab_size);
  } else {
    CONVIRT_CHECK_VALUE(config.bert().config().vocab_size() >= vocab_size,
                        "model: the text encoder's vocab_size (",
                        config.bert().config().vocab_size(), ") is smaller than the vocabulary's ",
                        vocab_size, " tokens");
  }
  if (job.image_size() > 0) config.image_size(job.image_size());
  return config;
}

PretrainRun pretrain(const PretrainJob& job, const PretrainHooks& hooks) {
  validate(job);
  set_num_threads(static_cast<int>(job.threads()));
  // A single process, or one rank of a job started by `convirt launch`, torchrun or Slurm.
  const auto ctx = dist::DistributedContext::from_environment();
  const fs::path out(job.out_dir());
  // Before anything is read or written: a second run on this folder fails at once.
  std::unique_ptr<train::RunFolderLock> folder_lock;
  if (ctx.is_main()) folder_lock = std::make_unique<train::RunFolderLock>(out.string());
  // Options that would fail late fail now, before the data is read.
  const torch::Device device = train::resolve_device(job.device(), ctx.local_rank());
  const train::Precision precision = train::resolve_precision(job.trainer().precision(), device);
  const models::ModelConfig base = models::config_from(job.model());
  const int64_t size = job.image_size() > 0 ? job.image_size() : base.image_size();
  const int64_t channels = base.image_channels();
  const double bad = job.trainer().max_bad_fraction();

  // The pairs.
  std::shared_ptr<data::PairedDataset> train_set, val_set;
  if (!job.data().empty()) {
    auto mimic = [&](const char* split, data::ImageTransform tf) {
      return std::make_shared<data::MimicCxrDataset>(job.data(),
                                                     data::MimicCxrOptions()
                                                         .split(split)
                                                         .transform(std::move(tf))
                                                         .channels(channels)
                                                         .max_bad_fraction(bad)
                                                         .skip_bad_rows(job.skip_bad_rows()));
    };
    train_set = mimic("train", train_transform(job, size));
    val_set = mimic("validate", eval_transform(size));
  } else {
    auto csv = [&](const std::string& path, data::ImageTransform tf) {
      return std::make_shared<data::CsvPairsDataset>(path, data::CsvPairsOptions()
                                                               .image_column(job.image_column())
                                                               .text_column(job.text_column())
                                                               .channels(channels)
                                                               .transform(std::move(tf))
                                                               .max_bad_fraction(bad)
                                                               .skip_bad_rows(job.skip_bad_rows()));
    };
    train_set = csv(job.train_csv(), train_transform(job, size));
    val_set = csv(job.val_csv(), eval_transform(size));
  }

  // The vocabulary: the BERT folder's, the one given, or one built from the training reports.
  PretrainRun run;
  std::shared_ptr<const text::WordPieceTokenizer> tokenizer;
  std::string vocab_origin;
  if (!job.init().text_init().empty()) {
    run.vocab_path = (out / "vocab.txt").string();
    auto hf = train::hf_tokenizer(job.init().text_init());
    // A copy in the run folder keeps the run self-contained.
    if (ctx.is_main()) {
      fs::create_directories(out);
      std::string text;
      for (const auto& t : hf->vocab()) text += t + "\n";
      write_file_atomically(run.vocab_path, text, "vocabulary");
    }
    tokenizer = hf;
    vocab_origin = "from the BERT folder " + job.init().text_init();
  } else if (!job.vocab().empty()) {
    run.vocab_path = job.vocab();
    tokenizer = std::make_shared<const text::WordPieceTokenizer>(
        text::WordPieceTokenizer::from_vocab_file(job.vocab()));
    vocab_origin = "read from " + job.vocab();
  } else {
    run.vocab_path = (out / "vocab.txt").string();
    vocab_origin = (fs::exists(run.vocab_path) ? "reused from " : "built from the reports into ") +
                   run.vocab_path;
    // Rank 0 builds and writes the vocabulary; the others then read that very file.
    std::shared_ptr<text::WordPieceTokenizer> built;
    dist::run_on_main(
        ctx, [&] { built = build_tokenizer(*train_set, job.vocab_size(), run.vocab_path); },
        "building the vocabulary " + run.vocab_path);
    if (!ctx.is_main()) built = build_tokenizer(*train_set, job.vocab_size(), run.vocab_path);
    tokenizer = built;
  }

  // The model, from the same seed for the same config.
  const models::ModelConfig config = job_model_config(job, tokenizer->vocab_size());
  torch::manual_seed(job.trainer().seed());
  std::string init_log;
  auto model = train::make_initialised_model(config, job.init(), &init_log);

  train::PretrainOptions options = job.trainer();
  options.distributed(ctx).device(device).precision(precision);
  const bool print = options.verbose() && ctx.is_main();
  if (print) {
    int64_t trainable = 0, frozen = 0;
    for (const auto& p : model->parameters()) (p.requires_grad() ? trainable : frozen) += p.numel();
    const auto& cfg = model->config();
    std::fprintf(
        stderr,
        "[pretrain] pairs: %lld train (%s), %lld validation (%s)\n"
        "[pretrain] vocabulary: %lld tokens, %s\n"
        "[pretrain] model: %s + %s, %lld px, %lld channel(s); parameters %s trainable, "
        "%s frozen\n"
        "[pretrain] device %s, precision %s, batch %lld x %lld rank(s), objective %s\n",
        static_cast<long long>(train_set->size()), skip_counts(train_set->skipped()).c_str(),
        static_cast<long long>(val_set->size()), skip_counts(val_set->skipped()).c_str(),
        static_cast<long long>(tokenizer->vocab_size()), vocab_origin.c_str(),
        cfg.image_encoder().c_str(), cfg.text_encoder().c_str(),
        static_cast<long long>(cfg.image_size()), static_cast<long long>(cfg.image_channels()),
        millions(trainable).c_str(), millions(frozen).c_str(), device.str().c_str(),
        to_string(precision).c_str(), static_cast<long long>(options.batch_size()),
        static_cast<long long>(ctx.world_size()),
        train::objective_name(options.objective()).c_str());
    if (!init_log.empty()) std::fprintf(stderr, "[init] %s", init_log.c_str());
  }
  if (ctx.is_main()) {
    fs::create_directories(out);
    write_skipped(out, *train_set, *val_set, {});
  }

  train::Pretrainer trainer(model, tokenizer, train_set, val_set, options);
  {
    TrainerHandle handle(hooks, &trainer);
    run.result = trainer.run(hooks.on_step);
  }
  run.interrupted = hooks.interrupted && hooks.interrupted();
  run.is_main = ctx.is_main();
  run.model = trainer.model();
  run.tokenizer = tokenizer;
  if (ctx.is_main()) {
    write_skipped(out, *train_set, *val_set, run.result.skipped_samples);
    // Every rank ends with the same (best) weights; rank 0 writes them. An interrupted run is
    // not finished: it leaves its checkpoint to resume from, and no model.pt.
    if (!run.interrupted) {
      run.model_path = (out / "model.pt").string();
      io::save_convirt(*run.model, run.model_path);
    }
  }
  return run;
}

}  // namespace convirt::pipeline
