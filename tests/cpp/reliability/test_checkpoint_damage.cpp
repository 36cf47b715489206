// Damage done to checkpoint and metrics files on disk, at every kind of offset, checked through the
// library calls the trainer uses (fast, in-process); test_fault_injection.cpp does the same to the
// real program.

#include <convirt/train/checkpoint.h>
#include <convirt/train/metrics_log.h>

#include <torch/torch.h>
// After LibTorch, whose logging headers may define their own CHECK.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "process.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace convirt;
using test::read_file;
using test::write_file;

namespace {

std::string payload(char fill, size_t size) {
  std::string p(size, fill);
  for (size_t i = 0; i < size; i += 7) p[i] = static_cast<char>(i & 0xff);
  return p;
}

}  // namespace

TEST_CASE("every truncation and bit flip of last.ckpt is detected and .prev is used",
          "[reliability]") {
  test::TempDir dir("convirt-damage");
  const std::string path = (dir / "last.ckpt").string();
  const std::string older = payload('a', 5000), newer = payload('b', 6000);
  train::write_checkpoint_file(path, older);
  train::write_checkpoint_file(path, newer);
  const std::string intact = read_file(path);
  const size_t size = intact.size();
  REQUIRE(size == newer.size() + 24);

  struct Case {
    std::string what;
    std::string bytes;
    std::string message;
  };
  std::vector<Case> cases;
  for (size_t keep : {size_t{0}, size_t{1}, size_t{23}, size / 2, size - 24, size - 1}) {
    cases.push_back({"truncated to " + std::to_string(keep), intact.substr(0, keep), ""});
  }
  const std::vector<std::pair<std::string, size_t>> flips = {{"header", 0},
                                                             {"payload", size / 2},
                                                             {"last payload byte", size - 25},
                                                             {"trailer magic", size - 24},
                                                             {"trailer size", size - 16},
                                                             {"trailer checksum", size - 1}};
  for (const auto& [where, offset] : flips) {
    std::string b = intact;
    b[offset] ^= 0x04;
    cases.push_back({"bit flip in the " + where, b, ""});
  }
  for (const auto& c : cases) {
    INFO(c.what);
    write_file(path, c.bytes);
    CHECK_THROWS_WITH(train::read_checkpoint_file(path), Catch::Contains("truncated") ||
                                                             Catch::Contains("corrupt") ||
                                                             Catch::Contains("no convirt trailer"));
    std::string used;
    std::vector<std::string> problems;
    CHECK(train::read_latest_checkpoint(path, &used, &problems) == older);
    CHECK(used == path + ".prev");
    REQUIRE(problems.size() == 1);
    CHECK_THAT(problems[0], Catch::Contains(path));
  }
  // Both bad: an error naming both files and their faults, never an empty or default payload.
  write_file(path, intact.substr(0, size / 2));
  std::string prev = read_file(path + ".prev");
  prev[100] ^= 0x01;
  write_file(path + ".prev", prev);
  CHECK_THROWS_WITH(train::read_latest_checkpoint(path),
                    Catch::Contains("no intact checkpoint") && Catch::Contains("truncated") &&
                        Catch::Contains("is corrupt") && Catch::Contains("cannot resume"));
}

TEST_CASE("a corrupt last.ckpt never replaces a good .prev", "[reliability]") {
  test::TempDir dir("convirt-damage");
  const std::string path = (dir / "last.ckpt").string();
  train::write_checkpoint_file(path, "one");
  train::write_checkpoint_file(path, "two");
  std::string bytes = read_file(path);
  bytes[1] ^= 0x01;
  write_file(path, bytes);
  train::write_checkpoint_file(path, "three");
  CHECK(train::read_checkpoint_file(path) == "three");
  CHECK(train::read_checkpoint_file(path + ".prev") == "one");
  train::write_checkpoint_file(path, "four");
  CHECK(train::read_checkpoint_file(path + ".prev") == "three");
}

TEST_CASE("temporaries of killed writers are removed, a live writer's are kept", "[reliability]") {
  test::TempDir dir("convirt-damage");
  const std::string path = (dir / "last.ckpt").string();
  // A pid that surely is not running: a child that has exited and been reaped.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  const std::string stale = path + ".tmp." + std::to_string(dead);
  const std::string stale_prev = path + ".prev.tmp." + std::to_string(dead);
  const std::string live = path + ".tmp." + std::to_string(::getppid());
  const std::string other = path + ".tmp.notapid";
  for (const auto& f : {stale, stale_prev, live, other}) write_file(f, "partial");
  train::write_checkpoint_file(path, "payload");
  CHECK(!fs::exists(stale));
  CHECK(!fs::exists(stale_prev));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other));
  CHECK(train::read_checkpoint_file(path) == "payload");
}

TEST_CASE(
    "metrics: a partial last line left by a kill is dropped on append and a failed write "
    "throws and takes its partial line back",
    "[reliability]") {
  test::TempDir dir("convirt-damage");
  const fs::path path = dir / "metrics.jsonl";
  write_file(path, "{\"step\":1}\n{\"step\":2}\n{\"st");
  {
    train::JsonLinesWriter log(path.string());
    log.write({{"step", int64_t{3}}});
  }
  CHECK(read_file(path) == "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
  write_file(path, "{\"no newline at all");
  { train::JsonLinesWriter log(path.string()); }
  CHECK(read_file(path).empty());

  // A file size limit in a child process stands in for a full disk.
  write_file(path, "{\"step\":1}\n");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim;
    lim.rlim_cur = lim.rlim_max = 20;
    ::setrlimit(RLIMIT_FSIZE, &lim);
    try {
      train::JsonLinesWriter log(path.string());
      log.write({{"step", int64_t{2}}, {"loss", 1.5}});
      ::_exit(3);  // should not get here
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      const bool clear = what.find("cannot write metrics file") != std::string::npos &&
                         what.find("File too large") != std::string::npos;
      ::_exit(clear ? 0 : 4);
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_file(path) == "{\"step\":1}\n");
}

TEST_CASE("metrics: records after a resumed step are dropped so that redone steps log once",
          "[reliability]") {
  test::TempDir dir("convirt-damage");
  const fs::path path = dir / "metrics.jsonl";
  {
    train::JsonLinesWriter log(path.string());
    for (int64_t step = 1; step <= 5; ++step) log.write({{"step", step}, {"loss", 1.0}});
    log.write({{"type", std::string("done")}, {"steps", int64_t{5}}});
  }
  train::JsonLinesWriter log(path.string());
  CHECK(log.drop_records_after(3) == 2);
  CHECK(log.drop_records_after(3) == 0);
  log.write({{"step", int64_t{4}}});
  CHECK(read_file(path) ==
        "{\"loss\":1.0,\"step\":1}\n{\"loss\":1.0,\"step\":2}\n{\"loss\":1.0,\"step\":3}\n"
        "{\"steps\":5,\"type\":\"done\"}\n{\"step\":4}\n");
  CHECK(!fs::exists(path.string() + ".tmp." + std::to_string(::getpid())));

  // As the trainer resumes: a "done" record left last goes too (its run finished after the
  // checkpoint), one followed by other records stays.
  const fs::path finished = dir / "finished.jsonl";
  {
    train::JsonLinesWriter done_log(finished.string());
    for (int64_t step = 1; step <= 3; ++step) done_log.write({{"step", step}});
    done_log.write({{"type", std::string("done")}, {"steps", int64_t{3}}});
  }
  train::JsonLinesWriter resumed(finished.string());
  CHECK(resumed.drop_records_after(3, "done") == 1);
  CHECK(resumed.drop_records_after(3, "done") == 0);
  CHECK(read_file(finished) == "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
  CHECK(log.drop_records_after(4, "done") == 0);
}
