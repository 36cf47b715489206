#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/limits.h>

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

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool in_quotes = false;
  bool field_started = false;  // distinguishes an empty line from a line holding one empty field
  size_t i = 0;
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF &&
      static_cast<unsigned char>(text[1]) == 0xBB && static_cast<unsigned char>(text[2]) == 0xBF) {
    i = 3;
  }
  auto end_row = [&] {
    if (field_started || !row.empty()) {
      row.push_back(std::move(field));
      rows.push_back(std::move(row));
    }
    row.clear();
    field.clear();
    field_started = false;
  };
  for (; i < text.size(); ++i) {
    char c = text[i];
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
        row.push_back(std::move(field));
        field.clear();
        field_started = true;
        break;
      case '\r':
        break;
      case '\n':
        end_row();
        break;
      default:
        field += c;
        field_started = true;
    }
  }
  end_row();
  return rows;
}

CsvTable read_csv(const std::string& path, bool has_header) {
  CsvTable table;
  table.path = path;
  table.rows = parse_csv(
      read_file_limited(path, max_table_bytes(), "CSV file", "convirt::data::set_max_table_bytes"));
  if (has_header) {
    CONVIRT_CHECK_VALUE(!table.rows.empty(), "CSV file ", path,
                        " must have a header row, got an empty file");
    table.header = std::move(table.rows.front());
    table.rows.erase(table.rows.begin());
    for (auto& r : table.rows) {
      if (r.size() < table.header.size()) r.resize(table.header.size());
    }
  }
  return table;
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
