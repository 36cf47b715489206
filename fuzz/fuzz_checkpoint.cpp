// The checkpoint file reader (trailer, size and checksum verification) and the fallback to
// `<path>.prev`, on arbitrary bytes for both files: the reader must return an intact payload or
// throw, never read past the file.
#include <convirt/train/checkpoint.h>

#include <cstdlib>

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace fz = convirt::fuzz;
  using namespace convirt::train;
  const auto parts = fz::split_once(data, size, "=====");
  const std::string& newest = parts.first;
  const std::string& previous = parts.second;
  const std::string path = fz::write_file("ckpt/last.ckpt", newest);
  fz::write_file("ckpt/last.ckpt.prev", previous);
  fz::expect_clean([&] {
    const std::string payload = read_checkpoint_file(path);
    if (payload.size() > newest.size()) std::abort();
  });
  fz::expect_clean([&] {
    std::string used;
    std::vector<std::string> problems;
    const std::string payload = read_latest_checkpoint(path, &used, &problems);
    if (payload.size() > size) std::abort();
  });
  return 0;
}
