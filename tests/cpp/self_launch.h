#pragma once
// Multi-rank tests that play every rank with the test binary itself: the launcher case starts
// `nproc` copies of this executable through convirt::dist::launch, each running one hidden worker
// case ("[.]") that reads its scenario from the environment and writes its results as tensor
// files for the launcher to compare. One definition, so that every distributed suite launches,
// times out and skips (without Gloo) the same way.

#include <convirt/dist/launch.h>
#include <convirt/dist/process_group.h>

#include <torch/serialize.h>
#include <torch/types.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "test_util.h"

namespace convirt::test {

struct JobResult {
  int rc = -1;
  double seconds = 0;
  bool skipped = true;  ///< this build has no Gloo: nothing ran
};

/// Runs the hidden Catch2 case `worker_case` of this binary on `nproc` ranks, with `env` (the
/// scenario and its folder) set for the ranks. CONVIRT_DIST_TIMEOUT is `timeout_seconds`, and
/// every rank gets one thread, so two ranks do not fight over the machine's cores.
inline JobResult launch_self_as_ranks(const std::string& worker_case,
                                      std::map<std::string, std::string> env, int64_t nproc = 2,
                                      const std::string& timeout_seconds = "60") {
  if (!dist::gloo_available()) {
    WARN("skipped: this build of convirt::dist has no Gloo, so it cannot run several ranks");
    return {};
  }
  env["CONVIRT_DIST_TIMEOUT"] = timeout_seconds;
  env["OMP_NUM_THREADS"] = "1";
  ScopedEnv scoped(env);
  const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const auto start = std::chrono::steady_clock::now();
  JobResult r;
  r.skipped = false;
  r.rc = dist::launch(dist::LaunchOptions().nproc(nproc).kill_grace_seconds(20),
                      {self, worker_case, "--out", "/dev/null"});
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

/// The tensors a worker saved with torch::save(std::vector<torch::Tensor>, path).
inline std::vector<torch::Tensor> load_tensors(const std::filesystem::path& p) {
  std::vector<torch::Tensor> ts;
  torch::load(ts, p.string());
  return ts;
}

}  // namespace convirt::test
