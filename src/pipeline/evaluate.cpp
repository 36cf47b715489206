// pipeline::evaluate: the paper's datasets turned into train/val/test rows, then the linear or
// fine-tuning protocol over a label-fraction x seed sweep. Images reach the protocols in one of
// three ways: the linear protocol streams them once through the frozen encoder and keeps features;
// fine-tuning keeps them in memory when they fit and otherwise reads batches through the threaded
// loader on every pass.
#include <convirt/pipeline/evaluate.h>

#include "open_dataset.h"

#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/data/loader.h>
#include <convirt/data/subsets.h>
#include <convirt/eval/finetune.h>
#include <convirt/eval/linear_probe.h>
#include <convirt/eval/streamed_set.h>
#include <convirt/io/checkpoint.h>
#include <convirt/pipeline/experiment.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

namespace convirt::pipeline {
namespace fs = std::filesystem;

DatasetKind parse_dataset_kind(const std::string& name) {
  if (name == "chexpert") return DatasetKind::kChexpert;
  if (name == "rsna") return DatasetKind::kRsna;
  if (name == "covidx") return DatasetKind::kCovidx;
  if (name == "mura") return DatasetKind::kMura;
  CONVIRT_CHECK_VALUE(false,
                      "dataset must be one of \"chexpert\", \"rsna\", \"covidx\", \"mura\", ",
                      "got \"", name, "\"");
  return DatasetKind::kChexpert;
}

std::string to_string(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kChexpert:
      return "chexpert";
    case DatasetKind::kRsna:
      return "rsna";
    case DatasetKind::kCovidx:
      return "covidx";
    case DatasetKind::kMura:
      return "mura";
  }
  return "chexpert";
}

std::string task_name(DatasetKind kind) {
  switch (kind) {
    case DatasetKind::kChexpert:
      return "CheXpert";
    case DatasetKind::kRsna:
      return "RSNA";
    case DatasetKind::kCovidx:
      return "COVIDx";
    case DatasetKind::kMura:
      return "MURA";
  }
  return "CheXpert";
}

Protocol parse_protocol(const std::string& name) {
  if (name == "linear") return Protocol::kLinear;
  if (name == "finetune") return Protocol::kFinetune;
  CONVIRT_CHECK_VALUE(false, "protocol must be \"linear\" or \"finetune\", got \"", name, "\"");
  return Protocol::kLinear;
}

std::string to_string(Protocol protocol) {
  return protocol == Protocol::kLinear ? "linear" : "finetune";
}

DataMode parse_data_mode(const std::string& name) {
  if (name == "auto") return DataMode::kAuto;
  if (name == "memory") return DataMode::kInMemory;
  if (name == "stream") return DataMode::kStream;
  CONVIRT_CHECK_VALUE(false, "data mode must be one of \"auto\", \"memory\", \"stream\", got \"",
                      name, "\"");
  return DataMode::kAuto;
}

std::string to_string(DataMode mode) {
  switch (mode) {
    case DataMode::kAuto:
      return "auto";
    case DataMode::kInMemory:
      return "memory";
    case DataMode::kStream:
      return "stream";
  }
  return "auto";
}

namespace {

using Rows = std::vector<int64_t>;

// The rows of a dataset that make up one split, with what the protocols need besides images.
struct Split {
  std::shared_ptr<const data::LabeledDataset> dataset;
  Rows rows;
  eval::LabeledSet labels;  // targets (+ mask, groups); inputs undefined
};

struct Splits {
  Split train, val, test;
  eval::ClassificationTask task = eval::ClassificationTask::kMultiLabel;
};

Rows all_rows(const data::Dataset& ds) {
  Rows r(static_cast<size_t>(ds.size()));
  for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<int64_t>(i);
  return r;
}

std::vector<std::string> group_ids(const data::LabeledDataset& ds, const Rows& rows,
                                   const std::string& level) {
  std::vector<std::string> ids;
  ids.reserve(rows.size());
  for (int64_t r : rows) {
    const auto& rec = ds.records()[static_cast<size_t>(r)];
    ids.push_back(level == "study" ? rec.study : rec.patient);
  }
  return ids;
}

// Splits `rows` of `ds` into (first, rest), stratified by label, keeping patients together.
std::pair<Rows, Rows> split_rows(const data::LabeledDataset& ds, const Rows& rows,
                                 double first_fraction, uint64_t seed) {
  auto index = torch::tensor(rows, torch::kLong);
  auto labels = ds.labels().index_select(0, index);
  auto [a, b] =
      data::stratified_split(labels, first_fraction, seed, group_ids(ds, rows, "patient"));
  Rows first, rest;
  for (int64_t i : a) first.push_back(rows[static_cast<size_t>(i)]);
  for (int64_t i : b) rest.push_back(rows[static_cast<size_t>(i)]);
  return {first, rest};
}

// Targets, mask and groups of a split, in the form the task wants.
eval::LabeledSet split_labels(const data::LabeledDataset& ds, const Rows& rows,
                              eval::ClassificationTask task, bool keep_mask,
                              const std::string& group_level) {
  auto index = torch::tensor(rows, torch::kLong);
  eval::LabeledSet s;
  auto y = ds.labels().index_select(0, index);
  if (task == eval::ClassificationTask::kMultiClass) {
    s.targets = y.argmax(1);
  } else {
    s.targets = y;
    auto m = ds.masks().index_select(0, index);
    // A mask of ones changes nothing but rules out the group metric, so it is kept only when it
    // hides something.
    if (keep_mask && m.eq(0).any().item<bool>()) s.mask = m;
  }
  if (!group_level.empty()) {
    // A MURA patient can have a normal and an abnormal study. The patient-level score averages
    // the image probabilities of a patient's images that share a label, so such a patient counts
    // once as normal and once as abnormal (the metric needs one label per group).
    std::map<std::string, int64_t> ids;
    std::vector<int64_t> groups;
    const auto names = group_ids(ds, rows, group_level);
    auto flat = y.reshape({y.size(0), -1}).gt(0.5).to(torch::kLong).contiguous();
    for (size_t i = 0; i < names.size(); ++i) {
      std::string key = names[i];
      for (int64_t l = 0; l < flat.size(1); ++l) {
        key += flat[static_cast<int64_t>(i)][l].item<int64_t>() ? "|1" : "|0";
      }
      groups.push_back(ids.emplace(key, static_cast<int64_t>(ids.size())).first->second);
    }
    s.groups = torch::tensor(groups, torch::kLong);
  }
  return s;
}

Splits make_splits(const EvaluateOptions& o, data::ImageTransform transform, int64_t channels) {
  CONVIRT_CHECK_VALUE(o.val_fraction() > 0 && o.val_fraction() < 1,
                      "val_fraction must be in (0, 1), got ", o.val_fraction());
  const std::string kind = to_string(o.dataset());
  Splits s;
  detail::DatasetFiles files = detail::dataset_files(o);
  files.train_csv = o.train_csv();
  files.skip_bad_rows = o.skip_bad_rows();
  auto opened = detail::open_dataset(files, std::move(transform), channels, /*with_train=*/true);
  auto train_ds = opened.train, test_ds = opened.test;
  const auto& group_level = opened.group_level;
  const bool keep_mask = opened.keep_mask;
  s.task = opened.task;
  Rows train_val, test_rows;
  for (const auto* ds : {train_ds.get(), test_ds.get()}) {
    if (ds->skipped().count() > 0) std::fprintf(stderr, "%s\n", ds->skipped().summary().c_str());
  }
  CONVIRT_CHECK_VALUE(train_ds->size() > 0, "dataset ", kind,
                      ": the training data has no usable row");
  CONVIRT_CHECK_VALUE(test_ds->size() > 0, "dataset ", kind, ": the test data has no usable row");
  if (o.dataset() == DatasetKind::kRsna) {
    // RSNA's public labels are one set: the test split is carved out of it first, by patient.
    CONVIRT_CHECK_VALUE(o.test_fraction() > 0 && o.test_fraction() < 1,
                        "test_fraction must be in (0, 1), got ", o.test_fraction());
    std::tie(train_val, test_rows) =
        split_rows(*train_ds, all_rows(*train_ds), 1.0 - o.test_fraction(), o.split_seed());
  } else {
    train_val = all_rows(*train_ds);
    test_rows = all_rows(*test_ds);
  }
  auto [train_rows, val_rows] =
      split_rows(*train_ds, train_val, 1.0 - o.val_fraction(), o.split_seed() + 1);
  CONVIRT_CHECK_VALUE(!train_rows.empty() && !val_rows.empty() && !test_rows.empty(), "dataset ",
                      kind, " is too small to split: ", train_rows.size(), " train, ",
                      val_rows.size(), " val, ", test_rows.size(), " test rows");
  auto make = [&](std::shared_ptr<data::LabeledDataset> ds, Rows rows) {
    Split sp;
    sp.labels = split_labels(*ds, rows, s.task, keep_mask, group_level);
    sp.dataset = std::move(ds);
    sp.rows = std::move(rows);
    return sp;
  };
  s.train = make(train_ds, train_rows);
  s.val = make(train_ds, val_rows);
  s.test = make(test_ds, test_rows);
  return s;
}

// Reads the images of `split` rows batch by batch through the threaded loader. The rows were
// checked by readable_split, so every image must still be readable: a skipped image would shift
// labels against images, so one that became unreadable since is an error naming the file.
eval::BatchReader loader_reader(const Split& split, int64_t workers) {
  auto dataset = split.dataset;
  auto rows = split.rows;
  return [dataset, rows, workers](const std::vector<torch::Tensor>& batches,
                                  const eval::BatchConsumer& consume) {
    if (batches.empty()) return;
    std::vector<int64_t> order;
    for (const auto& b : batches) {
      auto idx = b.to(torch::kCPU).to(torch::kLong).contiguous();
      const int64_t* p = idx.data_ptr<int64_t>();
      for (int64_t i = 0; i < idx.numel(); ++i) order.push_back(rows.at(static_cast<size_t>(p[i])));
    }
    const int64_t total = static_cast<int64_t>(order.size());
    const int64_t batch_size = std::max<int64_t>(1, batches.front().size(0));
    auto view = std::make_shared<data::SubsetDataset>(dataset, std::move(order));
    data::Loader loader(view, data::LoaderOptions()
                                  .batch_size(batch_size)
                                  .shuffle(false)
                                  .drop_last(false)
                                  .workers(std::max<int64_t>(workers, 0))
                                  .max_bad_fraction(-1));
    std::vector<torch::Tensor> pending;
    int64_t have = 0, loaded = 0;
    size_t k = 0;
    while (k < batches.size()) {
      auto b = loader.next();
      if (!b) break;
      const int64_t expected = std::min(batch_size, total - loaded);
      CONVIRT_CHECK(b->size() == expected,
                    "streamed data needs every image to stay readable (an image that could be read "
                    "when the split was checked no longer can): ",
                    loader.bad_samples().summary());
      loaded += expected;
      pending.push_back(b->images);
      have += expected;
      while (k < batches.size() && have >= batches[k].size(0)) {
        auto all = pending.size() == 1 ? pending.front() : torch::cat(pending);
        const int64_t need = batches[k].size(0);
        auto x = all.narrow(0, 0, need);
        pending = {all.narrow(0, need, have - need)};
        have -= need;
        ++k;
        if (!consume(x)) return;
      }
    }
  };
}

// Every image of a split decoded once, in row order, each batch handed to `fn`; returns the
// positions (into split.rows) of the images that could be read. Unreadable images are skipped, like
// everywhere else in the library (the loader fails past 5%), listed on stderr and added to `*bad`.
// Both data modes go through here, so a bad image is skipped, counted, budgeted and reported the
// same way whether the images are then kept in memory or streamed.
std::vector<int64_t> decode_rows(const Split& split, const char* name, int64_t workers,
                                 int64_t batch_size,
                                 const std::function<void(const torch::Tensor&)>& fn,
                                 int64_t* bad) {
  auto view = std::make_shared<data::SubsetDataset>(split.dataset, split.rows);
  data::Loader loader(view, data::LoaderOptions()
                                .batch_size(batch_size)
                                .shuffle(false)
                                .drop_last(false)
                                .workers(std::max<int64_t>(workers, 0))
                                .max_bad_fraction(0.05));
  std::vector<int64_t> kept;
  while (auto b = loader.next()) {
    if (b->size() == 0) continue;
    fn(b->images);
    kept.insert(kept.end(), b->indices.begin(), b->indices.end());
  }
  CONVIRT_CHECK(!kept.empty(), "no image of the ", name,
                " split could be read: ", loader.bad_samples().summary());
  const int64_t n = loader.bad_samples().count();
  if (n > 0) {
    *bad += n;
    std::fprintf(stderr, "[evaluate] %s split: skipped %s\n", name,
                 loader.bad_samples().summary().c_str());
  }
  return kept;
}

// Every image of a split decoded once and mapped through `fn` (identity: keep the images; the
// frozen encoder: keep only features); the rows of unreadable images leave the labels too.
eval::LabeledSet decode_split(const Split& split, const char* name, int64_t workers,
                              int64_t batch_size,
                              const std::function<torch::Tensor(const torch::Tensor&)>& fn,
                              int64_t* bad) {
  std::vector<torch::Tensor> out;
  const auto kept = decode_rows(
      split, name, workers, batch_size, [&](const torch::Tensor& x) { out.push_back(fn(x)); }, bad);
  eval::LabeledSet s = split.labels.select(torch::tensor(kept, torch::kLong));
  s.inputs = torch::cat(out);
  return s;
}

// The split without the rows whose image cannot be read, for streaming: the images are decoded once
// (and dropped) so that the streamed protocol trains and tests on exactly the rows the in-memory
// one keeps.
Split readable_split(const Split& split, const char* name, int64_t workers, int64_t* bad) {
  const auto kept = decode_rows(
      split, name, workers, 64, [](const torch::Tensor&) {}, bad);
  if (kept.size() == split.rows.size()) return split;
  Split out;
  out.dataset = split.dataset;
  for (int64_t k : kept) out.rows.push_back(split.rows[static_cast<size_t>(k)]);
  out.labels = split.labels.select(torch::tensor(kept, torch::kLong));
  return out;
}

}  // namespace

std::string method_name_for(const std::string& model_path) {
  const fs::path p(model_path);
  const std::string stem = p.stem().string();
  // `convirt pretrain` names its output model.pt / best_model.pt: the run folder says more.
  if ((stem == "model" || stem == "best_model") && p.has_parent_path() &&
      !p.parent_path().filename().empty()) {
    return p.parent_path().filename().string();
  }
  return stem;
}

eval::Results evaluate(const EvaluateOptions& o, const EvaluateCallback& on_run) {
  CONVIRT_CHECK_VALUE(!o.model_path().empty(), "model_path must name a convirt checkpoint");
  CONVIRT_CHECK_VALUE(fs::exists(o.model_path()), "model_path must name an existing file, got '",
                      o.model_path(), "'");
  CONVIRT_CHECK_VALUE(o.seeds() > 0, "seeds must be > 0, got ", o.seeds());
  CONVIRT_CHECK_VALUE(o.image_size() >= 0, "image_size must be >= 0 (0 = the model's), got ",
                      o.image_size());
  CONVIRT_CHECK_VALUE(o.learning_rate() >= 0, "learning_rate must be >= 0 (0 = the paper's), got ",
                      o.learning_rate());
  CONVIRT_CHECK_VALUE(o.max_memory_bytes() >= 0, "max_memory_bytes must be >= 0, got ",
                      o.max_memory_bytes());
  CONVIRT_CHECK_VALUE(o.workers() >= 0, "workers must be >= 0, got ", o.workers());
  CONVIRT_CHECK_VALUE(o.threads() >= 0, "threads must be >= 0 (0 = all cores), got ", o.threads());
  set_num_threads(static_cast<int>(o.threads()));
  std::vector<double> fractions = o.fractions();
  if (fractions.empty()) {
    // Paper section 6: COVIDx is evaluated at 10% and all labels only (1% is 136 images).
    fractions = o.dataset() == DatasetKind::kCovidx ? std::vector<double>{0.1, 1.0}
                                                    : std::vector<double>{0.01, 0.1, 1.0};
  }
  for (double f : fractions) {
    CONVIRT_CHECK_VALUE(f > 0 && f <= 1, "fractions must be in (0, 1], got ", f);
  }
  const torch::Device device =
      torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  auto load_model = [&]() {
    auto m = io::load_convirt(o.model_path());
    m->to(device);
    return m;
  };
  auto model = load_model();
  const int64_t size = o.image_size() > 0 ? o.image_size() : model->config().image_size();
  const int64_t channels = model->config().image_channels();
  const std::string task = task_name(o.dataset());
  const std::string protocol = to_string(o.protocol());
  const std::string method =
      o.method_name().empty() ? method_name_for(o.model_path()) : o.method_name();
  Splits splits = make_splits(o, eval_transform(size), channels);
  if (o.verbose()) {
    std::fprintf(stderr, "[evaluate] %s %s: %zu train, %zu val, %zu test images\n", task.c_str(),
                 protocol.c_str(), splits.train.rows.size(), splits.val.rows.size(),
                 splits.test.rows.size());
  }

  const double lr = o.learning_rate() > 0 ? o.learning_rate()
                                          : (o.dataset() == DatasetKind::kCovidx ? 1e-3 : 1e-4);
  auto classifier = eval::ClassifierOptions(splits.task)
                        .learning_rate(lr)
                        .batch_size(o.batch_size())
                        .max_epochs(o.max_epochs())
                        .max_steps(o.max_steps());

  // The run function of the sweep and whether its images are streamed.
  std::function<double(const torch::Tensor& rows, uint64_t seed)> run;
  bool streamed = false;
  int64_t bad_images = 0;  // unreadable images skipped over the three splits
  eval::LabeledSet mem_train, mem_val, mem_test;
  eval::StreamedSet st_train, st_val, st_test;
  if (o.protocol() == Protocol::kLinear) {
    auto encoder = image_encoder(model);
    encoder.set_training(false);
    auto with_features = [&](const Split& sp, const char* name) {
      return decode_split(
          sp, name, o.workers(), 64,
          [&](const torch::Tensor& images) { return eval::extract_features(encoder, images); },
          &bad_images);
    };
    mem_train = with_features(splits.train, "train");
    mem_val = with_features(splits.val, "val");
    mem_test = with_features(splits.test, "test");
    run = [&](const torch::Tensor& rows, uint64_t seed) {
      // Batches of [64, D]: one thread avoids OpenMP synchronisation that costs more than the math.
      return eval::train_linear_probe(mem_train.select(rows), mem_val, mem_test,
                                      eval::ClassifierOptions(classifier).seed(seed).num_threads(1))
          .test_metric;
    };
  } else {
    const int64_t images = static_cast<int64_t>(splits.train.rows.size() + splits.val.rows.size() +
                                                splits.test.rows.size());
    const int64_t bytes = images * channels * size * size * static_cast<int64_t>(sizeof(float));
    streamed = o.data_mode() == DataMode::kStream ||
               (o.data_mode() == DataMode::kAuto && bytes > o.max_memory_bytes());
    if (o.verbose()) {
      std::fprintf(stderr, "[evaluate] fine-tuning on %s images (%.1f MB decoded)\n",
                   streamed ? "streamed" : "in-memory", static_cast<double>(bytes) / 1e6);
    }
    auto ft = [&](uint64_t seed) {
      return eval::FinetuneOptions(eval::ClassifierOptions(classifier).seed(seed))
          .warmup_steps(o.warmup_steps())
          .warmup_learning_rate(o.warmup_learning_rate())
          .device(device);
    };
    if (streamed) {
      auto make = [&](const Split& all, const char* name) {
        const Split sp = readable_split(all, name, o.workers(), &bad_images);
        return eval::StreamedSet{sp.labels.targets, sp.labels.mask, sp.labels.groups,
                                 loader_reader(sp, o.workers())};
      };
      st_train = make(splits.train, "train");
      st_val = make(splits.val, "val");
      st_test = make(splits.test, "test");
      run = [&, ft](const torch::Tensor& rows, uint64_t seed) {
        auto fresh = load_model();
        return eval::finetune(image_encoder(fresh), st_train.select(rows), st_val, st_test,
                              ft(seed))
            .test_metric;
      };
    } else {
      auto with_images = [&](const Split& sp, const char* name) {
        return decode_split(
            sp, name, o.workers(), 128, [](const torch::Tensor& x) { return x; }, &bad_images);
      };
      mem_train = with_images(splits.train, "train");
      mem_val = with_images(splits.val, "val");
      mem_test = with_images(splits.test, "test");
      run = [&, ft](const torch::Tensor& rows, uint64_t seed) {
        auto fresh = load_model();
        return eval::finetune(image_encoder(fresh), mem_train.select(rows), mem_val, mem_test,
                              ft(seed))
            .test_metric;
      };
    }
  }

  // Rows of the training split as the protocol sees it (in-memory modes drop unreadable images).
  const int64_t n_train = streamed ? st_train.size() : mem_train.size();
  const int64_t total = static_cast<int64_t>(fractions.size()) * o.seeds();
  int64_t done = 0;
  std::vector<eval::SweepCell> cells;
  for (double f : fractions) {
    std::vector<double> values;
    for (int64_t i = 0; i < o.seeds(); ++i) {
      const uint64_t seed = o.first_seed() + static_cast<uint64_t>(i);
      const auto t0 = std::chrono::steady_clock::now();
      // The same rows eval::subsample would keep, so both data modes train on the same subsets.
      auto rows = eval::subsample_indices(n_train, f, seed);
      const double metric = run(rows, seed);
      values.push_back(metric);
      EvaluateProgress p;
      p.method = method;
      p.task = task;
      p.protocol = protocol;
      p.fraction = f;
      p.seed = seed;
      p.run = ++done;
      p.total_runs = total;
      p.metric = metric;
      p.train_examples = rows.size(0);
      p.streamed = streamed;
      p.bad_images = bad_images;
      p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (o.verbose()) {
        std::fprintf(stderr, "[evaluate] %s %s %s fraction %g seed %llu: %.4f (%lld/%lld, %.1fs)\n",
                     method.c_str(), task.c_str(), protocol.c_str(), f,
                     static_cast<unsigned long long>(seed), metric, static_cast<long long>(done),
                     static_cast<long long>(total), p.seconds);
      }
      if (on_run) on_run(p);
    }
    cells.push_back(eval::summarize(values, f));
  }
  eval::Results results;
  eval::add_sweep(results, protocol, method, task, cells);
  return results;
}

}  // namespace convirt::pipeline
