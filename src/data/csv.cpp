#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/limits.h>

#include "common.h"

#include <iomanip>
#include <sstream>

namespace convirt::data {

int64_t CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int64_t>(i);
  }
  return -1;
}

int64_t CsvTable::require_column(const std::string& name) const {
  int64_t c = column(name);
  if (c < 0) {
    std::string present;
    for (const auto& h : header) present += (present.empty() ? "" : ", ") + h;
    CONVIRT_CHECK_VALUE(false, "CSV file ", path, " must have a column '", name, "', got columns [",
                        present, "]");
  }
  return c;
}

const std::string& CsvTable::get(size_t row, const std::string& name) const {
  CONVIRT_CHECK_INDEX(row < rows.size(), "row must be < ", rows.size(), " in ", path, ", got ",
                      row);
  return rows[row][static_cast<size_t>(require_column(name))];
}

std::string CsvTable::where(size_t row) const {
  return path + " line " + std::to_string(row < lines.size() ? lines[row] : 0);
}

namespace {

// A row as the tokenizer saw it: its fields, where in the text each field and the row start, and
// the line the row starts on (for the messages of read_csv).
struct RawRow {
  std::vector<std::string> fields;
  std::vector<size_t> starts;
  size_t begin = 0, end = 0;
  int64_t line = 0;
};

std::vector<RawRow> tokenize(const std::string& text) {
  std::vector<RawRow> rows;
  RawRow row;
  std::string field;
  bool in_quotes = false;
  bool field_started = false;  // distinguishes an empty line from a line holding one empty field
  size_t i = 0;
  int64_t line = 1;
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
      static_cast<unsigned char>(text[1]) == 0xBB && static_cast<unsigned char>(text[2]) == 0xBF) {
    i = 3;
  }
  size_t field_start = i;
  row.begin = i;
  row.line = line;
  auto end_row = [&](size_t at) {
    if (field_started || !row.fields.empty()) {
      row.fields.push_back(std::move(field));
      row.starts.push_back(field_start);
      row.end = at;
      rows.push_back(std::move(row));
    }
    row = RawRow();
    field.clear();
    field_started = false;
    field_start = row.begin = at + 1;
    row.line = line;
  };
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') ++line;
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_quotes = true;
        field_started = true;
        break;
      case ',':
        row.fields.push_back(std::move(field));
        row.starts.push_back(field_start);
        field.clear();
        field_start = i + 1;
        field_started = true;
        break;
      case '\r':
        break;
      case '\n':
        end_row(i);
        break;
      default:
        field += c;
        field_started = true;
    }
  }
  end_row(text.size());
  return rows;
}

}  // namespace

namespace detail {

size_t invalid_utf8_at(const std::string& text, size_t begin, size_t end) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  for (size_t k = begin; k < end;) {
    const unsigned char b = byte(k);
    if (b < 0x80) {
      ++k;
      continue;
    }
    size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return k;
    }
    if (end - k <= n || byte(k + 1) < lo || byte(k + 1) > hi) return k;
    for (size_t j = 2; j <= n; ++j) {
      if ((byte(k + j) & 0xC0) != 0x80) return k;
    }
    k += n + 1;
  }
  return std::string::npos;
}

}  // namespace detail

namespace {

using detail::invalid_utf8_at;

// Why a row cannot be used (empty when it can): invalid UTF-8 first (it names the line and the
// column of the bad byte, which may lie on a later line than the row's first inside a quoted
// field), then a width other than `expected` (when expected > 0).
std::string row_problem(const std::string& text, const RawRow& row, size_t expected,
                        const std::vector<std::string>& header, int64_t* line) {
  *line = row.line;
  const size_t bad = invalid_utf8_at(text, row.begin, row.end);
  if (bad != std::string::npos) {
    size_t line_start = row.begin;
    for (size_t k = row.begin; k < bad; ++k) {
      if (text[k] == '\n') {
        ++*line;
        line_start = k + 1;
      }
    }
    size_t field = 0;
    while (field + 1 < row.starts.size() && row.starts[field + 1] <= bad) ++field;
    // "<kind>: <detail>": the pretraining summary counts skipped rows by the part before ':'.
    std::ostringstream os;
    os << "invalid UTF-8: byte 0x" << std::hex << std::uppercase << std::setw(2)
       << std::setfill('0') << static_cast<unsigned>(static_cast<unsigned char>(text[bad]))
       << std::dec << " at column " << bad - line_start + 1 << " (field " << field + 1;
    if (field < header.size()) os << " '" << header[field] << "'";
    os << ")";
    return os.str();
  }
  if (expected > 0 && row.fields.size() != expected) {
    return "ragged row: expected " + std::to_string(expected) + " fields (" +
           (header.empty() ? "the first row's" : "the header's") + "), got " +
           std::to_string(row.fields.size());
  }
  return "";
}

}  // namespace

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  for (auto& r : tokenize(text)) rows.push_back(std::move(r.fields));
  return rows;
}

CsvTable read_csv(const std::string& path, const CsvOptions& options) {
  CsvTable table;
  table.path = path;
  const std::string text =
      read_file_limited(path, max_table_bytes(), "CSV file", "convirt::data::set_max_table_bytes");
  auto raw = tokenize(text);
  size_t first = 0;
  size_t expected = 0;
  if (options.has_header()) {
    CONVIRT_CHECK_VALUE(!raw.empty(), "CSV file ", path,
                        " must have a header row, got an empty file");
    int64_t line = 0;
    const std::string why = row_problem(text, raw.front(), 0, {}, &line);
    CONVIRT_CHECK_VALUE(why.empty(), "CSV file ", path, " line ", line, ": header: ", why);
    table.header = std::move(raw.front().fields);
    expected = table.header.size();
    first = 1;
  }
  table.rows.reserve(raw.size() - first);
  table.lines.reserve(raw.size() - first);
  for (size_t r = first; r < raw.size(); ++r) {
    int64_t line = 0;
    const std::string why = row_problem(text, raw[r], expected, table.header, &line);
    if (!why.empty()) {
      CONVIRT_CHECK_VALUE(options.skip_bad_rows(), "CSV file ", path, " line ", line, ": ", why,
                          " (skip_bad_rows skips and counts such rows)");
      table.skipped.push_back({line, why});
      continue;
    }
    if (expected == 0) expected = raw[r].fields.size();
    table.lines.push_back(raw[r].line);
    table.rows.push_back(std::move(raw[r].fields));
  }
  return table;
}

CsvTable read_csv(const std::string& path, bool has_header) {
  return read_csv(path, CsvOptions().has_header(has_header));
}

std::string csv_escape(const std::string& field) {
  // A leading byte-order mark is quoted too: unquoted at the start of a file, the reader would take
  // it for the file's BOM and drop it.
  const bool leading_bom = field.compare(0, 3, "\xEF\xBB\xBF") == 0;
  if (!leading_bom && field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += csv_escape(fields[i]);
  }
  return out;
}

}  // namespace convirt::data
