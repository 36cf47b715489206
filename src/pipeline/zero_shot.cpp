// pipeline::zero_shot: prompt files, class embeddings from prompt ensembles, and the test split of
// one of the paper's labelled datasets scored by cosine similarity.
#include <convirt/pipeline/zero_shot.h>

#include "open_dataset.h"

#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/data/loader.h>
#include <convirt/data/subsets.h>
#include <convirt/eval/metrics.h>
#include <convirt/io/checkpoint.h>
#include <convirt/pipeline/experiment.h>
#include <convirt/pipeline/model_text.h>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace convirt::pipeline {
namespace detail {
// Generated from resources/prompts/default.json (src/pipeline/CMakeLists.txt), so the compiled-in
// defaults and the shipped example file cannot drift apart.
const char* default_prompts_json();
}  // namespace detail

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "\"" : ", \"") + n + "\"";
  return out.empty() ? "none" : out;
}

std::vector<std::string> read_sentences(const Json& j, const std::string& source,
                                        const std::string& label, const std::string& key) {
  const std::string where = source + ": labels[\"" + label + "\"][\"" + key + "\"]";
  CONVIRT_CHECK_VALUE(j.is_array(), where, " must be a list of sentences, got ", j.type_name());
  CONVIRT_CHECK_VALUE(!j.empty(), where, " must hold at least one sentence, got an empty list");
  std::vector<std::string> out;
  for (size_t i = 0; i < j.size(); ++i) {
    CONVIRT_CHECK_VALUE(j[i].is_string(), where, "[", i, "] must be a string, got ",
                        j[i].type_name());
    out.push_back(j[i].get<std::string>());
    CONVIRT_CHECK_VALUE(!out.back().empty(), where, "[", i, "] must not be an empty string");
  }
  return out;
}

}  // namespace

void PromptSet::set(const std::string& label, ClassPrompts prompts) {
  CONVIRT_CHECK_VALUE(!label.empty(), "PromptSet: label must not be empty");
  CONVIRT_CHECK_VALUE(!prompts.positive.empty(), "PromptSet: label \"", label,
                      "\" needs at least one positive prompt");
  for (auto& [name, p] : entries_) {
    if (name == label) {
      p = std::move(prompts);
      return;
    }
  }
  entries_.emplace_back(label, std::move(prompts));
}

bool PromptSet::contains(const std::string& label) const {
  const std::string l = lower(label);
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const auto& e) { return e.first == label || lower(e.first) == l; });
}

const ClassPrompts& PromptSet::at(const std::string& label) const {
  for (const auto& [name, p] : entries_) {
    if (name == label) return p;
  }
  const ClassPrompts* found = nullptr;
  int matches = 0;
  for (const auto& [name, p] : entries_) {
    if (lower(name) == lower(label)) {
      found = &p;
      ++matches;
    }
  }
  CONVIRT_CHECK_VALUE(matches == 1, "prompts: label \"", label, "\" ",
                      matches == 0 ? "has no prompts" : "matches several labels ignoring case",
                      "; the prompts cover ", joined(labels()));
  return *found;
}

std::vector<std::string> PromptSet::labels() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.first);
  return out;
}

PromptSet PromptSet::from_json(const std::string& text, const std::string& source) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    CONVIRT_CHECK_VALUE(false, source, ": not valid JSON: ", e.what());
  }
  CONVIRT_CHECK_VALUE(root.is_object() && root.contains("labels"), source,
                      ": must be an object with a \"labels\" key, got ", root.dump().substr(0, 80));
  const Json& labels = root["labels"];
  CONVIRT_CHECK_VALUE(labels.is_object(), source,
                      ": \"labels\" must be an object of label -> prompts, got ",
                      labels.type_name());
  CONVIRT_CHECK_VALUE(!labels.empty(), source, ": \"labels\" must name at least one label");
  PromptSet set;
  for (const auto& [label, entry] : labels.items()) {
    CONVIRT_CHECK_VALUE(entry.is_object(), source, ": labels[\"", label,
                        "\"] must be an object with \"positive\" (and \"negative\") lists, got ",
                        entry.type_name());
    CONVIRT_CHECK_VALUE(entry.contains("positive"), source, ": labels[\"", label,
                        "\"] is missing the key \"positive\"");
    for (const auto& [key, value] : entry.items()) {
      (void)value;
      CONVIRT_CHECK_VALUE(key == "positive" || key == "negative", source, ": labels[\"", label,
                          "\"] has the unknown key \"", key,
                          "\" (expected \"positive\" and \"negative\")");
    }
    ClassPrompts p;
    p.positive = read_sentences(entry["positive"], source, label, "positive");
    if (entry.contains("negative")) {
      p.negative = read_sentences(entry["negative"], source, label, "negative");
    }
    set.set(label, std::move(p));
  }
  return set;
}

PromptSet PromptSet::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "prompts must name a readable JSON file, got '", path, "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str(), path);
}

std::string PromptSet::to_json(int indent) const {
  Json labels = Json::object();
  for (const auto& [name, p] : entries_) {
    Json e = Json::object();
    e["positive"] = p.positive;
    if (!p.negative.empty()) e["negative"] = p.negative;
    labels[name] = e;
  }
  Json root = Json::object();
  root["labels"] = labels;
  return root.dump(indent) + "\n";
}

const PromptSet& default_prompts() {
  static const PromptSet prompts =
      PromptSet::from_json(detail::default_prompts_json(), "default prompts");
  return prompts;
}

torch::Tensor prompt_embedding(models::ConVIRTModel& model,
                               const text::WordPieceTokenizer& tokenizer,
                               const std::vector<std::string>& sentences) {
  CONVIRT_CHECK_VALUE(!sentences.empty(), "prompt_embedding: sentences must not be empty");
  torch::NoGradGuard no_grad;
  model->eval();
  const auto device = model->parameters().front().device();
  auto enc = tokenizer.encode_batch(sentences, model->config().max_length());
  auto u = model->encode_text(enc.input_ids.to(device), enc.attention_mask.to(device));
  // Each sentence counts equally whatever the norm of its embedding.
  auto mean = torch::nn::functional::normalize(u.to(torch::kFloat),
                                               torch::nn::functional::NormalizeFuncOptions().dim(1))
                  .mean(0);
  return mean / mean.norm().clamp_min(1e-12);
}

torch::Tensor zero_shot_scores(models::ConVIRTModel& model,
                               const text::WordPieceTokenizer& tokenizer,
                               const torch::Tensor& image_emb,
                               const std::vector<std::string>& labels, const PromptSet& prompts,
                               eval::ClassificationTask task) {
  CONVIRT_CHECK_VALUE(image_emb.dim() == 2, "image_emb must be 2-D [N, D], got ",
                      convirt::detail::shape_str(image_emb.sizes()));
  CONVIRT_CHECK_VALUE(!labels.empty(), "labels must name at least one label");
  torch::NoGradGuard no_grad;
  auto v = torch::nn::functional::normalize(image_emb.to(torch::kCPU).to(torch::kFloat),
                                            torch::nn::functional::NormalizeFuncOptions().dim(1));
  auto sim = [&](const std::vector<std::string>& sentences) {
    auto t = prompt_embedding(model, tokenizer, sentences).to(torch::kCPU);
    CONVIRT_CHECK_VALUE(t.size(0) == v.size(1), "image_emb must have the model's embedding width ",
                        t.size(0), ", got ", convirt::detail::shape_str(image_emb.sizes()));
    return v.matmul(t);
  };
  std::vector<torch::Tensor> columns;
  for (const auto& label : labels) {
    const ClassPrompts& p = prompts.at(label);
    auto s = sim(p.positive);
    if (task == eval::ClassificationTask::kMultiLabel && !p.negative.empty())
      s = s - sim(p.negative);
    columns.push_back(s);
  }
  return torch::stack(columns, 1);
}

namespace {

// The test rows of a dataset with their targets (multi-label [N, L] 0/1; multi-class [N] ids),
// mask and groups, before images are read.
struct TestSplit {
  std::shared_ptr<const data::LabeledDataset> dataset;
  std::vector<int64_t> rows;
  eval::LabeledSet labels;
  eval::ClassificationTask task = eval::ClassificationTask::kMultiLabel;
};

TestSplit test_split(const ZeroShotOptions& o, data::ImageTransform transform, int64_t channels) {
  const std::string kind = to_string(o.dataset());
  TestSplit s;
  detail::DatasetFiles files = detail::dataset_files(o);
  files.skip_bad_rows = o.skip_bad_rows();
  auto opened = detail::open_dataset(files, std::move(transform), channels, /*with_train=*/false);
  std::shared_ptr<data::LabeledDataset> ds = opened.test;
  const bool keep_mask = opened.keep_mask;
  const auto& group_level = opened.group_level;
  s.task = opened.task;
  if (ds->skipped().count() > 0) std::fprintf(stderr, "%s\n", ds->skipped().summary().c_str());
  CONVIRT_CHECK_VALUE(ds->size() > 0, "dataset ", kind, ": the test data has no usable row");
  std::vector<std::string> patients;
  for (const auto& r : ds->records()) patients.push_back(r.patient);
  if (o.dataset() == DatasetKind::kRsna) {
    // The same carve-out as pipeline::evaluate: RSNA's public labels are one set, and its test
    // split is the second part of a patient-grouped stratified split.
    CONVIRT_CHECK_VALUE(o.test_fraction() > 0 && o.test_fraction() < 1,
                        "test_fraction must be in (0, 1), got ", o.test_fraction());
    s.rows = data::stratified_split(ds->labels(), 1.0 - o.test_fraction(), o.split_seed(), patients)
                 .second;
    CONVIRT_CHECK_VALUE(!s.rows.empty(), "dataset rsna is too small for a test split of ",
                        o.test_fraction());
  } else {
    s.rows.resize(static_cast<size_t>(ds->size()));
    for (size_t i = 0; i < s.rows.size(); ++i) s.rows[i] = static_cast<int64_t>(i);
  }
  auto index = torch::tensor(s.rows, torch::kLong);
  auto y = ds->labels().index_select(0, index);
  if (s.task == eval::ClassificationTask::kMultiClass) {
    s.labels.targets = y.argmax(1);
  } else {
    s.labels.targets = y;
    auto m = ds->masks().index_select(0, index);
    if (keep_mask && m.eq(0).any().item<bool>()) s.labels.mask = m;
  }
  if (!group_level.empty()) {
    // As pipeline::evaluate: a patient with a normal and an abnormal study is one group per label.
    std::map<std::string, int64_t> ids;
    std::vector<int64_t> groups;
    for (size_t i = 0; i < s.rows.size(); ++i) {
      const auto& rec = ds->records()[static_cast<size_t>(s.rows[i])];
      const std::string key = (group_level == "study" ? rec.study : rec.patient) +
                              (y[static_cast<int64_t>(i)][0].item<double>() > 0.5 ? "|1" : "|0");
      groups.push_back(ids.emplace(key, static_cast<int64_t>(ids.size())).first->second);
    }
    s.labels.groups = torch::tensor(groups, torch::kLong);
  }
  s.dataset = std::move(ds);
  return s;
}

// Projected embeddings of every readable test image, in row order, with the labels of those rows.
eval::LabeledSet embed_split(const TestSplit& split, models::ConVIRTModel& model,
                             const torch::Device& device, int64_t batch_size, int64_t workers) {
  auto view = std::make_shared<data::SubsetDataset>(split.dataset, split.rows);
  data::Loader loader(view, data::LoaderOptions()
                                .batch_size(batch_size)
                                .shuffle(false)
                                .drop_last(false)
                                .workers(workers)
                                .max_bad_fraction(0.05));
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> out;
  std::vector<int64_t> kept;
  while (auto b = loader.next()) {
    if (b->size() == 0) continue;
    out.push_back(model->encode_image(b->images.to(device)).to(torch::kCPU));
    kept.insert(kept.end(), b->indices.begin(), b->indices.end());
  }
  CONVIRT_CHECK(!out.empty(), "no test image could be read: ", loader.bad_samples().summary());
  if (loader.bad_samples().count() > 0) {
    std::fprintf(stderr, "%s\n", loader.bad_samples().summary().c_str());
  }
  eval::LabeledSet s = split.labels.select(torch::tensor(kept, torch::kLong));
  s.inputs = torch::cat(out);
  return s;
}

}  // namespace

ZeroShotResult zero_shot(const ZeroShotOptions& o) {
  CONVIRT_CHECK_VALUE(!o.model_path().empty(), "model_path must name a convirt checkpoint");
  CONVIRT_CHECK_VALUE(fs::exists(o.model_path()), "model_path must name an existing file, got '",
                      o.model_path(), "'");
  CONVIRT_CHECK_VALUE(o.image_size() >= 0, "image_size must be >= 0 (0 = the model's), got ",
                      o.image_size());
  CONVIRT_CHECK_VALUE(o.batch_size() > 0, "batch_size must be > 0, got ", o.batch_size());
  CONVIRT_CHECK_VALUE(o.workers() >= 0, "workers must be >= 0, got ", o.workers());
  CONVIRT_CHECK_VALUE(o.threads() >= 0, "threads must be >= 0 (0 = all cores), got ", o.threads());
  // Prompts and vocabulary are checked before any image is read: their errors are the likely ones.
  const PromptSet prompts = !o.prompts_path().empty() ? PromptSet::load(o.prompts_path())
                            : !o.prompts().empty()    ? o.prompts()
                                                      : default_prompts();
  set_num_threads(static_cast<int>(o.threads()));
  const torch::Device device =
      torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  auto model = io::load_convirt(o.model_path());
  auto tokenizer_ptr = model_tokenizer(*model, o.vocab(), o.model_path());
  const text::WordPieceTokenizer& tokenizer = *tokenizer_ptr;
  model->to(device);
  const int64_t size = o.image_size() > 0 ? o.image_size() : model->config().image_size();
  const int64_t channels = model->config().image_channels();

  TestSplit split = test_split(o, eval_transform(size), channels);
  ZeroShotResult r;
  r.method = o.method_name().empty() ? method_name_for(o.model_path()) : o.method_name();
  r.task = task_name(o.dataset());
  r.labels = split.dataset->label_names();
  for (const auto& l : r.labels) (void)prompts.at(l);  // a missing label fails before the images
  eval::LabeledSet test = embed_split(split, model, device, o.batch_size(), o.workers());
  r.images = test.size();
  auto scores = zero_shot_scores(model, tokenizer, test.inputs, r.labels, prompts, split.task);
  if (split.task == eval::ClassificationTask::kMultiClass) {
    r.metric_name = "accuracy";
    r.metric = eval::accuracy(scores, test.targets);
  } else if (test.groups.defined()) {
    r.metric_name = "group_auc";
    r.metric = eval::grouped_roc_auc(scores, test.targets, test.groups);
    r.per_label = {r.metric};
  } else {
    auto auc = eval::multilabel_roc_auc(scores, test.targets, test.mask);
    r.metric_name = r.labels.size() == 1 ? "auc" : "mean_auc";
    r.metric = auc.mean;
    r.per_label = auc.per_label;
  }
  if (o.verbose()) {
    std::fprintf(stderr, "[zeroshot] %s %s: %s %.4f on %lld images\n", r.method.c_str(),
                 r.task.c_str(), r.metric_name.c_str(), r.metric, static_cast<long long>(r.images));
  }
  return r;
}

void add_zero_shot(eval::Results& results, const ZeroShotResult& result) {
  results.set_zero_shot(result.method, result.task, 100.0 * result.metric);
}

}  // namespace convirt::pipeline
