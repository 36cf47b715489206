// The CSV reader: parse_csv on arbitrary text, and read_csv (with and without a header, strict and
// with skip_bad_rows) on the same bytes written to a file, checking the documented shape (every row
// as wide as the header, a start line per row, bad rows refused or listed) and that
// csv_line/csv_escape round-trip every parsed row.
#include <convirt/data/csv.h>

#include <cstdlib>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convirt::data;
  const std::string text(reinterpret_cast<const char*>(data), size);
  convirt::fuzz::expect_clean([&] {
    const auto rows = parse_csv(text);
    for (const auto& row : rows) {
      if (row.empty()) std::abort();
      // A row written back and parsed again gives the same fields (an all-empty single field is
      // written as an empty line, which the dialect skips).
      const std::string line = csv_line(row);
      if (line.empty()) continue;
      const auto again = parse_csv(line + "\n");
      if (again.size() != 1 || again[0] != row) std::abort();
    }
  });
  const std::string path = convirt::fuzz::write_file("table.csv", data, size);
  for (const bool skip : {false, true}) {
    convirt::fuzz::expect_clean([&] {
      const auto table = read_csv(path, CsvOptions().skip_bad_rows(skip));
      if (!skip && !table.skipped.empty()) std::abort();
      if (table.lines.size() != table.rows.size()) std::abort();
      for (size_t r = 0; r < table.rows.size(); ++r) {
        if (table.rows[r].size() != table.header.size()) std::abort();
        if (r > 0 && table.lines[r] <= table.lines[r - 1]) std::abort();
        if (!table.header.empty()) table.get(r, table.header.front());
      }
      table.column("Path");
    });
    convirt::fuzz::expect_clean([&] {
      const auto table = read_csv(path, CsvOptions().has_header(false).skip_bad_rows(skip));
      for (const auto& row : table.rows) {
        if (row.size() != table.rows.front().size()) std::abort();
      }
    });
  }
  return 0;
}
