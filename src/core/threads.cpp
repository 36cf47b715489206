#include <convirt/core/threads.h>

#include <ATen/Parallel.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace convirt {
namespace {

int env_threads(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  try {
    int n = std::stoi(v);
    return n > 0 ? n : 0;
  } catch (...) {
    return 0;  // A malformed variable means "not set": fall back to the hardware count.
  }
}

}  // namespace

int default_num_threads() {
  if (int n = env_threads("CONVIRT_NUM_THREADS")) return n;
  if (int n = env_threads("OMP_NUM_THREADS")) return n;
  unsigned hw = std::thread::hardware_concurrency();
  return hw > 0 ? static_cast<int>(hw) : 1;
}

int set_num_threads(int threads) {
  int n = threads > 0 ? threads : default_num_threads();
  if (at::get_num_threads() != n) at::set_num_threads(n);
  return at::get_num_threads();
}

}  // namespace convirt
