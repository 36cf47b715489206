#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/core/version.h>

#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

TEST_CASE("version string matches the configured version", "[core]") {
  CHECK(convirt::version() == CONVIRT_VERSION_STRING);
}

TEST_CASE("set_num_threads honours an explicit count and the environment", "[core]") {
  CHECK(convirt::set_num_threads(1) == 1);
  CHECK(at::get_num_threads() == 1);
  ::setenv("CONVIRT_NUM_THREADS", "2", 1);
  CHECK(convirt::default_num_threads() == 2);
  ::setenv("CONVIRT_NUM_THREADS", "garbage", 1);
  ::unsetenv("OMP_NUM_THREADS");
  unsigned hw = std::thread::hardware_concurrency();
  CHECK(convirt::default_num_threads() == static_cast<int>(hw > 0 ? hw : 1));
  ::unsetenv("CONVIRT_NUM_THREADS");
  convirt::set_num_threads(0);
}

TEST_CASE("typed checks raise the matching c10 error types", "[core]") {
  CHECK_THROWS_AS([] { CONVIRT_CHECK_VALUE(false, "x must be > 0, got ", -1); }(), c10::ValueError);
  CHECK_THROWS_AS([] { CONVIRT_CHECK_TYPE(false, "dtype"); }(), c10::TypeError);
  CHECK_THROWS_AS([] { CONVIRT_CHECK_INDEX(false, "index"); }(), c10::IndexError);
  CHECK(convirt::detail::shape_str(std::vector<int64_t>{4, 3, 2}) == "[4, 3, 2]");
}

TEST_CASE("write_file_atomically replaces a file whole or not at all", "[core]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("convirt-atomic-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string file = (dir / "sub" / "vocab.txt").string();
  convirt::write_file_atomically(file, "a\nb\n", "vocabulary");
  auto read = [](const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(read(file) == "a\nb\n");
  convirt::write_file_atomically(file, std::string(100000, 'x'), "vocabulary");
  CHECK(read(file).size() == 100000);

  // A target that cannot be replaced (a folder): the error names what and why, and no temporary
  // is left beside it.
  const std::string folder = (dir / "taken").string();
  fs::create_directories(fs::path(folder) / "inner");
  try {
    convirt::write_file_atomically(folder, "data", "weight file");
    FAIL("expected an error");
  } catch (const c10::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("cannot move into place weight file '" + folder + "'") != std::string::npos);
  }
  int leftovers = 0;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().rfind("taken.tmp.", 0) == 0) ++leftovers;
  CHECK(leftovers == 0);
  CHECK(fs::is_directory(fs::path(folder) / "inner"));
  fs::remove_all(dir);
}

TEST_CASE("remove_dead_temporaries removes what dead writers left, never a live one's", "[core]") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("convirt-stale-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // A pid that is certainly dead: a child that has exited and been reaped.
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  auto touch = [&](const std::string& name) { std::ofstream(dir / name) << "partial"; };
  touch("skipped.tsv.tmp." + std::to_string(child));
  touch("model.pt.tmp." + std::to_string(child));
  touch("run_options.json.tmp." + std::to_string(::getpid()));  // this process: alive
  touch("notes.tmp.abc");                                       // not a writer's temporary
  touch("model.pt");
  CHECK(convirt::remove_dead_temporaries(dir.string()) == 2);
  CHECK_FALSE(fs::exists(dir / ("skipped.tsv.tmp." + std::to_string(child))));
  CHECK_FALSE(fs::exists(dir / ("model.pt.tmp." + std::to_string(child))));
  CHECK(fs::exists(dir / ("run_options.json.tmp." + std::to_string(::getpid()))));
  CHECK(fs::exists(dir / "notes.tmp.abc"));
  CHECK(fs::exists(dir / "model.pt"));
  CHECK(convirt::remove_dead_temporaries((dir / "missing").string()) == 0);
  fs::remove_all(dir);
}
