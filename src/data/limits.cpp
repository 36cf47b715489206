#include <convirt/core/check.h>
#include <convirt/data/limits.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace convirt::data {
namespace {
std::atomic<int64_t> g_max_table_bytes{kDefaultMaxTableBytes};
std::atomic<int64_t> g_max_report_bytes{kDefaultMaxReportBytes};
}  // namespace

int64_t max_table_bytes() {
  return g_max_table_bytes.load(std::memory_order_relaxed);
}

void set_max_table_bytes(int64_t bytes) {
  CONVIRT_CHECK_VALUE(bytes > 0, "set_max_table_bytes: bytes must be > 0, got ", bytes);
  g_max_table_bytes.store(bytes, std::memory_order_relaxed);
}

int64_t max_report_bytes() {
  return g_max_report_bytes.load(std::memory_order_relaxed);
}

void set_max_report_bytes(int64_t bytes) {
  CONVIRT_CHECK_VALUE(bytes > 0, "set_max_report_bytes: bytes must be > 0, got ", bytes);
  g_max_report_bytes.store(bytes, std::memory_order_relaxed);
}

std::string read_file_limited(const std::string& path, int64_t max_bytes, const char* what,
                              const char* how_to_raise) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), what, " ", path, " must exist and be readable (",
                      std::strerror(errno), ")");
  // The size comes from the open stream, not the path, so a file swapped in between is still
  // bounded; a stream that cannot seek (a pipe) is read in chunks up to the limit instead.
  std::string out;
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end >= 0) {
    CONVIRT_CHECK_VALUE(end <= max_bytes, what, " ", path, " is ", static_cast<int64_t>(end),
                        " bytes, more than the limit of ", max_bytes, " bytes (raise it with ",
                        how_to_raise, ")");
    in.seekg(0, std::ios::beg);
    out.resize(static_cast<size_t>(end));
    in.read(out.data(), end);
    out.resize(static_cast<size_t>(in.gcount()));
  } else {
    in.clear();
    char buf[65536];
    while (in.read(buf, sizeof(buf)) || in.gcount() > 0) {
      out.append(buf, static_cast<size_t>(in.gcount()));
      CONVIRT_CHECK_VALUE(static_cast<int64_t>(out.size()) <= max_bytes, what, " ", path,
                          " is more than the limit of ", max_bytes, " bytes (raise it with ",
                          how_to_raise, ")");
    }
  }
  CONVIRT_CHECK_VALUE(!in.bad(), "cannot read ", what, " ", path);
  return out;
}

}  // namespace convirt::data
