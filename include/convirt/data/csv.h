#pragma once
// The small CSV dialect the dataset files use (RFC 4180: commas, double-quoted fields with ""
// escapes, LF or CRLF line ends, an optional UTF-8 byte-order mark), with column lookup by header
// name.

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::data {

/// A parsed CSV file: a header row and the data rows (each padded with empty fields to the header's
/// width, so a short row reads as blanks rather than out of range).
///
/// Example:
///   auto t = convirt::data::read_csv("train.csv");
///   for (size_t r = 0; r < t.rows.size(); ++r) std::cout << t.get(r, "Path") << "\n";
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  /// Index of a header column, or -1 when absent.
  int64_t column(const std::string& name) const;
  /// Index of a header column; a ValueError naming the file and the columns present when absent.
  int64_t require_column(const std::string& name) const;
  /// The field of row `row` in column `name` (required column).
  const std::string& get(size_t row, const std::string& name) const;
};

/// Parses CSV text into rows of fields. Empty lines are skipped.
std::vector<std::vector<std::string>> parse_csv(const std::string& text);
/// Reads a CSV file; `has_header` = false leaves `header` empty and keeps every line as a row.
/// A missing or unreadable file is a ValueError naming the path.
CsvTable read_csv(const std::string& path, bool has_header = true);
/// A field quoted when it needs to be (comma, quote, CR or LF inside, or a leading UTF-8 BOM).
std::string csv_escape(const std::string& field);
/// One CSV line (without the line end) from fields.
std::string csv_line(const std::vector<std::string>& fields);

}  // namespace convirt::data
