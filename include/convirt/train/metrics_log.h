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

/// Appends JSON lines to a file (created with its folders), each record handed to the system as
/// soon as it is written so that a killed job keeps every line it wrote. Thread-safe.
///
/// Failures are errors, never silent gaps: a write that fails (disk full, file size limit, I/O
/// error) throws naming the file and the system's reason, and takes back the partial line it may
/// have left. Opening for append drops a trailing partial line left by a writer that was killed
/// mid-record, so every line of the file stays one complete JSON object.
///
/// Example:
///   convirt::train::JsonLinesWriter log("runs/x/metrics.jsonl");
///   log.write({{"step", int64_t{10}}, {"loss", 2.31}});
class JsonLinesWriter {
 public:
  explicit JsonLinesWriter(const std::string& path, bool append = true);
  ~JsonLinesWriter();
  JsonLinesWriter(const JsonLinesWriter&) = delete;
  JsonLinesWriter& operator=(const JsonLinesWriter&) = delete;
  void write(const MetricRecord& record);
  /// Removes the records whose "step" is greater than `step` (records without one stay), so that a
  /// run resumed from a checkpoint at `step` logs the steps it redoes once, not twice. A non-empty
  /// `last_type` also removes the record left last if its "type" is that one (the trainer passes
  /// "done": a run that finished after its last checkpoint, then resumed from it, e.g. because
  /// another rank was lost after the end, writes its own "done" record). The file is rewritten
  /// atomically; returns how many records were dropped.
  ///
  /// Example:
  ///   log.drop_records_after(resumed_step, "done");
  int64_t drop_records_after(int64_t step, const std::string& last_type = "");
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
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
