#pragma once
// Comparing the run folder of an interrupted and resumed `convirt pretrain` with that of one
// uninterrupted run: what "a kill loses nothing" means in every reliability suite.

#include <convirt/io/checkpoint.h>
#include <convirt/train/checkpoint.h>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "checkpoint_compare.h"
#include "process.h"

namespace convirt::test {

/// The temporaries (`<name>.tmp.<pid>`) in a run folder.
inline std::vector<std::string> temporaries(const std::filesystem::path& run) {
  std::vector<std::string> found;
  for (const auto& e : std::filesystem::directory_iterator(run)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp") != std::string::npos) found.push_back(name);
  }
  return found;
}

inline bool process_alive(long pid) {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

/// After a kill: every temporary is `<name>.tmp.<pid>` of a process that has ended (so the rerun
/// removes it), and every file under a final name is whole: the checkpoints pass their checksum,
/// the models load, the options parse, and every line of the metrics log but a last one cut short
/// (which the next writer drops) is a whole record.
inline void require_nothing_half_written(const std::filesystem::path& run) {
  namespace fs = std::filesystem;
  for (const auto& file : temporaries(run)) {
    INFO("temporary " << file);
    const size_t at = file.rfind(".tmp.");
    REQUIRE(at != std::string::npos);
    const std::string pid = file.substr(at + 5);
    REQUIRE(!pid.empty());
    REQUIRE(pid.find_first_not_of("0123456789") == std::string::npos);
    CHECK(!process_alive(std::stol(pid)));
  }
  for (const char* ckpt : {"last.ckpt", "last.ckpt.prev"}) {
    if (!fs::exists(run / ckpt)) continue;
    INFO(ckpt);
    CHECK_NOTHROW(train::read_checkpoint_file((run / ckpt).string()));
  }
  for (const char* model : {"best_model.pt", "model.pt"}) {
    if (!fs::exists(run / model)) continue;
    INFO(model);
    CHECK_NOTHROW(io::load_convirt((run / model).string()));
  }
  if (fs::exists(run / "run_options.json"))
    CHECK_NOTHROW(nlohmann::json::parse(read_file(run / "run_options.json")));
  if (fs::exists(run / "vocab.txt")) {
    const std::string vocab = read_file(run / "vocab.txt");
    CHECK((!vocab.empty() && vocab.back() == '\n'));
  }
  if (fs::exists(run / "metrics.jsonl")) {
    const std::string text = read_file(run / "metrics.jsonl");
    size_t start = 0;
    for (size_t end = text.find('\n'); end != std::string::npos;
         start = end + 1, end = text.find('\n', start)) {
      INFO("metrics line: " << text.substr(start, end - start));
      CHECK_NOTHROW(nlohmann::json::parse(text.substr(start, end - start)));
    }
  }
}

/// metrics.jsonl record by record, without the fields that measure time.
inline std::vector<nlohmann::json> metric_records(const std::filesystem::path& path) {
  std::vector<nlohmann::json> records;
  const std::string text = read_file(path);
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    auto record = nlohmann::json::parse(text.substr(start, end - start));
    for (const char* timing : {"elapsed_s", "images_per_s"}) record.erase(timing);
    records.push_back(record);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return records;
}

/// The run's results equal the reference's: the saved models (the best validation weights) byte
/// for byte, and the state in the final checkpoint (final weights, Adam moments, RNG, loader
/// position, counters) tensor for tensor.
inline void require_same_models_and_state(const std::filesystem::path& run,
                                          const std::filesystem::path& reference) {
  for (const char* name : {"model.pt", "best_model.pt"}) {
    INFO(name);
    REQUIRE(std::filesystem::exists(run / name));
    CHECK(read_file(run / name) == read_file(reference / name));
  }
  const auto diff =
      checkpoint_differences((run / "last.ckpt").string(), (reference / "last.ckpt").string());
  INFO("first difference: " << (diff.empty() ? std::string() : diff.front()));
  CHECK(diff.empty());
}

/// As require_same_models_and_state, and the metrics record for record (each step logged once),
/// and no temporary left behind.
inline void require_same_run(const std::filesystem::path& run,
                             const std::filesystem::path& reference) {
  require_same_models_and_state(run, reference);
  const auto got = metric_records(run / "metrics.jsonl");
  const auto want = metric_records(reference / "metrics.jsonl");
  CHECK(got.size() == want.size());
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    INFO("metrics record " << i);
    CHECK(got[i].dump() == want[i].dump());
  }
  CHECK(temporaries(run).empty());
}

}  // namespace convirt::test
