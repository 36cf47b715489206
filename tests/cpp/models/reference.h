#pragma once
// Runs make_reference.py (torchvision / HF-formula references) with the Python that has torch.

#include <sys/wait.h>

#include <cstdlib>
#include <string>

namespace convirt::test {

/// The interpreter for reference scripts: $CONVIRT_TEST_PYTHON, else /usr/bin/python3.
inline std::string reference_python() {
  const char* env = std::getenv("CONVIRT_TEST_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}

/// make_reference.py's exit status when torch or torchvision is missing (the test is then skipped).
constexpr int kReferenceUnavailable = 77;

/// Runs make_reference.py MODE DIR; returns its exit status (-1 when it did not exit normally).
inline int run_reference(const std::string& mode, const std::string& dir) {
  std::string cmd =
      reference_python() + " " + CONVIRT_MODELS_REFERENCE_SCRIPT + " " + mode + " '" + dir + "'";
  int status = std::system(cmd.c_str());
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace convirt::test
