#pragma once
// What a long job tells the world: a progress line on the terminal (step, loss, throughput, ETA)
// and machine-readable metrics as JSON lines.

#include <chrono>
#include <cstdint>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <variant>

namespace convirt::train {

/// One metrics record: string keys, numeric or string values, written as one JSON object per line.
using MetricValue = std::variant<double, int64_t, std::string>;
using MetricRecord = std::map<std::string, MetricValue>;

/// Appends JSON lines to a file (created with its folders), flushed after each record so a killed
/// job keeps every line it wrote. Thread-safe.
///
/// Example:
///   convirt::train::JsonLinesWriter log("runs/x/metrics.jsonl");
///   log.write({{"step", int64_t{10}}, {"loss", 2.31}});
class JsonLinesWriter {
 public:
  explicit JsonLinesWriter(const std::string& path, bool append = true);
  void write(const MetricRecord& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
  std::mutex mutex_;
};

/// Serialises one record as a single-line JSON object (non-finite numbers become null).
std::string to_json_line(const MetricRecord& record);

/// "1h02m03s", "4m05s", "12s".
std::string format_duration(double seconds);

/// Throughput and ETA over a run whose total step count may be known (0 = unknown).
class ProgressMeter {
 public:
  explicit ProgressMeter(int64_t total_steps = 0, int64_t start_step = 0);
  /// Records that `step` is done and `items` more items (images) were processed since the last
  /// call.
  void update(int64_t step, int64_t items);
  double items_per_second() const;
  double elapsed_seconds() const;
  /// Seconds left at the current rate; negative when unknown.
  double eta_seconds() const;
  void set_total_steps(int64_t total) { total_ = total; }

 private:
  using Clock = std::chrono::steady_clock;
  int64_t total_;
  int64_t start_step_;
  int64_t step_;
  int64_t items_ = 0;
  Clock::time_point start_;
};

}  // namespace convirt::train
