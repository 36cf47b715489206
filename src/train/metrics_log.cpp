#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/core/fault_injection.h>
#include <convirt/train/metrics_log.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

namespace convirt::train {

std::string to_json_line(const MetricRecord& record) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [key, value] : record) {
    if (const double* d = std::get_if<double>(&value)) {
      j[key] = std::isfinite(*d) ? nlohmann::json(*d) : nlohmann::json(nullptr);
    } else if (const int64_t* i = std::get_if<int64_t>(&value)) {
      j[key] = *i;
    } else {
      j[key] = std::get<std::string>(value);
    }
  }
  // Replacement of invalid UTF-8 keeps a stray byte in a path from throwing mid-run.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

JsonLinesWriter::JsonLinesWriter(const std::string& path, bool append) : path_(path) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  fd_ =
      ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | (append ? 0 : O_TRUNC), 0644);
  CONVIRT_CHECK(fd_ >= 0, "cannot open metrics file '", path,
                "' for writing: ", std::strerror(errno));
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  if (size <= 0) return;
  // Find the end of the last complete line; what follows it is a record cut short by a kill.
  constexpr off_t kChunk = 4096;
  off_t end = size;
  std::string buf;
  while (end > 0) {
    const off_t from = std::max<off_t>(0, end - kChunk);
    buf.resize(static_cast<size_t>(end - from));
    const ssize_t n = ::pread(fd_, buf.data(), buf.size(), from);
    CONVIRT_CHECK(n == static_cast<ssize_t>(buf.size()), "cannot read metrics file '", path,
                  "': ", n < 0 ? std::strerror(errno) : "short read");
    const size_t nl = buf.rfind('\n');
    if (nl != std::string::npos) {
      end = from + static_cast<off_t>(nl) + 1;
      break;
    }
    end = from;
  }
  if (end < size) {
    CONVIRT_CHECK(::ftruncate(fd_, end) == 0, "cannot drop the partial last line of metrics file '",
                  path, "': ", std::strerror(errno));
  }
}

JsonLinesWriter::~JsonLinesWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonLinesWriter::write(const MetricRecord& record) {
  const std::string line = to_json_line(record) + '\n';
  std::lock_guard<std::mutex> lock(mutex_);
  const off_t start = ::lseek(fd_, 0, SEEK_END);
  // The fault-injection kill (tests only, core/fault_injection.h) lands after half the line.
  const size_t kill_at = line.size() / 2;
  size_t done = 0;
  while (done < line.size()) {
    const size_t chunk = done < kill_at ? kill_at - done : line.size() - done;
    const ssize_t n = ::write(fd_, line.data() + done, chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "no progress";
      // A half-written record would make the next line unparsable: take it back. Best effort, as
      // the failed write is the error worth reporting.
      if (done > 0 && start >= 0) static_cast<void>(::ftruncate(fd_, start) == 0);
      CONVIRT_CHECK(false, "cannot write metrics file '", path_, "': ", why);
    }
    done += static_cast<size_t>(n);
    if (done == kill_at) kill_point_while_writing("metrics record");
  }
}

int64_t JsonLinesWriter::drop_records_after(int64_t step, const std::string& last_type) {
  std::lock_guard<std::mutex> lock(mutex_);
  const off_t size = ::lseek(fd_, 0, SEEK_END);
  CONVIRT_CHECK(size >= 0, "cannot read metrics file '", path_, "': ", std::strerror(errno));
  std::string text(static_cast<size_t>(size), '\0');
  CONVIRT_CHECK(::pread(fd_, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()),
                "cannot read metrics file '", path_, "': ", std::strerror(errno));
  std::vector<std::string> kept_lines;
  int64_t dropped = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool later = record.is_object() && record.contains("step") &&
                       record["step"].is_number_integer() && record["step"].get<int64_t>() > step;
    if (later) {
      ++dropped;
    } else {
      kept_lines.push_back(line);
    }
  }
  if (!last_type.empty() && !kept_lines.empty()) {
    const auto last = nlohmann::json::parse(kept_lines.back(), nullptr, false);
    if (last.is_object() && last.contains("type") && last["type"] == last_type) {
      kept_lines.pop_back();
      ++dropped;
    }
  }
  if (dropped == 0) return 0;
  std::string kept;
  for (const auto& line : kept_lines) kept += line + '\n';
  // Rewritten beside and renamed over, so a kill here leaves either the old or the new log.
  write_file_atomically(path_, kept, "metrics file");
  ::close(fd_);
  fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
  CONVIRT_CHECK(fd_ >= 0, "cannot reopen metrics file '", path_, "': ", std::strerror(errno));
  return dropped;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(std::llround(seconds));
  if (s >= 3600) return fmt::format("{}h{:02}m{:02}s", s / 3600, (s / 60) % 60, s % 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

ProgressMeter::ProgressMeter(int64_t total_steps, int64_t start_step)
    : total_(total_steps), start_step_(start_step), step_(start_step), start_(Clock::now()) {}

void ProgressMeter::update(int64_t step, int64_t items) {
  step_ = step;
  items_ += items;
}

double ProgressMeter::elapsed_seconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

double ProgressMeter::items_per_second() const {
  const double t = elapsed_seconds();
  return t > 0 ? static_cast<double>(items_) / t : 0.0;
}

double ProgressMeter::eta_seconds() const {
  const int64_t done = step_ - start_step_;
  if (total_ <= 0 || done <= 0) return -1;
  const double per_step = elapsed_seconds() / static_cast<double>(done);
  return per_step * static_cast<double>(std::max<int64_t>(0, total_ - step_));
}

}  // namespace convirt::train
