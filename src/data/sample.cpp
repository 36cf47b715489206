#include <convirt/core/check.h>
#include <convirt/data/limits.h>
#include <convirt/data/sample.h>
#include <convirt/image/io.h>

#include <fstream>
#include <sstream>

#include "common.h"

namespace convirt::data {

Batch collate(std::vector<Example> examples) {
  Batch batch;
  if (examples.empty()) return batch;
  const auto& first = examples.front();
  CONVIRT_CHECK_VALUE(first.image.defined() && first.image.dim() == 3,
                      "collate: example images must be [C, H, W], got ",
                      first.image.defined() ? detail::shape_str(first.image.sizes()) : "undefined",
                      " for ", first.path);
  const bool labelled = first.labels.defined();
  std::vector<at::Tensor> images, labels, masks;
  images.reserve(examples.size());
  for (auto& e : examples) {
    CONVIRT_CHECK_VALUE(e.image.defined() && e.image.sizes() == first.image.sizes(),
                        "collate: every image in a batch must have the shape of the first, ",
                        detail::shape_str(first.image.sizes()), ", got ",
                        e.image.defined() ? detail::shape_str(e.image.sizes()) : "undefined",
                        " for ", e.path, " (use a transform that resizes to a fixed size)");
    CONVIRT_CHECK_VALUE(e.labels.defined() == labelled,
                        "collate: examples must all have labels or all have none, got a mix at ",
                        e.path);
    images.push_back(e.image.to(at::kFloat));
    if (labelled) {
      CONVIRT_CHECK_VALUE(e.labels.sizes() == first.labels.sizes(),
                          "collate: label vectors must share one length ",
                          detail::shape_str(first.labels.sizes()), ", got ",
                          detail::shape_str(e.labels.sizes()), " for ", e.path);
      labels.push_back(e.labels);
      masks.push_back(e.mask.defined() ? e.mask : at::ones_like(e.labels));
    }
    batch.texts.push_back(std::move(e.text));
    batch.studies.push_back(std::move(e.study));
    batch.patients.push_back(std::move(e.patient));
    batch.paths.push_back(std::move(e.path));
    batch.indices.push_back(e.index);
  }
  batch.images = at::stack(images);
  if (labelled) {
    batch.labels = at::stack(labels).to(at::kFloat);
    batch.mask = at::stack(masks).to(at::kFloat);
  }
  return batch;
}

BadSampleLog::BadSampleLog(const BadSampleLog& other) : entries_(other.entries()) {}

BadSampleLog& BadSampleLog::operator=(const BadSampleLog& other) {
  if (this != &other) {
    auto copy = other.entries();
    std::lock_guard<std::mutex> lock(mutex_);
    entries_ = std::move(copy);
  }
  return *this;
}

void BadSampleLog::record(BadSample sample) {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.push_back(std::move(sample));
}

int64_t BadSampleLog::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int64_t>(entries_.size());
}

std::vector<BadSample> BadSampleLog::entries() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_;
}

void BadSampleLog::clear() {
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.clear();
}

std::string BadSampleLog::summary(size_t max_lines) const {
  auto all = entries();
  std::ostringstream os;
  os << all.size() << " bad sample" << (all.size() == 1 ? "" : "s");
  if (!all.empty()) os << ':';
  for (size_t i = 0; i < all.size() && i < max_lines; ++i) {
    os << "\n  " << all[i].path << ": " << all[i].reason;
  }
  if (all.size() > max_lines) os << "\n  ... and " << all.size() - max_lines << " more";
  return os.str();
}

void BadSampleLog::check_threshold(int64_t total, double max_fraction,
                                   const std::string& what) const {
  if (max_fraction < 0) return;
  const int64_t n = count();
  const double allowed = max_fraction * static_cast<double>(std::max<int64_t>(total, 0));
  CONVIRT_CHECK(static_cast<double>(n) <= allowed, what, ": too many bad samples (", n, " of ",
                total, ", max_bad_fraction ", max_fraction, "); ", summary());
}

namespace detail {

void check_channels(int64_t channels, const char* what) {
  CONVIRT_CHECK_VALUE(channels == 0 || channels == 1 || channels == 3, what,
                      ": channels must be 0 (as decoded), 1 or 3, got ", channels);
}

at::Tensor load_image(const std::string& path, int64_t channels) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw BadSampleError(path, "missing file");
  try {
    // Gray is decoded for both 1 and 3 channels: augmenting one channel is a third of the work, and
    // the copy into three happens after the transform.
    auto opts = image::ReadImageOptions().channels(channels == 0 ? 0 : 1);
    return image::read_image(path, opts);
  } catch (const c10::Error& e) {
    throw BadSampleError(path, std::string("cannot decode image: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw BadSampleError(path, std::string("cannot decode image: ") + e.what());
  }
}

at::Tensor finish_image(at::Tensor image, const ImageTransform& transform, uint64_t seed,
                        int64_t channels, const std::string& path) {
  if (transform) {
    image = transform(image, seed);
    CONVIRT_CHECK_VALUE(image.defined() && image.dim() == 3,
                        "image transform must return a [C, H, W] tensor, got ",
                        image.defined() ? shape_str(image.sizes()) : "undefined", " for ", path);
  }
  if (!image.is_floating_point()) image = image.to(at::kFloat).div_(255.0);
  if (channels == 3 && image.size(0) == 1) image = image.expand({3, image.size(1), image.size(2)});
  return image;
}

std::filesystem::path resolve_path(const std::filesystem::path& root, const std::string& relative) {
  namespace fs = std::filesystem;
  fs::path rel(relative);
  if (rel.is_absolute()) return rel;
  std::error_code ec;
  fs::path direct = root / rel;
  if (fs::exists(direct, ec)) return direct;
  // root is the dataset folder itself: drop the dataset folder named first in the CSV path.
  auto it = rel.begin();
  if (it != rel.end() && root.filename() == *it) {
    fs::path stripped;
    for (++it; it != rel.end(); ++it) stripped /= *it;
    if (fs::exists(root / stripped, ec)) return root / stripped;
  }
  if (root.has_parent_path() && fs::exists(root.parent_path() / rel, ec))
    return root.parent_path() / rel;
  return direct;
}

CsvTable read_table(const std::string& path, bool skip_bad_rows, BadSampleLog& log,
                    bool has_header) {
  auto table = read_csv(path, CsvOptions().has_header(has_header).skip_bad_rows(skip_bad_rows));
  for (const auto& s : table.skipped) {
    log.record({-1, path + " line " + std::to_string(s.line), s.reason});
  }
  return table;
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in.good()) throw BadSampleError(path, "missing file");
  // Checked before reading: a huge (e.g. 1 GB single-line) report must not be loaded to be
  // rejected.
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const int64_t limit = max_report_bytes();
  if (size < 0) throw BadSampleError(path, "cannot read file (size unknown)");
  if (size > limit) {
    throw BadSampleError(path, "report file too large: " + std::to_string(size) +
                                   " bytes, more than the limit of " + std::to_string(limit) +
                                   " bytes (convirt::data::set_max_report_bytes)");
  }
  in.seekg(0, std::ios::beg);
  std::string text(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad() || in.gcount() != static_cast<std::streamsize>(text.size()))
    throw BadSampleError(path, "cannot read file");
  return text;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace detail
}  // namespace convirt::data
