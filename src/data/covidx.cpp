#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/datasets/covidx.h>
#include <convirt/data/limits.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <unordered_map>

#include "labeled_internal.h"

namespace fs = std::filesystem;

namespace convirt::data {
using detail::chexpert_groups;
using detail::file_exists;
using detail::parse_label;
using detail::RecordList;

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
    const std::string where = list.string() + " line " + std::to_string(line_no);
    // A line that is not UTF-8 or has too few fields is an error unless skip_bad_rows, as in every
    // CSV table of the readers.
    auto bad_line = [&](const std::string& why) {
      CONVIRT_CHECK_VALUE(options_.skip_bad_rows(), "CovidxDataset: split file ", where, ": ", why,
                          " (skip_bad_rows skips and counts such lines)");
      skipped_.record({-1, where, why});
    };
    const size_t bad = detail::invalid_utf8_at(line, 0, line.size());
    const unsigned bad_byte = bad == std::string::npos ? 0u : static_cast<unsigned char>(line[bad]);
    line = detail::trim(line);
    if (line.empty()) continue;
    ++total;
    if (bad != std::string::npos) {
      std::ostringstream os;
      os << "invalid UTF-8: byte 0x" << std::hex << std::uppercase << std::setw(2)
         << std::setfill('0') << bad_byte << std::dec << " at column " << bad + 1;
      bad_line(os.str());
      continue;
    }
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string tok; ls >> tok;) f.push_back(tok);
    if (f.size() < 3) {
      bad_line("ragged line: expected 3 or 4 fields 'patient_id filename label [source]', got " +
               std::to_string(f.size()) + " in '" + line + "'");
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

}  // namespace convirt::data
