#pragma once
// The small CSV dialect the dataset files use (RFC 4180: commas, double-quoted fields with ""
// escapes, LF or CRLF line ends, an optional UTF-8 byte-order mark), with column lookup by header
// name.

#include <torch/arg.h>

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::data {

/// A row read_csv left out under CsvOptions::skip_bad_rows, and why.
struct CsvSkippedRow {
  int64_t line = 0;    ///< 1-based line of the problem (the row's first, or the invalid byte's)
  std::string reason;  ///< "expected 3 fields (the header's), got 2", "invalid UTF-8 ..."
};

/// How read_csv treats a file.
/// Example:
///   auto t = convirt::data::read_csv("dirty.csv",
///   convirt::data::CsvOptions().skip_bad_rows(true)); std::cerr << t.skipped.size() << " rows
///   skipped\n";
struct CsvOptions {
  /// Whether the first row names the columns. Without a header the first row's width is the one
  /// every other row must have.
  TORCH_ARG(bool, has_header) = true;
  /// A ragged row (more or fewer fields than the header) or one holding invalid UTF-8 is an error
  /// naming the file, the line and the column (false, the default), or is left out and listed in
  /// CsvTable::skipped (true: for tables known to be dirty). A bad header is always an error.
  TORCH_ARG(bool, skip_bad_rows) = false;
};

/// A parsed CSV file: a header row and the data rows, every one as wide as the header.
///
/// Example:
///   auto t = convirt::data::read_csv("train.csv");
///   for (size_t r = 0; r < t.rows.size(); ++r) std::cout << t.get(r, "Path") << "\n";
struct CsvTable {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  /// 1-based line of the file where each row of `rows` starts (quoted fields may span lines).
  std::vector<int64_t> lines;
  /// Rows left out under CsvOptions::skip_bad_rows, in file order.
  std::vector<CsvSkippedRow> skipped;

  /// Index of a header column, or -1 when absent.
  int64_t column(const std::string& name) const;
  /// Index of a header column; a ValueError naming the file and the columns present when absent.
  int64_t require_column(const std::string& name) const;
  /// The field of row `row` in column `name` (required column).
  const std::string& get(size_t row, const std::string& name) const;

  /// "<path> line <N>" for row `row`, the place a reader names in a skipped-sample entry.
  std::string where(size_t row) const;
};

/// Parses CSV text into rows of fields. Empty lines are skipped. A tokenizer only: it checks
/// neither row widths nor the encoding (read_csv does).
std::vector<std::vector<std::string>> parse_csv(const std::string& text);
/// Reads a CSV file; `has_header` = false leaves `header` empty and keeps every line as a row.
/// A missing or unreadable file is a ValueError naming the path; a ragged row or invalid UTF-8 is a
/// ValueError naming the file, the line and the column (see CsvOptions::skip_bad_rows).
CsvTable read_csv(const std::string& path, const CsvOptions& options);
CsvTable read_csv(const std::string& path, bool has_header = true);
/// A field quoted when it needs to be (comma, quote, CR or LF inside, or a leading UTF-8 BOM).
std::string csv_escape(const std::string& field);
/// One CSV line (without the line end) from fields.
std::string csv_line(const std::vector<std::string>& fields);

}  // namespace convirt::data
