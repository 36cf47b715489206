#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/data/datasets/mimic_cxr.h>
#include <convirt/text/report.h>
#include <convirt/text/sentences.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <unordered_map>

#include "common.h"

namespace fs = std::filesystem;

namespace convirt::data {

std::string report_sentences(const std::string& report, const ReportPolicy& policy,
                             std::vector<std::string>* sentences) {
  sentences->clear();
  if (!text::is_valid_utf8(report)) return "invalid UTF-8 in report";
  std::string kept =
      policy.sections_only ? text::pretraining_text(report) : text::clean_whitespace(report);
  if (kept.empty()) return "empty report text (no FINDINGS or IMPRESSION)";
  if (!text::keep_for_pretraining(kept,
                                  static_cast<size_t>(std::max<int64_t>(policy.min_tokens, 0)))) {
    return "report text has fewer than " + std::to_string(policy.min_tokens) + " tokens";
  }
  *sentences = text::split_sentences(kept);
  if (sentences->empty()) return "report text has no sentence";
  return "";
}

PairedDataset::PairedDataset(std::vector<PairRecord> records, ImageTransform transform,
                             int64_t channels)
    : records_(std::move(records)), transform_(std::move(transform)), channels_(channels) {
  detail::check_channels(channels, "PairedDataset");
  for (size_t i = 0; i < records_.size(); ++i) {
    CONVIRT_CHECK_VALUE(
        !records_[i].images.empty() && !records_[i].sentences.empty(), "PairedDataset: record ", i,
        " must have at least one image and one sentence, got ", records_[i].images.size(),
        " images and ", records_[i].sentences.size(), " sentences");
  }
}

Example PairedDataset::get(int64_t index, uint64_t seed) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  const auto& r = records_[static_cast<size_t>(index)];
  const uint64_t view = detail::bounded(detail::mix64(seed, 1), r.images.size());
  const uint64_t sentence = detail::bounded(detail::mix64(seed, 2), r.sentences.size());
  Example e;
  e.path = r.images[view];
  e.image = detail::finish_image(detail::load_image(e.path, channels_), transform_,
                                 detail::mix64(seed, 3), channels_, e.path);
  e.text = r.sentences[sentence];
  e.study = r.study;
  e.patient = r.patient;
  e.index = index;
  return e;
}

std::string PairedDataset::source(int64_t index) const {
  CONVIRT_CHECK_INDEX(index >= 0 && index < size(), "index must be in [0, ", size(), "), got ",
                      index);
  return records_[static_cast<size_t>(index)].images.front();
}

int64_t PairedDataset::num_images() const {
  int64_t n = 0;
  for (const auto& r : records_) n += static_cast<int64_t>(r.images.size());
  return n;
}

std::string mimic_study_dir(const std::string& subject_id, const std::string& study_id) {
  CONVIRT_CHECK_VALUE(subject_id.size() >= 2, "subject_id must have at least 2 digits, got '",
                      subject_id, "'");
  return "files/p" + subject_id.substr(0, 2) + "/p" + subject_id + "/s" + study_id;
}

MimicCxrDataset::MimicCxrDataset(const std::string& root, MimicCxrOptions options)
    : options_(std::move(options)) {
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "MimicCxrDataset");
  const fs::path base(root);
  CONVIRT_CHECK_VALUE(fs::is_directory(base), "MimicCxrDataset: root must be a folder, got '", root,
                      "'");
  const fs::path reports = options_.reports_dir().empty() ? base : fs::path(options_.reports_dir());

  auto meta = detail::read_table((base / "mimic-cxr-2.0.0-metadata.csv").string(),
                                 options_.skip_bad_rows(), skipped_);
  const auto c_dicom = meta.require_column("dicom_id");
  const auto c_subject = meta.require_column("subject_id");
  const auto c_study = meta.require_column("study_id");
  const auto c_view = meta.column("ViewPosition");
  int64_t bad_table_rows = static_cast<int64_t>(meta.skipped.size());

  std::unordered_map<std::string, std::string> split_of;  // dicom_id -> split
  if (!options_.split().empty()) {
    auto split = detail::read_table((base / "mimic-cxr-2.0.0-split.csv").string(),
                                    options_.skip_bad_rows(), skipped_);
    const auto s_dicom = split.require_column("dicom_id");
    const auto s_split = split.require_column("split");
    for (const auto& row : split.rows) split_of[row[s_dicom]] = row[s_split];
    bad_table_rows += static_cast<int64_t>(split.skipped.size());
  }

  struct Study {
    std::string subject;
    std::vector<std::string> images;
  };
  std::vector<std::string> order;  // studies in first-appearance order: deterministic indices
  std::unordered_map<std::string, Study> studies;
  int64_t total_studies = 0;
  for (const auto& row : meta.rows) {
    const std::string& study = row[c_study];
    if (!options_.split().empty()) {
      auto it = split_of.find(row[c_dicom]);
      if (it == split_of.end() || it->second != options_.split()) continue;
    }
    auto [it, inserted] = studies.try_emplace(study);
    if (inserted) {
      order.push_back(study);
      it->second.subject = row[c_subject];
    }
    if (options_.frontal_only()) {
      const std::string view = c_view >= 0 ? row[c_view] : "";
      const auto& fv = options_.frontal_views();
      if (std::find(fv.begin(), fv.end(), view) == fv.end()) continue;
    }
    const fs::path dir = base / mimic_study_dir(row[c_subject], study);
    fs::path img = dir / (row[c_dicom] + options_.image_extension());
    std::error_code ec;
    for (const char* ext : {".png", ".jpg"}) {
      if (fs::exists(img, ec)) break;
      img = dir / (row[c_dicom] + ext);
    }
    if (!fs::exists(img, ec)) {
      skipped_.record(
          {-1, (dir / (row[c_dicom] + options_.image_extension())).string(), "missing file"});
      continue;
    }
    it->second.images.push_back(img.string());
  }
  // A table row left out stands for a study that could not be read: it counts towards the total
  // and the bad samples alike.
  total_studies = static_cast<int64_t>(order.size()) + bad_table_rows;
  for (const auto& id : order) {
    auto& s = studies[id];
    const std::string report_path = (reports / (mimic_study_dir(s.subject, id) + ".txt")).string();
    if (s.images.empty()) {
      if (!options_.frontal_only()) skipped_.record({-1, report_path, "study has no usable image"});
      continue;  // a lateral-only study under frontal_only is a selection, not an error
    }
    PairRecord r;
    std::string reason;
    try {
      reason = report_sentences(detail::read_text_file(report_path), options_.report_policy(),
                                &r.sentences);
    } catch (const BadSampleError& e) {
      reason = e.reason() == "missing file" ? "missing report file" : e.reason();
    }
    if (!reason.empty()) {
      skipped_.record({-1, report_path, reason});
      continue;
    }
    r.images = std::move(s.images);
    r.study = id;
    r.patient = s.subject;
    records_.push_back(std::move(r));
  }
  skipped_.check_threshold(total_studies, options_.max_bad_fraction(),
                           "MimicCxrDataset(" + root + ")");
}

CsvPairsDataset::CsvPairsDataset(const std::string& csv_path, CsvPairsOptions options)
    : options_(std::move(options)) {
  transform_ = options_.transform();
  channels_ = options_.channels();
  detail::check_channels(channels_, "CsvPairsDataset");
  CONVIRT_CHECK_VALUE(!options_.path_separator().empty(),
                      "CsvPairsDataset: path_separator must not be empty");
  auto table = detail::read_table(csv_path, options_.skip_bad_rows(), skipped_);
  const fs::path root =
      options_.root().empty() ? fs::path(csv_path).parent_path() : fs::path(options_.root());
  const auto c_image = table.require_column(options_.image_column());
  const auto c_text = table.column(options_.text_column());
  const auto c_file = table.column(options_.report_file_column());
  CONVIRT_CHECK_VALUE(c_text >= 0 || c_file >= 0, "CsvPairsDataset: ", csv_path,
                      " must have a text column '", options_.text_column(),
                      "' or a report file column '", options_.report_file_column(), "'");
  const auto c_study = options_.study_column().empty() ? -1 : table.column(options_.study_column());
  const auto c_patient =
      options_.patient_column().empty() ? -1 : table.column(options_.patient_column());
  const std::string& sep = options_.path_separator();
  for (size_t i = 0; i < table.rows.size(); ++i) {
    const auto& row = table.rows[i];
    const std::string where = table.where(i);
    PairRecord r;
    std::string field = row[c_image];
    std::string missing;
    for (size_t pos = 0; pos <= field.size();) {
      size_t next = field.find(sep, pos);
      if (next == std::string::npos) next = field.size();
      std::string p = detail::trim(field.substr(pos, next - pos));
      pos = next + sep.size();
      if (p.empty()) continue;
      auto resolved = detail::resolve_path(root, p);
      std::error_code ec;
      if (fs::is_regular_file(resolved, ec)) {
        r.images.push_back(resolved.string());
      } else if (missing.empty()) {
        missing = resolved.string();
      }
    }
    if (r.images.empty()) {
      skipped_.record({-1, missing.empty() ? where : missing,
                       missing.empty() ? "no image path" : "missing file"});
      continue;
    }
    std::string report;
    std::string report_where = where;
    try {
      if (c_text >= 0) {
        report = row[c_text];
      } else {
        report_where = detail::resolve_path(root, detail::trim(row[c_file])).string();
        report = detail::read_text_file(report_where);
      }
    } catch (const BadSampleError& e) {
      skipped_.record(
          {-1, report_where, e.reason() == "missing file" ? "missing report file" : e.reason()});
      continue;
    }
    std::string reason = report_sentences(report, options_.report_policy(), &r.sentences);
    if (!reason.empty()) {
      skipped_.record({-1, report_where, reason});
      continue;
    }
    r.study = c_study >= 0 && !row[c_study].empty() ? row[c_study] : std::to_string(i);
    r.patient = c_patient >= 0 && !row[c_patient].empty() ? row[c_patient] : r.study;
    records_.push_back(std::move(r));
  }
  skipped_.check_threshold(static_cast<int64_t>(table.rows.size() + table.skipped.size()),
                           options_.max_bad_fraction(), "CsvPairsDataset(" + csv_path + ")");
}

}  // namespace convirt::data
