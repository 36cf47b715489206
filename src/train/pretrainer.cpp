#include <convirt/core/check.h>
#include <convirt/io/checkpoint.h>
#include <convirt/loss/contrastive_binary.h>
#include <convirt/loss/infonce.h>
#include <convirt/train/checkpoint.h>
#include <convirt/train/metrics_log.h>
#include <convirt/train/pretrainer.h>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

namespace convirt::train {

Objective parse_objective(const std::string& name) {
  if (name == "convirt") return Objective::kConVIRT;
  if (name == "binary" || name == "contrastive-binary") return Objective::kContrastiveBinary;
  CONVIRT_CHECK_VALUE(false, "objective must be 'convirt' or 'binary', got '", name, "'");
  return Objective::kConVIRT;
}

std::string to_string(Objective objective) {
  return objective == Objective::kConVIRT ? "convirt" : "binary";
}

namespace {

namespace fs = std::filesystem;

// Autocast scope for CUDA (bf16 matmuls; the loss itself runs in fp32). The C++ autocast API was
// renamed in LibTorch 2.4; both spellings are handled here, in one place.
class CudaAutocast {
 public:
  explicit CudaAutocast(bool enable) : enabled_(enable) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~CudaAutocast() {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool enabled_;
};

// Copies parameters and buffers by name (same architecture).
void copy_weights(torch::nn::Module& from, torch::nn::Module& to) {
  torch::NoGradGuard no_grad;
  auto src_p = from.named_parameters();
  for (auto& p : to.named_parameters()) p.value().copy_(src_p[p.key()]);
  auto src_b = from.named_buffers();
  for (auto& b : to.named_buffers()) b.value().copy_(src_b[b.key()]);
}

std::vector<torch::Tensor> trainable(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params)
    if (p.requires_grad()) out.push_back(p);
  return out;
}

}  // namespace

struct Pretrainer::State {
  ContrastiveBinaryLoss binary{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer;
  std::unique_ptr<data::Loader> loader;
  int64_t step = 0;
  int64_t evals = 0;
  int64_t evals_without_improvement = 0;
  int64_t consecutive_bad = 0;
  int64_t skipped = 0;
  double best_val = std::numeric_limits<double>::infinity();
  int64_t best_step = 0;
  double lr = 0;
};

Pretrainer::Pretrainer(models::ConVIRTModel model,
                       std::shared_ptr<const text::WordPieceTokenizer> tokenizer,
                       std::shared_ptr<const data::Dataset> train,
                       std::shared_ptr<const data::Dataset> val, PretrainOptions options)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      train_(std::move(train)),
      val_(std::move(val)),
      options_(std::move(options)),
      state_(std::make_unique<State>()) {
  CONVIRT_CHECK_VALUE(model_, "model must be defined");
  CONVIRT_CHECK_VALUE(tokenizer_ != nullptr, "tokenizer must be given");
  CONVIRT_CHECK_VALUE(train_ != nullptr && train_->size() > 0,
                      "the training set must hold at least one pair, got ",
                      train_ ? train_->size() : 0);
  CONVIRT_CHECK_VALUE(val_ != nullptr && val_->size() > 0,
                      "the validation set must hold at least one pair, got ",
                      val_ ? val_->size() : 0);
  CONVIRT_CHECK_VALUE(options_.batch_size() >= 2, "batch_size must be >= 2 (the other pairs are ",
                      "the negatives), got ", options_.batch_size());
  CONVIRT_CHECK_VALUE(options_.eval_every() >= 1, "eval_every must be >= 1, got ",
                      options_.eval_every());
  CONVIRT_CHECK_VALUE(options_.learning_rate() > 0, "learning_rate must be > 0, got ",
                      options_.learning_rate());
  CONVIRT_CHECK_VALUE(options_.lr_decay() > 0 && options_.lr_decay() <= 1,
                      "lr_decay must be in (0, 1], got ", options_.lr_decay());
  CONVIRT_CHECK_VALUE(
      options_.max_steps() > 0 || options_.max_evals() > 0 || options_.max_seconds() > 0,
      "set at least one of max_steps, max_evals, max_seconds (all are 0)");
  CONVIRT_CHECK_VALUE(
      train_->size() >= options_.batch_size(), "the training set (", train_->size(),
      " pairs) must hold at least one batch of batch_size = ", options_.batch_size());

  torch::manual_seed(options_.seed());
  model_->to(options_.device());
  std::vector<torch::Tensor> params = trainable(model_->parameters());
  if (options_.objective() == Objective::kContrastiveBinary) {
    state_->binary = ContrastiveBinaryLoss(ContrastiveBinaryOptions(model_->output_dim()));
    state_->binary->to(options_.device());
    for (const auto& p : state_->binary->parameters()) params.push_back(p);
  }
  state_->lr = options_.learning_rate();
  state_->optimizer = std::make_unique<torch::optim::Adam>(
      params,
      torch::optim::AdamOptions(options_.learning_rate()).weight_decay(options_.weight_decay()));
  state_->loader = std::make_unique<data::Loader>(train_, data::LoaderOptions()
                                                              .batch_size(options_.batch_size())
                                                              .shuffle(true)
                                                              .drop_last(true)
                                                              .seed(options_.seed())
                                                              .workers(options_.workers()));
  fs::create_directories(options_.out_dir());
}

Pretrainer::~Pretrainer() = default;

torch::Tensor Pretrainer::objective_loss(const torch::Tensor& v, const torch::Tensor& u,
                                         StepMetrics* metrics) {
  if (options_.objective() == Objective::kContrastiveBinary) {
    auto loss = state_->binary->forward(v, u);
    if (metrics) metrics->loss = loss.item<double>();
    return loss;
  }
  auto out = infonce_loss_with_stats(v, u,
                                     InfoNCEOptions()
                                         .temperature(options_.temperature())
                                         .image_to_text_weight(options_.image_to_text_weight()));
  if (metrics) {
    metrics->loss = out.loss.item<double>();
    metrics->image_to_text = out.image_to_text.item<double>();
    metrics->text_to_image = out.text_to_image.item<double>();
    metrics->image_to_text_accuracy = out.image_to_text_accuracy.item<double>();
    metrics->text_to_image_accuracy = out.text_to_image_accuracy.item<double>();
  }
  return out.loss;
}

double Pretrainer::validation_loss() {
  // Validation must not disturb the training RNG stream (the binary objective draws fake pairs).
  auto gen = at::detail::getDefaultCPUGenerator();
  torch::Tensor rng_state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    rng_state = gen.get_state();
  }
  torch::manual_seed(options_.seed() + 7919);
  torch::NoGradGuard no_grad;
  const bool was_training = model_->is_training();
  model_->eval();
  data::Loader loader(val_, data::LoaderOptions()
                                .batch_size(options_.batch_size())
                                .shuffle(false)
                                .drop_last(false)
                                .seed(options_.seed() + 1)
                                .workers(options_.workers()));
  double total = 0;
  int64_t count = 0;
  while (auto batch = loader.next()) {
    if (batch->size() < 2) continue;  // a lone pair has no negatives
    auto enc =
        tokenizer_->encode_batch(batch->texts, options_.max_length(), text::Padding::kLongest);
    auto [v, u] =
        model_->forward(batch->images.to(options_.device()), enc.input_ids.to(options_.device()),
                        enc.attention_mask.to(options_.device()));
    const double loss =
        objective_loss(v.to(torch::kFloat), u.to(torch::kFloat), nullptr).item<double>();
    total += loss * static_cast<double>(batch->size());
    count += batch->size();
  }
  model_->train(was_training);
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng_state);
  }
  CONVIRT_CHECK(count > 0, "the validation set yielded no batch of at least 2 pairs");
  return total / static_cast<double>(count);
}

void Pretrainer::save_state(const std::string& path) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model_->save(model_archive);
  archive.write("model", model_archive);
  if (state_->binary) {
    torch::serialize::OutputArchive head_archive;
    state_->binary->save(head_archive);
    archive.write("objective_head", head_archive);
  }
  torch::serialize::OutputArchive optim_archive;
  state_->optimizer->save(optim_archive);
  archive.write("optimizer", optim_archive);
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    archive.write("rng_cpu", gen.get_state());
  }
  const auto pos = state_->loader->position();
  auto i64 = [](int64_t v) { return torch::tensor(v, torch::kLong); };
  archive.write("step", i64(state_->step));
  archive.write("evals", i64(state_->evals));
  archive.write("evals_without_improvement", i64(state_->evals_without_improvement));
  archive.write("consecutive_bad", i64(state_->consecutive_bad));
  archive.write("skipped", i64(state_->skipped));
  archive.write("best_step", i64(state_->best_step));
  archive.write("loader_epoch", i64(pos.epoch));
  archive.write("loader_step", i64(pos.step));
  archive.write("best_val", torch::tensor(state_->best_val, torch::kDouble));
  archive.write("lr", torch::tensor(state_->lr, torch::kDouble));
  archive.write("objective", torch::tensor(static_cast<int64_t>(options_.objective())));
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_checkpoint_file(path, bytes.str());
}

void Pretrainer::load_state(const std::string& path) {
  std::string used;
  std::vector<std::string> problems;
  const std::string payload = read_latest_checkpoint(path, &used, &problems);
  for (const auto& p : problems)
    std::fprintf(stderr, "[pretrain] warning: %s; using %s\n", p.c_str(), used.c_str());
  torch::serialize::InputArchive archive;
  archive.load_from(payload.data(), payload.size(), options_.device());
  auto read_i64 = [&](const char* key) {
    torch::Tensor t;
    archive.read(key, t);
    return t.item<int64_t>();
  };
  auto read_f64 = [&](const char* key) {
    torch::Tensor t;
    archive.read(key, t);
    return t.item<double>();
  };
  CONVIRT_CHECK_VALUE(read_i64("objective") == static_cast<int64_t>(options_.objective()),
                      "checkpoint '", used, "' was written with another objective than '",
                      to_string(options_.objective()), "'");
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  model_->load(model_archive);
  if (state_->binary) {
    torch::serialize::InputArchive head_archive;
    archive.read("objective_head", head_archive);
    state_->binary->load(head_archive);
  }
  torch::serialize::InputArchive optim_archive;
  archive.read("optimizer", optim_archive);
  state_->optimizer->load(optim_archive);
  torch::Tensor rng;
  archive.read("rng_cpu", rng);
  auto gen = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng.cpu());
  }
  state_->step = read_i64("step");
  state_->evals = read_i64("evals");
  state_->evals_without_improvement = read_i64("evals_without_improvement");
  state_->consecutive_bad = read_i64("consecutive_bad");
  state_->skipped = read_i64("skipped");
  state_->best_step = read_i64("best_step");
  state_->best_val = read_f64("best_val");
  state_->lr = read_f64("lr");
  for (auto& group : state_->optimizer->param_groups()) group.options().set_lr(state_->lr);
  state_->loader->set_position({read_i64("loader_epoch"), read_i64("loader_step")});
}

PretrainResult Pretrainer::run(const std::function<bool(const StepMetrics&)>& callback) {
  const fs::path out(options_.out_dir());
  const std::string last_ckpt = (out / "last.ckpt").string();
  const std::string best_model = (out / "best_model.pt").string();
  if (options_.resume() && checkpoint_exists(last_ckpt)) {
    load_state(last_ckpt);
    if (options_.verbose())
      std::fprintf(stderr, "[pretrain] resumed from %s at step %lld\n", last_ckpt.c_str(),
                   static_cast<long long>(state_->step));
  }
  JsonLinesWriter log((out / "metrics.jsonl").string());
  int64_t total_steps = options_.max_steps();
  if (options_.max_evals() > 0) {
    const int64_t by_evals = options_.max_evals() * options_.eval_every();
    total_steps = total_steps > 0 ? std::min(total_steps, by_evals) : by_evals;
  }
  ProgressMeter meter(total_steps, state_->step);
  const bool autocast = options_.mixed_precision() && options_.device().is_cuda();
  PretrainResult result;
  model_->train();
  stop_requested_.store(false);

  auto evaluate_and_checkpoint = [&]() {
    const double val = validation_loss();
    ++state_->evals;
    const bool improved = val < state_->best_val;
    if (improved) {
      state_->best_val = val;
      state_->best_step = state_->step;
      state_->evals_without_improvement = 0;
      const std::string tmp = best_model + ".tmp";
      io::save_convirt(*model_, tmp);
      fs::rename(tmp, best_model);
    } else if (++state_->evals_without_improvement >= options_.lr_patience()) {
      state_->lr *= options_.lr_decay();
      for (auto& group : state_->optimizer->param_groups()) group.options().set_lr(state_->lr);
      state_->evals_without_improvement = 0;
    }
    save_state(last_ckpt);
    log.write({{"type", std::string("eval")},
               {"step", state_->step},
               {"val_loss", val},
               {"best_val_loss", state_->best_val},
               {"lr", state_->lr},
               {"improved", int64_t{improved}}});
    if (options_.verbose())
      std::fprintf(stderr, "[pretrain] eval %lld at step %lld: val loss %.4f (best %.4f at %lld)\n",
                   static_cast<long long>(state_->evals), static_cast<long long>(state_->step), val,
                   state_->best_val, static_cast<long long>(state_->best_step));
    StepMetrics m;
    m.step = state_->step;
    m.is_eval = true;
    m.val_loss = val;
    m.learning_rate = state_->lr;
    return callback ? callback(m) : true;
  };

  std::string stop_reason;
  for (;;) {
    if (options_.max_steps() > 0 && state_->step >= options_.max_steps()) {
      stop_reason = "max_steps";
      break;
    }
    if (options_.max_evals() > 0 && state_->evals >= options_.max_evals()) {
      stop_reason = "max_evals";
      break;
    }
    if (options_.max_seconds() > 0 && meter.elapsed_seconds() >= options_.max_seconds()) {
      stop_reason = "max_seconds";
      break;
    }
    if (stop_requested_.load()) {
      stop_reason = "stop requested";
      break;
    }

    data::Batch batch = state_->loader->next_batch();
    if (batch.size() < 2) {  // bad samples left too few pairs to contrast: skip, counted
      ++state_->step;
      ++state_->skipped;
      continue;
    }
    auto enc =
        tokenizer_->encode_batch(batch.texts, options_.max_length(), text::Padding::kLongest);
    StepMetrics m;
    state_->optimizer->zero_grad();
    torch::Tensor loss;
    {
      CudaAutocast scope(autocast);
      auto [v, u] =
          model_->forward(batch.images.to(options_.device()), enc.input_ids.to(options_.device()),
                          enc.attention_mask.to(options_.device()));
      loss = objective_loss(v.to(torch::kFloat), u.to(torch::kFloat), &m);
    }
    ++state_->step;
    if (!std::isfinite(m.loss)) {
      ++state_->skipped;
      ++state_->consecutive_bad;
      log.write({{"type", std::string("skipped")},
                 {"step", state_->step},
                 {"reason", std::string("non-finite loss")}});
      CONVIRT_CHECK(state_->consecutive_bad < options_.max_bad_steps(),
                    "pretraining stopped: ", state_->consecutive_bad,
                    " consecutive steps had a non-finite loss (last at step ", state_->step,
                    "); lower the learning rate or check the inputs");
      continue;
    }
    state_->consecutive_bad = 0;
    loss.backward();
    if (options_.grad_clip_norm() > 0) {
      torch::nn::utils::clip_grad_norm_(state_->optimizer->param_groups()[0].params(),
                                        options_.grad_clip_norm());
    }
    state_->optimizer->step();
    meter.update(state_->step, batch.size());

    if (state_->step % options_.log_every() == 0) {
      m.step = state_->step;
      m.learning_rate = state_->lr;
      m.images_per_second = meter.items_per_second();
      m.eta_seconds = meter.eta_seconds();
      if (options_.max_seconds() > 0) {
        const double left = options_.max_seconds() - meter.elapsed_seconds();
        m.eta_seconds = m.eta_seconds < 0 ? left : std::min(m.eta_seconds, left);
      }
      log.write({{"type", std::string("train")},
                 {"step", m.step},
                 {"loss", m.loss},
                 {"loss_image_to_text", m.image_to_text},
                 {"loss_text_to_image", m.text_to_image},
                 {"acc_image_to_text", m.image_to_text_accuracy},
                 {"acc_text_to_image", m.text_to_image_accuracy},
                 {"lr", m.learning_rate},
                 {"images_per_s", m.images_per_second},
                 {"elapsed_s", meter.elapsed_seconds()}});
      if (options_.verbose()) {
        char acc[64] = "";
        if (options_.objective() == Objective::kConVIRT) {
          std::snprintf(acc, sizeof(acc), " | acc i2t %.2f t2i %.2f", m.image_to_text_accuracy,
                        m.text_to_image_accuracy);
        }
        const std::string total = total_steps > 0 ? "/" + std::to_string(total_steps) : "";
        std::fprintf(stderr,
                     "[pretrain] step %lld%s | loss %.4f%s | lr %.2e | %.1f img/s | elapsed %s | "
                     "ETA %s\n",
                     static_cast<long long>(m.step), total.c_str(), m.loss, acc, m.learning_rate,
                     m.images_per_second, format_duration(meter.elapsed_seconds()).c_str(),
                     format_duration(m.eta_seconds).c_str());
      }
      if (callback && !callback(m)) stop_requested_.store(true);
    }
    if (state_->step % options_.eval_every() == 0) {
      if (!evaluate_and_checkpoint()) stop_requested_.store(true);
    }
  }

  if (stop_reason == "stop requested") {
    // Interrupted, not finished: checkpoint exactly where it is, without an extra evaluation that
    // would change the scheduler's history, so that resuming continues as if never stopped.
    save_state(last_ckpt);
  } else if (state_->evals == 0 || state_->step % options_.eval_every() != 0) {
    // A finished run that stopped between evaluations still evaluates where it stopped.
    evaluate_and_checkpoint();
  }
  // The model leaves holding the best-validation weights.
  if (fs::exists(best_model)) {
    auto best = io::load_convirt(best_model);
    copy_weights(*best, *model_);
  }
  result.steps = state_->step;
  result.evaluations = state_->evals;
  result.best_val_loss = state_->best_val;
  result.best_step = state_->best_step;
  result.skipped_steps = state_->skipped;
  result.bad_samples = state_->loader->bad_samples().count();
  result.best_checkpoint = best_model;
  result.stop_reason = stop_reason;
  log.write({{"type", std::string("done")},
             {"steps", result.steps},
             {"evaluations", result.evaluations},
             {"best_val_loss", result.best_val_loss},
             {"best_step", result.best_step},
             {"skipped_steps", result.skipped_steps},
             {"bad_samples", result.bad_samples},
             {"stop_reason", stop_reason}});
  if (result.bad_samples > 0 && options_.verbose())
    std::fprintf(stderr, "[pretrain] %s\n", state_->loader->bad_samples().summary().c_str());
  return result;
}

}  // namespace convirt::train
