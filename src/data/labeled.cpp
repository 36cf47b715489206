#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/chexpert.h>
#include <convirt/data/datasets/covidx.h>
#include <convirt/data/datasets/mura.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/datasets/rsna.h>
#include <convirt/data/limits.h>
#include <convirt/text/report.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "common.h"

namespace fs = std::filesystem;

namespace convirt::data {
namespace {

bool file_exists(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// CheXpert label cell: "1.0", "0.0", "-1.0", "" or (some exports) "1", "0", "-1".
bool parse_label(const std::string& cell, double* value) {
  std::string s = detail::trim(cell);
  if (s.empty()) {
    *value = std::nan("");
    return true;
  }
  try {
    size_t used = 0;
    double v = std::stod(s, &used);
    if (used != s.size() || !(v == 1.0 || v == 0.0 || v == -1.0)) return false;
    *value = v;
    return true;
  } catch (...) {
    return false;
  }
}

// "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg" -> ("patient00001/study1",
// "patient00001"); paths without that shape fall back to the parent folder.
std::pair<std::string, std::string> chexpert_groups(const std::string& path) {
  std::vector<std::string> parts;
  for (const auto& p : fs::path(path)) parts.push_back(p.string());
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i].rfind("patient", 0) == 0) {
      std::string study = i + 2 < parts.size() ? parts[i] + "/" + parts[i + 1] : parts[i];
      return {study, parts[i]};
    }
  }
  std::string parent = fs::path(path).parent_path().string();
  return {parent, parent};
}

// A LabeledDataset that readers without their own class fill record by record.
class RecordList : public LabeledDataset {
 public:
  RecordList(std::vector<std::string> names, ImageTransform transform, int64_t channels) {
    label_names_ = std::move(names);
    transform_ = std::move(transform);
    channels_ = channels;
  }
  void add(LabeledRecord r) { records_.push_back(std::move(r)); }
  void skip(const std::string& path, const std::string& reason) {
    skipped_.record({-1, path, reason});
  }
  void finish(int64_t total, double max_bad_fraction, const std::string& what) {
    validate();
    skipped_.check_threshold(total, max_bad_fraction, what);
  }
};

}  // namespace

UncertainPolicy parse_uncertain_policy(const std::string& name) {
  const std::string n = detail::lower(name);
  if (n == "zeros" || n == "zero" || n == "u-zeros") return UncertainPolicy::kZeros;
  if (n == "ones" || n == "one" || n == "u-ones") return UncertainPolicy::kOnes;
  if (n == "ignore" || n == "mask") return UncertainPolicy::kIgnore;
  CONVIRT_CHECK_VALUE(false, "uncertain policy must be one of 'zeros', 'ones', 'ignore', got '",
                      name, "'");
  return UncertainPolicy::kZeros;
}

std::string to_string(UncertainPolicy policy) {
  switch (policy) {
    case UncertainPolicy::kZeros:
      return "zeros";
    case UncertainPolicy::kOnes:
      return "ones";
    case UncertainPolicy::kIgnore:
      return "ignore";
  }
  return "zeros";
}

LabeledDataset::LabeledDataset(std::vector<LabeledRecord> records,
                               std::vector<std::string> label_names, ImageTransform transform,
                               int64_t channels)
    : records_(std::move(records)),
      label_names_(std::move(label_names)),
      transform_(std::move(transform)),
      channels_(channels) {
  validate();
}

void LabeledDataset::validate() const {
  detail::check_channels(channels_, "LabeledDataset");
  for (size_t i = 0; i < records_.size(); ++i) {
    const auto& r = records_[i];
    CONVIRT_CHECK_VALUE(r.labels.size() == label_names_.size(), "LabeledDataset: record ", i,
                        " must have ", label_names_.size(), " labels, got ", r.labels.size());
    CONVIRT_CHECK_VALUE(r.mask.empty() || r.mask.size() == r.labels.size(),
                        "LabeledDataset: record ", i, " mask must be empty or have ",
                        r.labels.size(), " entries, got ", r.mask.size());
  }
}

Example LabeledDataset::get(int64_t index, uint64_t seed) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  const auto& r = records_[static_cast<size_t>(index)];
  Example e;
  e.path = r.image;
  e.image = detail::finish_image(detail::load_image(r.image, channels_), transform_,
                                 detail::mix64(seed, 3), channels_, r.image);
  const auto n = static_cast<int64_t>(r.labels.size());
  e.labels = at::from_blob(const_cast<float*>(r.labels.data()), {n}, at::kFloat).clone();
  e.mask = r.mask.empty()
               ? at::ones({n}, at::kFloat)
               : at::from_blob(const_cast<float*>(r.mask.data()), {n}, at::kFloat).clone();
  e.study = r.study;
  e.patient = r.patient;
  e.index = index;
  return e;
}

std::string LabeledDataset::source(int64_t index) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  return records_[static_cast<size_t>(index)].image;
}

at::Tensor LabeledDataset::labels() const {
  const auto n = size();
  const auto l = static_cast<int64_t>(label_names_.size());
  auto out = at::zeros({n, l}, at::kFloat);
  auto a = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < l; ++j)
      a[i][j] = records_[static_cast<size_t>(i)].labels[static_cast<size_t>(j)];
  }
  return out;
}

at::Tensor LabeledDataset::masks() const {
  const auto n = size();
  const auto l = static_cast<int64_t>(label_names_.size());
  auto out = at::ones({n, l}, at::kFloat);
  auto a = out.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& m = records_[static_cast<size_t>(i)].mask;
    for (int64_t j = 0; j < l && !m.empty(); ++j) a[i][j] = m[static_cast<size_t>(j)];
  }
  return out;
}

std::vector<std::string> chexpert_paper_labels() {
  return {"Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"};
}

std::vector<std::string> chexpert_all_labels() {
  return {"No Finding",       "Enlarged Cardiomediastinum",
          "Cardiomegaly",     "Lung Opacity",
          "Lung Lesion",      "Edema",
          "Consolidation",    "Pneumonia",
          "Atelectasis",      "Pneumothorax",
          "Pleural Effusion", "Pleural Other",
          "Fracture",         "Support Devices"};
}

ChexpertDataset::ChexpertDataset(const std::string& csv_path, ChexpertOptions options)
    : options_(std::move(options)) {
  label_names_ = options_.labels();
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "ChexpertDataset");
  CONVIRT_CHECK_VALUE(!label_names_.empty(), "ChexpertDataset: labels must not be empty");
  auto table = read_csv(csv_path);
  const auto c_path = table.require_column("Path");
  const auto c_frontal = table.column("Frontal/Lateral");
  std::vector<int64_t> cols;
  for (const auto& l : label_names_) cols.push_back(table.require_column(l));
  const fs::path root = options_.image_root().empty() ? fs::path(csv_path).parent_path()
                                                      : fs::path(options_.image_root());
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    if (options_.frontal_only() && c_frontal >= 0 && row[c_frontal] != "Frontal") continue;
    const auto path = detail::resolve_path(root, row[c_path]);
    if (!file_exists(path)) {
      skipped_.record({-1, path.string(), "missing file"});
      continue;
    }
    LabeledRecord r;
    r.image = path.string();
    bool ok = true;
    for (size_t j = 0; j < cols.size() && ok; ++j) {
      double v = 0;
      if (!parse_label(row[cols[j]], &v)) {
        skipped_.record({-1, csv_path + " row " + std::to_string(i + 2),
                         "label '" + label_names_[j] + "' must be 1.0, 0.0, -1.0 or blank, got '" +
                             row[cols[j]] + "'"});
        ok = false;
        break;
      }
      float label = 0.f, mask = 1.f;
      if (std::isnan(v)) {
        mask = options_.blank_is_negative() ? 1.f : 0.f;
      } else if (v == -1.0) {
        switch (options_.uncertain()) {
          case UncertainPolicy::kZeros:
            label = 0.f;
            break;
          case UncertainPolicy::kOnes:
            label = 1.f;
            break;
          case UncertainPolicy::kIgnore:
            mask = 0.f;
            break;
        }
      } else {
        label = static_cast<float>(v);
      }
      r.labels.push_back(label);
      r.mask.push_back(mask);
    }
    if (!ok) continue;
    std::tie(r.study, r.patient) = chexpert_groups(row[c_path]);
    records_.push_back(std::move(r));
  }
  skipped_.check_threshold(static_cast<int64_t>(table.rows.size()), options_.max_bad_fraction(),
                           "ChexpertDataset(" + csv_path + ")");
}

RsnaDataset::RsnaDataset(const std::string& root, RsnaOptions options)
    : options_(std::move(options)) {
  label_names_ = {"Pneumonia"};
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "RsnaDataset");
  const fs::path base(root);
  auto table = read_csv((base / options_.labels_csv()).string());
  const auto c_id = table.require_column("patientId");
  const auto c_target = table.require_column("Target");
  std::vector<std::string> order;
  std::unordered_map<std::string, int> target;
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    const std::string id = detail::trim(row[c_id]);
    const std::string t = detail::trim(row[c_target]);
    if (id.empty() || (t != "0" && t != "1")) {
      skipped_.record({-1, table.path + " row " + std::to_string(i + 2),
                       "patientId must be set and Target 0 or 1, got '" + id + "', '" + t + "'"});
      continue;
    }
    auto [it, inserted] = target.try_emplace(id, 0);
    if (inserted) order.push_back(id);
    it->second = std::max(it->second, t == "1" ? 1 : 0);
  }
  for (const auto& id : order) {
    const fs::path img = base / options_.images_dir() / (id + options_.extension());
    if (!file_exists(img)) {
      skipped_.record({-1, img.string(), "missing file"});
      continue;
    }
    records_.push_back({img.string(), {static_cast<float>(target[id])}, {}, id, id});
  }
  skipped_.check_threshold(static_cast<int64_t>(order.size()), options_.max_bad_fraction(),
                           "RsnaDataset(" + root + ")");
}

CovidxDataset::CovidxDataset(const std::string& root, const std::string& split_file,
                             CovidxOptions options)
    : options_(std::move(options)) {
  label_names_ = options_.classes();
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "CovidxDataset");
  CONVIRT_CHECK_VALUE(!label_names_.empty(), "CovidxDataset: classes must not be empty");
  const fs::path base(root);
  fs::path images = options_.images_dir();
  if (images.empty()) {
    const std::string stem = fs::path(split_file).stem().string();
    images = fs::is_directory(base / stem) ? base / stem : base;
  }
  const fs::path list =
      fs::path(split_file).is_absolute() ? fs::path(split_file) : base / split_file;
  std::istringstream in(read_file_limited(list.string(), max_table_bytes(),
                                          "CovidxDataset: split file",
                                          "convirt::data::set_max_table_bytes"));
  std::string line;
  int64_t total = 0, line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    line = detail::trim(line);
    if (line.empty()) continue;
    ++total;
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string tok; ls >> tok;) f.push_back(tok);
    const std::string where = list.string() + " line " + std::to_string(line_no);
    if (f.size() < 3) {
      skipped_.record(
          {-1, where, "expected 'patient_id filename label source', got '" + line + "'"});
      continue;
    }
    // Lines have 4 fields ("... label source"); older files omit the source. Filenames never hold
    // spaces in the released lists, but joining the middle keeps one that does intact.
    const bool has_source = f.size() >= 4;
    const std::string label = f[f.size() - (has_source ? 2 : 1)];
    std::string filename = f[1];
    for (size_t k = 2; k < f.size() - (has_source ? 2 : 1); ++k) filename += " " + f[k];
    int64_t cls = -1;
    for (size_t k = 0; k < label_names_.size(); ++k) {
      if (detail::lower(label_names_[k]) == detail::lower(label)) cls = static_cast<int64_t>(k);
    }
    if (cls < 0) {
      skipped_.record({-1, where, "unknown class '" + label + "'"});
      continue;
    }
    const fs::path img = images / filename;
    if (!file_exists(img)) {
      skipped_.record({-1, img.string(), "missing file"});
      continue;
    }
    LabeledRecord r;
    r.image = img.string();
    r.labels.assign(label_names_.size(), 0.f);
    r.labels[static_cast<size_t>(cls)] = 1.f;
    r.study = filename;
    r.patient = f[0];
    records_.push_back(std::move(r));
  }
  skipped_.check_threshold(total, options_.max_bad_fraction(),
                           "CovidxDataset(" + list.string() + ")");
}

MuraDataset::MuraDataset(const std::string& root, const std::string& split, MuraOptions options)
    : options_(std::move(options)) {
  label_names_ = {"Abnormal"};
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "MuraDataset");
  CONVIRT_CHECK_VALUE(split == "train" || split == "valid",
                      "MuraDataset: split must be 'train' or 'valid', got '", split, "'");
  fs::path base(root);
  if (!file_exists(base / (split + "_image_paths.csv")) &&
      file_exists(base / "MURA-v1.1" / (split + "_image_paths.csv"))) {
    base = base / "MURA-v1.1";
  }
  auto paths = read_csv((base / (split + "_image_paths.csv")).string(), /*has_header=*/false);
  auto studies = read_csv((base / (split + "_labeled_studies.csv")).string(), /*has_header=*/false);
  auto norm = [](std::string s) {
    s = detail::trim(s);
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
  };
  std::unordered_map<std::string, int> study_label;
  for (const auto& row : studies.rows) {
    if (row.size() >= 2) study_label[norm(row[0])] = detail::trim(row[1]) == "1" ? 1 : 0;
  }
  for (const auto& row : paths.rows) {
    if (row.empty() || detail::trim(row[0]).empty()) continue;
    const std::string rel = detail::trim(row[0]);
    const std::string study_path = norm(fs::path(rel).parent_path().string());
    auto it = study_label.find(study_path);
    const auto img = detail::resolve_path(base, rel);
    if (it == study_label.end()) {
      skipped_.record({-1, img.string(), "study not in " + split + "_labeled_studies.csv"});
      continue;
    }
    if (!file_exists(img)) {
      skipped_.record({-1, img.string(), "missing file"});
      continue;
    }
    // ".../XR_SHOULDER/patient00001/study1_positive": the last three components.
    std::vector<std::string> parts;
    for (const auto& p : fs::path(study_path)) parts.push_back(p.string());
    const size_t n = parts.size();
    std::string patient = n >= 3 ? parts[n - 3] + "/" + parts[n - 2] : study_path;
    std::string study = n >= 3 ? patient + "/" + parts[n - 1] : study_path;
    records_.push_back({img.string(), {static_cast<float>(it->second)}, {}, study, patient});
  }
  skipped_.check_threshold(static_cast<int64_t>(paths.rows.size()), options_.max_bad_fraction(),
                           "MuraDataset(" + root + ")");
}

std::vector<std::string> retrieval_categories() {
  return {"Atelectasis",      "Cardiomegaly", "Edema",        "Fracture",
          "Pleural Effusion", "Pneumonia",    "Pneumothorax", "No Finding"};
}

namespace {

fs::path find_retrieval_file(const fs::path& dir, const std::string& task,
                             const std::string& name) {
  if (file_exists(dir / task / name)) return dir / task / name;
  const fs::path flat = dir / (task + "-" + name);
  if (file_exists(flat)) return flat;
  return {};
}

std::shared_ptr<LabeledDataset> read_candidates(const fs::path& csv, const fs::path& root,
                                                const RetrievalOptions& o) {
  auto list = std::make_shared<RecordList>(o.categories(), o.transform(), o.channels());
  auto table = read_csv(csv.string());
  const auto c_path = table.require_column("Path");
  std::vector<int64_t> cols;
  for (const auto& c : o.categories()) cols.push_back(table.require_column(c));
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    LabeledRecord r;
    int positives = 0;
    for (auto c : cols) {
      double v = 0;
      const bool pos = parse_label(row[static_cast<size_t>(c)], &v) && v == 1.0;
      positives += pos;
      r.labels.push_back(pos ? 1.f : 0.f);
    }
    const auto img = detail::resolve_path(root, row[c_path]);
    if (positives != 1) {
      list->skip(csv.string() + " row " + std::to_string(i + 2),
                 "a candidate must be positive for exactly one category, got " +
                     std::to_string(positives));
      continue;
    }
    if (!file_exists(img)) {
      list->skip(img.string(), "missing file");
      continue;
    }
    r.image = img.string();
    std::tie(r.study, r.patient) = chexpert_groups(row[c_path]);
    list->add(std::move(r));
  }
  list->finish(static_cast<int64_t>(table.rows.size()), o.max_bad_fraction(),
               "RetrievalSet(" + csv.string() + ")");
  return list;
}

int64_t category_index(const std::vector<std::string>& cats, const std::string& name) {
  for (size_t k = 0; k < cats.size(); ++k) {
    if (detail::lower(cats[k]) == detail::lower(detail::trim(name))) return static_cast<int64_t>(k);
  }
  return -1;
}

}  // namespace

RetrievalSet::RetrievalSet(const std::string& dir, RetrievalOptions options)
    : categories_(options.categories()) {
  detail::check_channels(options.channels(), "RetrievalSet");
  CONVIRT_CHECK_VALUE(!categories_.empty(), "RetrievalSet: categories must not be empty");
  const fs::path base(dir);
  const fs::path root =
      options.image_root().empty() ? base.parent_path() : fs::path(options.image_root());
  const auto cand = find_retrieval_file(base, "image-retrieval", "candidate.csv");
  CONVIRT_CHECK_VALUE(
      !cand.empty(), "RetrievalSet: ", dir,
      " must hold image-retrieval/candidate.csv (or image-retrieval-candidate.csv)");
  candidates_ = read_candidates(cand, root, options);
  const auto text_cand = find_retrieval_file(base, "text-retrieval", "candidate.csv");
  text_candidates_ = text_cand.empty() ? candidates_ : read_candidates(text_cand, root, options);

  auto queries = std::make_shared<RecordList>(categories_, options.transform(), options.channels());
  const auto iq = find_retrieval_file(base, "image-retrieval", "query.csv");
  if (!iq.empty()) {
    auto table = read_csv(iq.string());
    const auto c_var = table.require_column("Variable");
    const auto c_path = table.require_column("Path");
    for (size_t i = 0; i < table.rows.size(); ++i) {
      const auto& row = table.rows[i];
      const auto k = category_index(categories_, row[c_var]);
      const auto img = detail::resolve_path(root, row[c_path]);
      if (k < 0) {
        queries->skip(iq.string() + " row " + std::to_string(i + 2),
                      "unknown category '" + row[c_var] + "'");
      } else if (!file_exists(img)) {
        queries->skip(img.string(), "missing file");
      } else {
        LabeledRecord r;
        r.image = img.string();
        r.labels.assign(categories_.size(), 0.f);
        r.labels[static_cast<size_t>(k)] = 1.f;
        std::tie(r.study, r.patient) = chexpert_groups(row[c_path]);
        queries->add(std::move(r));
      }
    }
    queries->finish(static_cast<int64_t>(table.rows.size()), options.max_bad_fraction(),
                    "RetrievalSet(" + iq.string() + ")");
  }
  image_queries_ = queries;

  const auto tq = find_retrieval_file(base, "text-retrieval", "query.csv");
  if (!tq.empty()) {
    auto table = read_csv(tq.string());
    const auto c_var = table.require_column("Variable");
    const auto c_text = table.require_column("Text");
    for (size_t i = 0; i < table.rows.size(); ++i) {
      const auto& row = table.rows[i];
      const auto k = category_index(categories_, row[c_var]);
      CONVIRT_CHECK_VALUE(k >= 0, "RetrievalSet: ", tq.string(), " row ", i + 2,
                          ": Variable must be one of the categories, got '", row[c_var], "'");
      CONVIRT_CHECK_VALUE(text::is_valid_utf8(row[c_text]) && !detail::trim(row[c_text]).empty(),
                          "RetrievalSet: ", tq.string(), " row ", i + 2,
                          ": Text must be non-empty UTF-8");
      text_queries_.push_back({k, categories_[static_cast<size_t>(k)], detail::trim(row[c_text])});
    }
  }
}

}  // namespace convirt::data
