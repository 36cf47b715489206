#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/retrieval.h>
#include <convirt/data/limits.h>
#include <convirt/text/report.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "labeled_internal.h"

namespace fs = std::filesystem;

namespace convirt::data {
using detail::chexpert_groups;
using detail::file_exists;
using detail::parse_label;
using detail::RecordList;

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
  auto table = list->read(csv.string(), o.skip_bad_rows());
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
      list->skip(table.where(i), "a candidate must be positive for exactly one category, got " +
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
  list->finish(static_cast<int64_t>(table.rows.size() + table.skipped.size()), o.max_bad_fraction(),
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
    auto table = queries->read(iq.string(), options.skip_bad_rows());
    const auto c_var = table.require_column("Variable");
    const auto c_path = table.require_column("Path");
    for (size_t i = 0; i < table.rows.size(); ++i) {
      const auto& row = table.rows[i];
      const auto k = category_index(categories_, row[c_var]);
      const auto img = detail::resolve_path(root, row[c_path]);
      if (k < 0) {
        queries->skip(table.where(i), "unknown category '" + row[c_var] + "'");
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
    queries->finish(static_cast<int64_t>(table.rows.size() + table.skipped.size()),
                    options.max_bad_fraction(), "RetrievalSet(" + iq.string() + ")");
  }
  image_queries_ = queries;

  const auto tq = find_retrieval_file(base, "text-retrieval", "query.csv");
  if (!tq.empty()) {
    // Always strict: every text query is part of the benchmark, so a bad row is an error (as a bad
    // Variable or Text is below), never a smaller benchmark.
    auto table = read_csv(tq.string());
    const auto c_var = table.require_column("Variable");
    const auto c_text = table.require_column("Text");
    for (size_t i = 0; i < table.rows.size(); ++i) {
      const auto& row = table.rows[i];
      const auto k = category_index(categories_, row[c_var]);
      CONVIRT_CHECK_VALUE(k >= 0, "RetrievalSet: ", table.where(i),
                          ": Variable must be one of the categories, got '", row[c_var], "'");
      CONVIRT_CHECK_VALUE(text::is_valid_utf8(row[c_text]) && !detail::trim(row[c_text]).empty(),
                          "RetrievalSet: ", table.where(i), ": Text must be non-empty UTF-8");
      text_queries_.push_back({k, categories_[static_cast<size_t>(k)], detail::trim(row[c_text])});
    }
  }
}

}  // namespace convirt::data
