#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <convirt/core/threads.h>

int main(int argc, char* argv[]) {
  convirt::set_num_threads(0);
  return Catch::Session().run(argc, argv);
}
