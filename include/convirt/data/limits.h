#pragma once
// Size limits of the files the dataset readers load whole (CSV tables, split lists, report files),
// so that a corrupt or hostile file gives a clear error instead of exhausting memory. Each limit is
// process-wide, thread-safe to read and change, and checked on the file size before reading.

#include <cstdint>
#include <string>

namespace convirt::data {

/// Default largest CSV or list file (read_csv and every dataset table): 1 GiB. MIMIC-CXR's largest
/// table is about 60 MB.
constexpr int64_t kDefaultMaxTableBytes = int64_t{1} << 30;
/// Default largest report text file: 1 MiB (radiology reports are a few kB).
constexpr int64_t kDefaultMaxReportBytes = int64_t{1} << 20;

/// The current table-file limit in bytes (initially kDefaultMaxTableBytes).
int64_t max_table_bytes();
/// Changes the table-file limit; throws a ValueError unless `bytes` > 0.
/// Example: convirt::data::set_max_table_bytes(int64_t{4} << 30);
void set_max_table_bytes(int64_t bytes);

/// The current report-file limit in bytes (initially kDefaultMaxReportBytes).
int64_t max_report_bytes();
/// Changes the report-file limit; throws a ValueError unless `bytes` > 0. A larger report makes its
/// study a skipped sample ("report file too large").
/// Example: convirt::data::set_max_report_bytes(int64_t{8} << 20);
void set_max_report_bytes(int64_t bytes);

/// Reads a whole file of at most `max_bytes` bytes. Throws a ValueError naming `what`, the path,
/// its size and the limit (and `how_to_raise`, the setter to call) when it is larger, and a
/// ValueError naming the path when it cannot be opened or read.
/// Example: auto text = read_file_limited(p, max_table_bytes(), "CSV file",
///                                        "convirt::data::set_max_table_bytes");
std::string read_file_limited(const std::string& path, int64_t max_bytes, const char* what,
                              const char* how_to_raise);

}  // namespace convirt::data
