#include <convirt/core/check.h>
#include <convirt/train/metrics_log.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
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
  out_.open(path, append ? std::ios::app : std::ios::trunc);
  CONVIRT_CHECK(out_.good(), "cannot open metrics file '", path, "' for writing");
}

void JsonLinesWriter::write(const MetricRecord& record) {
  std::lock_guard<std::mutex> lock(mutex_);
  out_ << to_json_line(record) << '\n';
  out_.flush();
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm%02llds", static_cast<long long>(s / 3600),
                  static_cast<long long>((s / 60) % 60), static_cast<long long>(s % 60));
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  }
  return buf;
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
