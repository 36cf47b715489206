#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/dist/grad_sync.h>
#include <convirt/dist/infonce.h>
#include <convirt/dist/sharding.h>
#include <convirt/dist/sync_batch_norm.h>
#include <convirt/io/checkpoint.h>
#include <convirt/train/checkpoint.h>
#include <convirt/train/metrics_log.h>
#include <convirt/train/objective.h>
#include <convirt/train/pretrainer.h>
#include <convirt/train/run_folder.h>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

namespace convirt::train {

SyncBatchNormMode parse_sync_batch_norm(const std::string& name) {
  if (name == "auto") return SyncBatchNormMode::kAuto;
  if (name == "on") return SyncBatchNormMode::kOn;
  if (name == "off") return SyncBatchNormMode::kOff;
  CONVIRT_CHECK_VALUE(false, "sync_batch_norm must be 'auto', 'on' or 'off', got '", name, "'");
  return SyncBatchNormMode::kAuto;
}

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names{"adam", "adamw", "sgd"};
  return names;
}

void check_optimizer(const std::string& name) {
  const auto& names = optimizer_names();
  CONVIRT_CHECK_VALUE(std::find(names.begin(), names.end(), name) != names.end(),
                      "optimizer must be 'adam', 'adamw' or 'sgd', got '", name, "'");
}

std::string to_string(SyncBatchNormMode mode) {
  switch (mode) {
    case SyncBatchNormMode::kOn:
      return "on";
    case SyncBatchNormMode::kOff:
      return "off";
    case SyncBatchNormMode::kAuto:
      break;
  }
  return "auto";
}

namespace {

namespace fs = std::filesystem;

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

// Some of a dataset's samples, in a given order: one rank's part of the validation set. Each
// sample gets the seed a one-epoch Loader with `seed` gives it in the whole dataset (the sentence
// drawn from a report depends on it), so a sample is the same whichever rank scores it.
class IndexView : public data::Dataset {
 public:
  IndexView(std::shared_ptr<const data::Dataset> base, std::vector<int64_t> indices, uint64_t seed)
      : base_(std::move(base)), indices_(std::move(indices)), seed_(seed) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  data::Example get(int64_t index, uint64_t /*seed*/) const override {
    const int64_t i = indices_[static_cast<size_t>(index)];
    return base_->get(i, data::Loader::sample_seed(seed_, 0, i));
  }
  std::string source(int64_t index) const override {
    return base_->source(indices_[static_cast<size_t>(index)]);
  }

 private:
  std::shared_ptr<const data::Dataset> base_;
  std::vector<int64_t> indices_;
  uint64_t seed_;
};

// Makes every rank's buffers rank 0's (BatchNorm running statistics are updated from each rank's
// own shard), as DDP does, so that evaluation and checkpoints see one model. One broadcast per
// dtype rather than one per buffer: a ResNet-50 has about 160 of them.
void broadcast_buffers(torch::nn::Module& module, const dist::DistributedContext& ctx) {
  if (!ctx.is_distributed()) return;
  torch::NoGradGuard no_grad;
  std::map<int, std::vector<torch::Tensor>> by_type;
  for (const auto& b : module.buffers()) {
    if (b.defined() && b.numel() > 0) by_type[static_cast<int>(b.scalar_type())].push_back(b);
  }
  for (auto& [type, buffers] : by_type) {
    std::vector<torch::Tensor> flat;
    for (const auto& b : buffers) flat.push_back(b.reshape({-1}));
    auto packed = torch::cat(flat);
    ctx.broadcast_(packed, 0);
    int64_t offset = 0;
    for (auto& b : buffers) {
      b.copy_(packed.slice(0, offset, offset + b.numel()).view_as(b));
      offset += b.numel();
    }
  }
}

// A batch of 0 images of the model's input shape.
torch::Tensor no_images(const models::ModelConfig& config, const torch::TensorOptions& options) {
  const int64_t side = std::max<int64_t>(config.image_size(), 1);
  return torch::zeros({0, config.image_channels(), side, side}, options);
}

// The random state of this process's default CPU generator.
torch::Tensor cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_cpu_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state.cpu());
}

// Each rank draws its own random numbers (dropout masks, the binary objective's fake pairs);
// rank 0's stream is the single-process one.
uint64_t rank_seed(uint64_t seed, int64_t rank) {
  return seed + 1000003ULL * static_cast<uint64_t>(rank);
}

// The sum over ranks of a few numbers (a no-op in a single process).
std::vector<double> sum_over_ranks(const dist::DistributedContext& ctx,
                                   const std::vector<double>& values) {
  if (!ctx.is_distributed()) return values;
  auto t = torch::tensor(values, torch::kDouble);
  ctx.all_reduce_(t);
  auto a = t.accessor<double, 1>();
  std::vector<double> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = a[static_cast<int64_t>(i)];
  return out;
}

// Whether a module has anything to checkpoint or broadcast.
bool has_state(torch::nn::Module& module) {
  return !module.parameters().empty() || !module.buffers().empty();
}

// Checkpoints record the built-in objectives as the values of the enum that once chose them, so
// that checkpoints from before objectives were registered by name still resume; any other
// objective is recorded by its name.
const std::map<std::string, int64_t>& builtin_objective_codes() {
  static const std::map<std::string, int64_t> codes{{"convirt", 0}, {"binary", 1}};
  return codes;
}

void write_objective_id(torch::serialize::OutputArchive& archive, const std::string& name) {
  const auto& codes = builtin_objective_codes();
  const auto it = codes.find(name);
  if (it != codes.end()) {
    archive.write("objective", torch::tensor(it->second));
    return;
  }
  auto bytes = torch::empty({static_cast<int64_t>(name.size())}, torch::kByte);
  std::copy(name.begin(), name.end(), bytes.data_ptr<uint8_t>());
  archive.write("objective", torch::tensor(int64_t{-1}));
  archive.write("objective_name", bytes);
}

std::string read_objective_id(torch::serialize::InputArchive& archive) {
  torch::Tensor t;
  if (archive.try_read("objective_name", t)) {
    t = t.to(torch::kCPU).contiguous();
    const auto* p = t.data_ptr<uint8_t>();
    return std::string(p, p + t.numel());
  }
  archive.read("objective", t);
  const int64_t code = t.item<int64_t>();
  for (const auto& [name, c] : builtin_objective_codes())
    if (c == code) return name;
  return "objective #" + std::to_string(code);
}

// One optimiser of type O over two groups: the decayed parameters, then (when there are any) those
// trained without weight decay. The decayed group's options are also the optimiser's defaults.
template <class O, class Options>
std::unique_ptr<torch::optim::Optimizer> grouped(std::vector<torch::Tensor> decayed,
                                                 std::vector<torch::Tensor> no_decay,
                                                 Options options, double weight_decay) {
  Options plain = options;
  plain.weight_decay(0);
  options.weight_decay(weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::move(decayed), std::make_unique<Options>(options));
  if (!no_decay.empty()) groups.emplace_back(std::move(no_decay), std::make_unique<Options>(plain));
  return std::make_unique<O>(std::move(groups), options);
}

// The one place an optimiser name becomes a type (PretrainOptions::optimizer).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const std::string& name,
                                                        std::vector<torch::Tensor> decayed,
                                                        std::vector<torch::Tensor> no_decay,
                                                        double lr, double weight_decay) {
  check_optimizer(name);
  if (name == "adamw")
    return grouped<torch::optim::AdamW>(std::move(decayed), std::move(no_decay),
                                        torch::optim::AdamWOptions(lr), weight_decay);
  if (name == "sgd")
    return grouped<torch::optim::SGD>(std::move(decayed), std::move(no_decay),
                                      torch::optim::SGDOptions(lr).momentum(0.9), weight_decay);
  return grouped<torch::optim::Adam>(std::move(decayed), std::move(no_decay),
                                     torch::optim::AdamOptions(lr), weight_decay);
}

// The "init" line of metrics.jsonl: {"image": {"path", "sha256", "bytes"}, "text": {...}} flattened
// to image_init, image_init_sha256, image_init_bytes, ...
MetricRecord initial_weights_record(const std::string& json) {
  MetricRecord record{{"type", std::string("init")}, {"step", int64_t{0}}};
  const auto j = nlohmann::json::parse(json);
  for (const auto& source : j.items()) {
    for (const auto& field : source.value().items()) {
      const std::string name =
          source.key() + "_init" + (field.key() == "path" ? "" : "_" + field.key());
      if (field.value().is_number_integer()) {
        record[name] = field.value().get<int64_t>();
      } else if (field.value().is_string()) {
        record[name] = field.value().get<std::string>();
      }
    }
  }
  return record;
}

}  // namespace

struct Pretrainer::State {
  /// What is minimised, with its own parameters (objective.h).
  PretrainObjective objective;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<data::Loader> loader;
  int64_t step = 0;
  int64_t evals = 0;
  int64_t evals_without_improvement = 0;
  int64_t consecutive_bad = 0;
  int64_t skipped = 0;
  double best_val = std::numeric_limits<double>::infinity();
  int64_t best_step = 0;
  double lr = 0;
  /// Gradient exchange of a distributed job (null in a single process).
  std::unique_ptr<dist::GradientSynchronizer> sync;
  /// The parameters' dtype: images are cast to it.
  torch::ScalarType compute_dtype = torch::kFloat;
  /// This run's record (run_folder.h), checked against the folder's on resume.
  std::string run_options;
  /// options.precision() made concrete for the device.
  Precision precision = Precision::kFp32;
  /// Dynamic loss scaling (fp16 only).
  std::unique_ptr<GradScaler> scaler;
  /// The model's BatchNorm layers are synchronised over the ranks
  /// (PretrainOptions::sync_batch_norm).
  bool sync_batch_norm = false;
};

models::VocabularyRecord vocabulary_record(const text::WordPieceTokenizer& tokenizer) {
  models::VocabularyRecord record;
  record.tokens = tokenizer.vocab();
  record.lowercase = tokenizer.options().lowercase();
  record.strip_accents = tokenizer.options().strip_accents();
  return record;
}

namespace {

const text::WordPieceTokenizer& given(const std::shared_ptr<const text::WordPieceTokenizer>& t) {
  CONVIRT_CHECK_VALUE(t != nullptr, "tokenizer must be given");
  return *t;
}

}  // namespace

TokenizeFn wordpiece_tokenize(std::shared_ptr<const text::WordPieceTokenizer> tokenizer) {
  given(tokenizer);
  return [tokenizer](const std::vector<std::string>& texts, int64_t max_length) {
    auto enc = tokenizer->encode_batch(texts, max_length, text::Padding::kLongest);
    return TokenBatch{enc.input_ids, enc.attention_mask};
  };
}

Pretrainer::Pretrainer(models::ConVIRTModel model,
                       std::shared_ptr<const text::WordPieceTokenizer> tokenizer,
                       std::shared_ptr<const data::Dataset> train,
                       std::shared_ptr<const data::Dataset> val, PretrainOptions options)
    : Pretrainer(std::move(model), wordpiece_tokenize(tokenizer),
                 vocabulary_record(given(tokenizer)), std::move(train), std::move(val),
                 std::move(options)) {}

Pretrainer::Pretrainer(models::ConVIRTModel model, TokenizeFn tokenize,
                       std::optional<models::VocabularyRecord> vocabulary,
                       std::shared_ptr<const data::Dataset> train,
                       std::shared_ptr<const data::Dataset> val, PretrainOptions options)
    : model_(std::move(model)),
      tokenize_(std::move(tokenize)),
      vocabulary_(std::move(vocabulary)),
      train_(std::move(train)),
      val_(std::move(val)),
      options_(std::move(options)),
      state_(std::make_unique<State>()) {
  CONVIRT_CHECK_VALUE(model_, "model must be defined");
  CONVIRT_CHECK_VALUE(tokenize_ != nullptr, "tokenize must be a callable text function");
  if (options_.max_length() <= 0) options_.max_length(model_->config().max_length());
  // Every model this trainer writes carries its vocabulary (token ids mean nothing without it).
  if (vocabulary_) model_->set_vocabulary(*vocabulary_);
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
  const dist::DistributedContext& ctx = options_.distributed();
  CONVIRT_CHECK_VALUE(train_->size() >= options_.batch_size() * ctx.world_size(),
                      "the training set (", train_->size(),
                      " pairs) must hold at least one global batch of batch_size * world_size = ",
                      options_.batch_size(), " * ", ctx.world_size());

  state_->precision = resolve_precision(options_.precision(), options_.device());
  if (state_->precision == Precision::kFp16) state_->scaler = std::make_unique<GradScaler>();
  torch::manual_seed(options_.seed());
  model_->to(options_.device());
  // BatchNorm over the global batch: converted before the weights are broadcast and the optimiser
  // is built (the layers keep their names and tensors, so checkpoints do not change).
  if (ctx.is_distributed() && options_.sync_batch_norm() != SyncBatchNormMode::kOff &&
      dist::count_batch_norm(*model_) > 0) {
    try {
      const int64_t layers = dist::convert_sync_batch_norm(*model_, ctx);
      state_->sync_batch_norm = true;
      if (ctx.is_main() && options_.verbose())
        std::fprintf(stderr, "[pretrain] %lld BatchNorm layers synchronised over %lld ranks\n",
                     static_cast<long long>(layers), static_cast<long long>(ctx.world_size()));
    } catch (const c10::ValueError& e) {
      // Every rank has the same model, so every rank takes this branch.
      if (options_.sync_batch_norm() == SyncBatchNormMode::kOn) throw;
      if (ctx.is_main())
        std::fprintf(stderr, "[pretrain] warning: BatchNorm stays per rank: %s\n",
                     e.what_without_backtrace());
    }
  }
  std::vector<torch::Tensor> params = trainable(model_->parameters());
  for (const auto& p : model_->parameters()) {
    if (p.is_floating_point()) {
      state_->compute_dtype = p.scalar_type();
      break;
    }
  }
  // Built here, with the generator seeded from options.seed (a head it initialises starts alike on
  // every rank) and before the per-rank reseeding below.
  state_->objective = make_objective(
      options_.objective(),
      ObjectiveContext{options_, model_->output_dim(), options_.device(), state_->compute_dtype});
  auto& objective = *state_->objective;
  // The objective's parameters are decayed with the model's unless it says otherwise (a learned
  // temperature is not).
  std::vector<torch::Tensor> no_decay = objective.no_decay_parameters();
  for (const auto& p : trainable(objective.parameters())) {
    const bool decayed = std::none_of(
        no_decay.begin(), no_decay.end(),
        [&](const torch::Tensor& q) { return q.unsafeGetTensorImpl() == p.unsafeGetTensorImpl(); });
    if (decayed) params.push_back(p);
  }
  if (ctx.is_distributed()) {
    // Every rank starts from rank 0's weights, whatever its own initialisation was.
    dist::broadcast_module_state(*model_, ctx);
    if (has_state(objective)) dist::broadcast_module_state(objective, ctx);
    std::vector<torch::Tensor> synced = params;
    synced.insert(synced.end(), no_decay.begin(), no_decay.end());
    // A global-batch loss's per-rank gradients add up to the global gradient; a per-rank loss is
    // each rank's mean over its own shard, so its gradients are averaged.
    state_->sync = std::make_unique<dist::GradientSynchronizer>(
        synced, ctx, dist::GradientSynchronizerOptions().average(!objective.spans_global_batch()));
  }
  torch::manual_seed(rank_seed(options_.seed(), ctx.rank()));
  state_->lr = options_.learning_rate();
  state_->optimizer = make_optimizer(options_.optimizer(), params, no_decay,
                                     options_.learning_rate(), options_.weight_decay());
  state_->loader =
      std::make_unique<data::Loader>(train_, data::LoaderOptions()
                                                 .batch_size(options_.batch_size())
                                                 .shuffle(true)
                                                 .drop_last(true)
                                                 .seed(options_.seed())
                                                 .workers(options_.workers())
                                                 .max_bad_fraction(options_.max_bad_fraction())
                                                 .rank(ctx.rank())
                                                 .world_size(ctx.world_size()));
  if (ctx.is_main()) fs::create_directories(options_.out_dir());
}

// The layers stop communicating with the trainer: a model used on one rank afterwards (in training
// mode) must not wait for the others.
Pretrainer::~Pretrainer() {
  if (state_ && state_->sync_batch_norm && model_) dist::revert_sync_batch_norm(*model_);
}

std::shared_ptr<PretrainObjectiveImpl> Pretrainer::objective() const {
  return state_->objective;
}

ObjectiveBatch Pretrainer::objective_batch(const data::Batch& batch) {
  const auto opts = torch::TensorOptions().dtype(state_->compute_dtype).device(options_.device());
  ObjectiveBatch out;
  out.sync_batch_norm = state_->sync_batch_norm;
  if (batch.size() == 0) {
    out.images = no_images(model_->config(), opts);
    return out;
  }
  auto enc = tokenize_(batch.texts, options_.max_length());
  CONVIRT_CHECK_VALUE(enc.input_ids.dim() == 2 && enc.input_ids.size(0) == batch.size() &&
                          enc.attention_mask.sizes() == enc.input_ids.sizes(),
                      "the text function must give input_ids and attention_mask of shape [",
                      batch.size(), ", L], got ", enc.input_ids.sizes(), " and ",
                      enc.attention_mask.sizes());
  out.images = batch.images.to(options_.device(), state_->compute_dtype);
  out.input_ids = enc.input_ids.to(options_.device());
  out.attention_mask = enc.attention_mask.to(options_.device());
  return out;
}

double Pretrainer::validation_loss() {
  const auto& ctx = options_.distributed();
  // Validation must not disturb the training RNG stream (the binary objective draws fake pairs).
  const torch::Tensor rng_state = cpu_rng_state();
  torch::manual_seed(rank_seed(options_.seed() + 7919, ctx.rank()));
  torch::NoGradGuard no_grad;
  const bool was_training = model_->is_training();
  model_->eval();
  state_->objective->eval();
  // The set is scored in consecutive global batches of batch_size * world_size pairs (the last one
  // shorter), each split into contiguous rank shards: the same batches, hence the same loss, as one
  // process with a world_size times larger batch_size.
  const int64_t n = val_->size();
  const int64_t global = options_.batch_size() * ctx.world_size();
  std::vector<int64_t> mine;
  std::vector<int64_t> local_sizes;
  for (int64_t begin = 0; begin < n; begin += global) {
    const auto shard = dist::shard_range(std::min(global, n - begin), ctx.rank(), ctx.world_size());
    for (int64_t i = shard.begin; i < shard.end; ++i) mine.push_back(begin + i);
    local_sizes.push_back(shard.size());
  }
  std::unique_ptr<data::Loader> loader;
  if (!mine.empty()) {
    loader = std::make_unique<data::Loader>(
        std::make_shared<IndexView>(val_, std::move(mine), options_.seed() + 1),
        data::LoaderOptions()
            .batch_size(options_.batch_size())
            .shuffle(false)
            .drop_last(false)
            .seed(options_.seed() + 1)
            .workers(options_.workers()));
  }
  const bool global_loss = state_->objective->spans_global_batch();
  double total = 0;  // loss * pairs; for the global loss, counted on rank 0 only
  double count = 0;
  for (const int64_t local_size : local_sizes) {
    data::Batch batch;
    if (local_size > 0) {
      auto next = loader->next();
      CONVIRT_CHECK(next.has_value(), "the validation loader ended early");
      batch = std::move(*next);
    }
    const int64_t pairs =
        static_cast<int64_t>(sum_over_ranks(ctx, {static_cast<double>(batch.size())})[0]);
    if (pairs < 2) continue;  // a lone pair has no negatives
    if (global_loss) {
      const double loss =
          state_->objective->forward(*model_, objective_batch(batch), nullptr).item<double>();
      if (ctx.is_main()) {
        total += loss * static_cast<double>(pairs);
        count += static_cast<double>(pairs);
      }
    } else if (batch.size() >= 2) {
      total += state_->objective->forward(*model_, objective_batch(batch), nullptr).item<double>() *
               static_cast<double>(batch.size());
      count += static_cast<double>(batch.size());
    }
  }
  const auto sums = sum_over_ranks(ctx, {total, count});
  model_->train(was_training);
  state_->objective->train(was_training);
  set_cpu_rng_state(rng_state);
  CONVIRT_CHECK(sums[1] > 0, "the validation set yielded no batch of at least 2 pairs");
  return sums[0] / sums[1];
}

void Pretrainer::save_state(const std::string& path) {
  const auto& ctx = options_.distributed();
  // Every rank's random stream, so that each one resumes its own (a collective: all ranks are
  // here).
  torch::Tensor rng_ranks =
      torch::stack(ctx.all_gather(cpu_rng_state().to(torch::kLong))).to(torch::kByte);
  // The other ranks hold the same weights, optimiser state and position: rank 0 writes, and
  // nobody continues before the file is complete.
  dist::run_on_main(
      ctx, [&] { write_state(path, rng_ranks); }, "writing the checkpoint " + path);
}

void Pretrainer::write_state(const std::string& path, const torch::Tensor& rng_ranks) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive;
  model_->save(model_archive);
  archive.write("model", model_archive);
  if (has_state(*state_->objective)) {
    torch::serialize::OutputArchive objective_archive;
    state_->objective->save(objective_archive);
    archive.write(state_->objective->checkpoint_key(), objective_archive);
  }
  torch::serialize::OutputArchive optim_archive;
  state_->optimizer->save(optim_archive);
  archive.write("optimizer", optim_archive);
  archive.write("rng_cpu", rng_ranks[0].clone());
  archive.write("rng_cpu_ranks", rng_ranks);
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
  write_objective_id(archive, state_->objective->name());
  archive.write("world_size", i64(rng_ranks.size(0)));
  if (state_->scaler) {
    archive.write("grad_scale", torch::tensor(state_->scaler->scale(), torch::kDouble));
    archive.write("grad_scale_growth_tracker", i64(state_->scaler->growth_tracker()));
  }
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_checkpoint_file(path, bytes.str());
}

void Pretrainer::load_state(const std::string& path) {
  std::string used;
  std::vector<std::string> problems;
  const std::string payload = read_latest_checkpoint(path, &used, &problems);
  const auto& ctx = options_.distributed();
  if (ctx.is_main()) {
    for (const auto& p : problems)
      std::fprintf(stderr, "[pretrain] warning: %s; using %s\n", p.c_str(), used.c_str());
  }
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
  // Checkpoints from before distributed training carry no world size: they are single-process.
  torch::Tensor saved_world;
  dist::check_resume_world_size(
      archive.try_read("world_size", saved_world) ? saved_world.item<int64_t>() : 1, ctx);
  // Before any weight is loaded: a changed option is named, not a LibTorch shape error.
  check_resume_options(options_.out_dir(), state_->run_options, options_.allow_option_change());
  const std::string saved_objective = read_objective_id(archive);
  CONVIRT_CHECK_VALUE(saved_objective == state_->objective->name(), "checkpoint '", used,
                      "' was written with the objective '", saved_objective, "', not '",
                      state_->objective->name(), "'");
  torch::serialize::InputArchive model_archive;
  archive.read("model", model_archive);
  model_->load(model_archive);
  if (has_state(*state_->objective)) {
    torch::serialize::InputArchive objective_archive;
    archive.read(state_->objective->checkpoint_key(), objective_archive);
    state_->objective->load(objective_archive);
  }
  torch::serialize::InputArchive optim_archive;
  archive.read("optimizer", optim_archive);
  state_->optimizer->load(optim_archive);
  torch::Tensor rng;
  if (archive.try_read("rng_cpu_ranks", rng)) {
    set_cpu_rng_state(rng[ctx.rank()].contiguous());
  } else {
    archive.read("rng_cpu", rng);
    set_cpu_rng_state(rng);
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
  // A run that switched to fp16 on resume starts from the default scale.
  torch::Tensor scale;
  if (state_->scaler && archive.try_read("grad_scale", scale))
    state_->scaler->set_state(scale.item<double>(), read_i64("grad_scale_growth_tracker"));
}

// What one call of run() keeps between its phases: State is what a checkpoint keeps, this is what
// the process keeps (the folder lock, the metrics file, the clock), released when run() returns
// or throws.
struct Pretrainer::Run {
  std::function<bool(const StepMetrics&)> callback;
  std::string last_ckpt;
  std::string best_model;
  std::unique_ptr<RunFolderLock> folder_lock;  ///< rank 0 only
  std::unique_ptr<JsonLinesWriter> log;        ///< rank 0 only: the others compute the same values
  bool print = false;                          ///< the progress lines (rank 0, verbose)
  int64_t total_steps = 0;                     ///< for the ETA; 0 when only a time budget is set
  ProgressMeter meter;

  void write_log(const MetricRecord& record) {
    if (log) log->write(record);
  }
};

PretrainResult Pretrainer::run(const std::function<bool(const StepMetrics&)>& callback) {
  Run run;
  run.callback = callback;
  start_or_resume(run);
  std::string stop_reason;
  while ((stop_reason = stop_reason_now(run)).empty()) {
    const auto metrics = step(run);
    // A skipped step (too few pairs, a non-finite loss or fp16 gradient) is neither logged nor
    // evaluated: it changed no weight.
    if (!metrics) continue;
    if (state_->step % options_.log_every() == 0 && !log_step(run, *metrics))
      stop_requested_.store(true);
    if (state_->step % options_.eval_every() == 0 && !evaluate_and_checkpoint(run))
      stop_requested_.store(true);
  }
  return finish(run, stop_reason);
}

// Separate because it is the only phase that reads the folder: the lock, the recorded options, the
// checkpoint and the old metrics are settled here, once, before any step.
void Pretrainer::start_or_resume(Run& run) {
  const auto& ctx = options_.distributed();
  const bool main = ctx.is_main();
  const fs::path out(options_.out_dir());
  run.last_ckpt = (out / "last.ckpt").string();
  run.best_model = (out / "best_model.pt").string();
  // One writer per folder (held until run() returns), and a resume only of the run these options
  // describe.
  if (main) {
    run.folder_lock = std::make_unique<RunFolderLock>(options_.out_dir());
    // Temporaries of an earlier process killed mid-write (of any file of the folder) go now.
    remove_dead_temporaries(options_.out_dir());
  }
  state_->run_options =
      run_options_json(options_, model_->config(), vocabulary_, train_->size(), val_->size());
  if (options_.resume()) {
    // Every rank loads the same checkpoint, so they must all see it (a shared file system).
    const double seen = sum_over_ranks(ctx, {checkpoint_exists(run.last_ckpt) ? 1.0 : 0.0})[0];
    CONVIRT_CHECK(seen == 0 || seen == static_cast<double>(ctx.world_size()), "only ", seen, " of ",
                  ctx.world_size(), " ranks see the checkpoint ", run.last_ckpt,
                  ": out_dir must be on a file system every rank reads");
    if (seen > 0) {
      load_state(run.last_ckpt);
      if (options_.verbose() && main)
        std::fprintf(stderr, "[pretrain] resumed from %s at step %lld\n", run.last_ckpt.c_str(),
                     static_cast<long long>(state_->step));
    }
  }
  if (main) write_run_options(options_.out_dir(), state_->run_options);
  if (main) {
    run.log = std::make_unique<JsonLinesWriter>((out / "metrics.jsonl").string());
    // Steps after the checkpoint are redone: their old records (from the run that died) go, so
    // each step is logged once. So does a "done" record left last: the run that wrote it finished
    // after this checkpoint (e.g. another rank was lost after the end), and this one writes its
    // own.
    run.log->drop_records_after(state_->step, "done");
    // What the weights started from travels with the metrics (and, in the config, with every
    // saved model): one record at step 0, replacing the one of an earlier start from step 0.
    if (state_->step == 0 && !model_->config().initial_weights().empty()) {
      run.log->drop_records_after(-1);
      run.log->write(initial_weights_record(model_->config().initial_weights()));
    }
  }
  run.print = options_.verbose() && main;
  run.total_steps = options_.max_steps();
  if (options_.max_evals() > 0) {
    const int64_t by_evals = options_.max_evals() * options_.eval_every();
    run.total_steps = run.total_steps > 0 ? std::min(run.total_steps, by_evals) : by_evals;
  }
  run.meter = ProgressMeter(run.total_steps, state_->step);
  model_->train();
  stop_requested_.store(false);
}

// Separate because in a distributed job it is a collective every rank must reach at the same step:
// the reason to stop, or empty to go on.
std::string Pretrainer::stop_reason_now(Run& run) {
  const auto& ctx = options_.distributed();
  // Rules every rank evaluates alike (the counters are the same everywhere) ...
  if (options_.max_steps() > 0 && state_->step >= options_.max_steps()) return "max_steps";
  if (options_.max_evals() > 0 && state_->evals >= options_.max_evals()) return "max_evals";
  // ... and the ones that are per process (a clock, a signal, a callback), agreed on so that
  // all ranks stop at the same step.
  const auto flags = sum_over_ranks(
      ctx,
      {options_.max_seconds() > 0 && run.meter.elapsed_seconds() >= options_.max_seconds() ? 1.0
                                                                                           : 0.0,
       stop_requested_.load() ? 1.0 : 0.0});
  if (flags[0] > 0) return "max_seconds";
  if (flags[1] > 0) return "stop requested";
  return {};
}

// Separate because it is the whole of what a step changes (the weights, the optimiser, the
// scaler, the counters and the loader position), so that everything else only reads it: the
// metrics of a step that updated the weights, or nothing for a skipped one.
std::optional<StepMetrics> Pretrainer::step(Run& run) {
  const auto& ctx = options_.distributed();
  data::Batch batch = state_->loader->next_batch();
  // Bad samples make a rank's shard smaller; the step is skipped (everywhere, counted) when the
  // global batch has too few pairs left to contrast.
  const int64_t pairs =
      static_cast<int64_t>(sum_over_ranks(ctx, {static_cast<double>(batch.size())})[0]);
  if (pairs < 2) {
    ++state_->step;
    ++state_->skipped;
    return std::nullopt;
  }
  // A per-rank objective is local: a rank left with fewer than 2 pairs sits this step out (its
  // gradient counts as zeros).
  const bool global_objective = state_->objective->spans_global_batch();
  const bool local_loss = global_objective || batch.size() >= 2;
  StepMetrics m;
  state_->optimizer->zero_grad();
  torch::Tensor loss;
  if (local_loss) {
    AutocastScope scope(options_.device(), state_->precision);
    loss = state_->objective->forward(*model_, objective_batch(batch), &m);
  } else if (state_->sync_batch_norm) {
    // Too few pairs for a per-rank loss here, but the synchronised BatchNorm layers are
    // collectives: this rank runs the image encoder (forward, and a zero backward) with the
    // others.
    AutocastScope scope(options_.device(), state_->precision);
    const auto opts = torch::TensorOptions().dtype(state_->compute_dtype).device(options_.device());
    const auto images =
        batch.size() > 0 ? batch.images.to(opts) : no_images(model_->config(), opts);
    loss = model_->encode_image(images).sum() * 0;
  }
  ++state_->step;
  // Agreed on by all ranks (a local loss can go bad on one of them): skip together or not at
  // all. A global-batch loss is the same everywhere; a per-rank one is averaged for the log.
  const double loss_sum = sum_over_ranks(ctx, {local_loss ? m.loss : 0.0})[0];
  if (!global_objective) m.loss = loss_sum / static_cast<double>(ctx.world_size());
  if (!std::isfinite(loss_sum)) {
    ++state_->skipped;
    ++state_->consecutive_bad;
    run.write_log({{"type", std::string("skipped")},
                   {"step", state_->step},
                   {"reason", std::string("non-finite loss")}});
    CONVIRT_CHECK(state_->consecutive_bad < options_.max_bad_steps(),
                  "pretraining stopped: ", state_->consecutive_bad,
                  " consecutive steps had a non-finite loss (last at step ", state_->step,
                  "); lower the learning rate or check the inputs");
    return std::nullopt;
  }
  state_->consecutive_bad = 0;
  if (loss.defined()) (state_->scaler ? loss * state_->scaler->scale() : loss).backward();
  // Every rank now holds the same (global) gradient, so every rank takes the same step.
  if (state_->sync) state_->sync->synchronize();
  if (state_->scaler) {
    // fp16 overflow: the step is skipped and the scale lowered, as torch.cuda.amp does. All
    // ranks hold the same gradient here, so they agree.
    const bool finite =
        state_->scaler->unscale_and_check(state_->optimizer->param_groups()[0].params());
    state_->scaler->update(!finite);
    if (!finite) {
      ++state_->skipped;
      run.write_log({{"type", std::string("skipped")},
                     {"step", state_->step},
                     {"reason", std::string("non-finite fp16 gradient")},
                     {"loss_scale", state_->scaler->scale()}});
      return std::nullopt;
    }
  }
  if (options_.grad_clip_norm() > 0) {
    torch::nn::utils::clip_grad_norm_(state_->optimizer->param_groups()[0].params(),
                                      options_.grad_clip_norm());
  }
  state_->optimizer->step();
  broadcast_buffers(*model_, ctx);
  run.meter.update(state_->step, pairs);
  return m;
}

// Separate because it only reports (metrics.jsonl, the progress line, the callback), every
// log_every steps: whether the callback wants to go on.
bool Pretrainer::log_step(Run& run, StepMetrics m) {
  m.step = state_->step;
  m.learning_rate = state_->lr;
  m.images_per_second = run.meter.items_per_second();
  m.eta_seconds = run.meter.eta_seconds();
  if (options_.max_seconds() > 0) {
    const double left = options_.max_seconds() - run.meter.elapsed_seconds();
    m.eta_seconds = m.eta_seconds < 0 ? left : std::min(m.eta_seconds, left);
  }
  run.write_log({{"type", std::string("train")},
                 {"step", m.step},
                 {"loss", m.loss},
                 {"loss_image_to_text", m.image_to_text},
                 {"loss_text_to_image", m.text_to_image},
                 {"acc_image_to_text", m.image_to_text_accuracy},
                 {"acc_text_to_image", m.text_to_image_accuracy},
                 {"lr", m.learning_rate},
                 {"temperature", m.temperature},
                 {"images_per_s", m.images_per_second},
                 {"elapsed_s", run.meter.elapsed_seconds()}});
  if (run.print) {
    const std::string acc = state_->objective->progress(m);
    const std::string total = run.total_steps > 0 ? "/" + std::to_string(run.total_steps) : "";
    std::fprintf(stderr,
                 "[pretrain] step %lld%s | loss %.4f%s | lr %.2e | %.1f img/s | elapsed %s | "
                 "ETA %s\n",
                 static_cast<long long>(m.step), total.c_str(), m.loss, acc.c_str(),
                 m.learning_rate, m.images_per_second,
                 format_duration(run.meter.elapsed_seconds()).c_str(),
                 format_duration(m.eta_seconds).c_str());
  }
  return !run.callback || run.callback(m);
}

// Separate because it is what the schedule, the best model and the resumable checkpoint hang on:
// the validation loss, the plateau rule, best_model.pt and last.ckpt, every eval_every steps and
// once at the end. Whether the callback wants to go on.
bool Pretrainer::evaluate_and_checkpoint(Run& run) {
  const auto& ctx = options_.distributed();
  const double val = validation_loss();
  ++state_->evals;
  const bool improved = val < state_->best_val;
  if (improved) {
    state_->best_val = val;
    state_->best_step = state_->step;
    state_->evals_without_improvement = 0;
    dist::run_on_main(
        ctx,
        // save_convirt writes atomically (a temporary named after this process, renamed into
        // place), so a kill leaves the previous best model and a temporary the next run removes.
        [&] { io::save_convirt(*model_, run.best_model); }, "writing " + run.best_model);
  } else if (++state_->evals_without_improvement >= options_.lr_patience()) {
    state_->lr *= options_.lr_decay();
    for (auto& group : state_->optimizer->param_groups()) group.options().set_lr(state_->lr);
    state_->evals_without_improvement = 0;
  }
  // Logged before the checkpoint: a run that dies once the checkpoint is written (on
  // distributed training, at the barrier that follows it, when another rank is lost) resumes
  // after this step and would never log its evaluation. Logged first, a run that dies before
  // the checkpoint resumes earlier and drops the record with the rest of the redone steps.
  run.write_log({{"type", std::string("eval")},
                 {"step", state_->step},
                 {"val_loss", val},
                 {"best_val_loss", state_->best_val},
                 {"lr", state_->lr},
                 {"improved", int64_t{improved}}});
  save_state(run.last_ckpt);
  if (run.print)
    std::fprintf(stderr, "[pretrain] eval %lld at step %lld: val loss %.4f (best %.4f at %lld)\n",
                 static_cast<long long>(state_->evals), static_cast<long long>(state_->step), val,
                 state_->best_val, static_cast<long long>(state_->best_step));
  StepMetrics m;
  m.step = state_->step;
  m.is_eval = true;
  m.val_loss = val;
  m.learning_rate = state_->lr;
  return !run.callback || run.callback(m);
}

// Separate because a run ends the same way whatever stopped it: the last checkpoint (or the last
// evaluation), the best weights back in the model on every rank, the result and the "done" record.
PretrainResult Pretrainer::finish(Run& run, const std::string& stop_reason) {
  const auto& ctx = options_.distributed();
  const bool main = ctx.is_main();
  PretrainResult result;
  if (stop_reason == "stop requested") {
    // Interrupted, not finished: checkpoint exactly where it is, without an extra evaluation that
    // would change the scheduler's history, so that resuming continues as if never stopped.
    save_state(run.last_ckpt);
  } else if (state_->evals == 0 || state_->step % options_.eval_every() != 0) {
    // A finished run that stopped between evaluations still evaluates where it stopped.
    evaluate_and_checkpoint(run);
  }
  // The model leaves holding the best-validation weights: rank 0 reads them and hands them on,
  // so the other ranks need not see its files.
  const double have_best = sum_over_ranks(ctx, {main && fs::exists(run.best_model) ? 1.0 : 0.0})[0];
  if (have_best > 0) {
    if (main) {
      auto best = io::load_convirt(run.best_model);
      copy_weights(*best, *model_);
    }
    dist::broadcast_module_state(*model_, ctx);
  }
  result.steps = state_->step;
  result.evaluations = state_->evals;
  result.best_val_loss = state_->best_val;
  result.best_step = state_->best_step;
  result.skipped_steps = state_->skipped;
  result.skipped_samples = state_->loader->bad_samples().entries();
  result.bad_samples = static_cast<int64_t>(
      sum_over_ranks(ctx, {static_cast<double>(state_->loader->bad_samples().count())})[0]);
  result.best_checkpoint = run.best_model;
  result.stop_reason = stop_reason;
  run.write_log({{"type", std::string("done")},
                 {"steps", result.steps},
                 {"evaluations", result.evaluations},
                 {"best_val_loss", result.best_val_loss},
                 {"best_step", result.best_step},
                 {"skipped_steps", result.skipped_steps},
                 {"bad_samples", result.bad_samples},
                 {"world_size", ctx.world_size()},
                 {"stop_reason", stop_reason}});
  if (state_->loader->bad_samples().count() > 0 && options_.verbose()) {
    const std::string who = ctx.is_distributed() ? "rank " + std::to_string(ctx.rank()) + ": " : "";
    std::fprintf(stderr, "[pretrain] %s%s\n", who.c_str(),
                 state_->loader->bad_samples().summary().c_str());
  }
  return result;
}

}  // namespace convirt::train
