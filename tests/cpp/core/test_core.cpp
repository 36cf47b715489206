#include <convirt/core/check.h>
#include <convirt/core/threads.h>
#include <convirt/core/version.h>

#include <ATen/Parallel.h>
#include <catch2/catch.hpp>

#include <cstdlib>
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
