// Resource limits of the dataset readers: table and report files above their documented size limit
// are refused with a clear error before being read, and a table of a million rows still loads.
#include <convirt/data/csv.h>
#include <convirt/data/datasets/covidx.h>
#include <convirt/data/datasets/csv_pairs.h>
#include <convirt/data/limits.h>
#include <convirt/image/io.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "test_util.h"

using namespace convirt::data;
using Catch::Matchers::Contains;
using convirt::test::TempDir;

namespace {

// Restores a process-wide limit when a test ends, whatever happens.
struct LimitGuard {
  int64_t table = max_table_bytes(), report = max_report_bytes();
  ~LimitGuard() {
    set_max_table_bytes(table);
    set_max_report_bytes(report);
  }
};

void write(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("limits: defaults are the documented ones and setters validate", "[data][limits]") {
  LimitGuard guard;
  CHECK(kDefaultMaxTableBytes == (int64_t{1} << 30));
  CHECK(kDefaultMaxReportBytes == (int64_t{1} << 20));
  CHECK(max_table_bytes() == kDefaultMaxTableBytes);
  CHECK(max_report_bytes() == kDefaultMaxReportBytes);
  CHECK_THROWS_WITH(set_max_table_bytes(0), Contains("must be > 0"));
  CHECK_THROWS_WITH(set_max_report_bytes(-1), Contains("must be > 0"));
}

TEST_CASE("limits: a CSV larger than the table limit is refused naming the limit",
          "[data][limits]") {
  LimitGuard guard;
  TempDir dir("convirt-limits");
  const std::string big(5000, 'x');
  write(dir / "big.csv", "a,b\n" + big + ",1\n");
  set_max_table_bytes(1000);
  CHECK_THROWS_WITH(read_csv((dir / "big.csv").string()),
                    Contains("more than the limit of 1000 bytes") &&
                        Contains("set_max_table_bytes") && Contains("big.csv"));
  // The same limit guards the COVIDx split list (read line by line before).
  write(dir / "train.txt", "1 " + big + ".png COVID-19 x\n");
  CHECK_THROWS_WITH(CovidxDataset(dir.path().string(), "train.txt"),
                    Contains("more than the limit of 1000 bytes"));
  set_max_table_bytes(100000);
  CHECK(read_csv((dir / "big.csv").string()).rows.size() == 1);
}

TEST_CASE("limits: a CSV with a million rows loads", "[data][limits]") {
  TempDir dir("convirt-limits");
  const int64_t n = 1000000;
  {
    std::string text = "Path,Label\n";
    text.reserve(static_cast<size_t>(n) * 8);
    for (int64_t i = 0; i < n; ++i) text += "p" + std::to_string(i % 1000) + ",1\n";
    write(dir / "rows.csv", text);
  }
  const auto table = read_csv((dir / "rows.csv").string());
  REQUIRE(static_cast<int64_t>(table.rows.size()) == n);
  CHECK(table.get(static_cast<size_t>(n - 1), "Path") == "p999");
}

TEST_CASE("limits: a single-line report larger than the report limit skips its study",
          "[data][limits]") {
  LimitGuard guard;
  TempDir dir("convirt-limits");
  convirt::image::write_png((dir / "a.png").string(), torch::rand({1, 8, 8}));
  // One line, no newline: what a runaway export or a hostile file looks like.
  write(dir / "huge.txt", "FINDINGS: " + std::string(200000, 'a') + " lungs clear.");
  write(dir / "ok.txt", "FINDINGS: Lungs are clear. IMPRESSION: No acute process.");
  write(dir / "pairs.csv", "image,report_file\na.png,huge.txt\na.png,ok.txt\n");
  set_max_report_bytes(4096);
  CsvPairsDataset ds((dir / "pairs.csv").string(), CsvPairsOptions().max_bad_fraction(-1));
  CHECK(ds.size() == 1);
  const auto bad = ds.skipped().entries();
  REQUIRE(bad.size() == 1);
  CHECK_THAT(bad[0].reason,
             Contains("report file too large") && Contains("more than the limit of 4096 bytes"));
  CHECK_THAT(bad[0].path, Contains("huge.txt"));
}

TEST_CASE("limits: read_file_limited reads small files and names the limit", "[data][limits]") {
  TempDir dir("convirt-limits");
  write(dir / "f.txt", "hello");
  CHECK(read_file_limited((dir / "f.txt").string(), 5, "test file", "nothing") == "hello");
  CHECK_THROWS_WITH(read_file_limited((dir / "f.txt").string(), 4, "test file", "the_setter"),
                    Contains("test file") && Contains("is 5 bytes") && Contains("the_setter"));
  CHECK_THROWS_WITH(read_file_limited((dir / "none.txt").string(), 4, "test file", "x"),
                    Contains("must exist and be readable"));
}
