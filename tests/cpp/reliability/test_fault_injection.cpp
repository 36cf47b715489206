// Fault injection against the real `convirt pretrain` program, run as a child process: SIGKILL at
// random moments (and during checkpoint writes), checkpoints truncated or bit-flipped on disk, and
// a full disk (file size limit, and a real tmpfs where mounting is permitted). Every scenario ends
// by comparing the final files with those of one uninterrupted run.

#include <convirt/core/fault_injection.h>
#include <convirt/train/checkpoint.h>
#include <convirt/train/metrics_log.h>

#include <torch/torch.h>
// After LibTorch, whose logging headers may define their own CHECK.
#include <catch2/catch.hpp>

#include <sys/file.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "process.h"
#include "run_compare.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace convirt;
using test::Child;
using test::ChildStatus;
using test::read_file;
using test::temporaries;
using test::write_file;

namespace {

constexpr int64_t kSteps = 12;
constexpr int64_t kEvalEvery = 3;
constexpr const char* kCacheDir = CONVIRT_FAULT_CACHE_DIR;

std::string log_tail(const fs::path& log) {
  const std::string text = read_file(log);
  return text.size() > 3000 ? text.substr(text.size() - 3000) : text;
}

std::vector<std::string> synth_command(const fs::path& out) {
  return {test::convirt_cli(),
          "synth",
          "--out",
          out.string(),
          "--train-studies",
          "32",
          "--validate-studies",
          "8",
          "--test-studies",
          "2",
          "--chexpert-train",
          "4",
          "--chexpert-valid",
          "4",
          "--retrieval-candidates",
          "10",
          "--synthetic-image-size",
          "32",
          "--data-seed",
          "4"};
}

std::string joined(const std::vector<std::string>& args) {
  std::string s;
  for (const auto& a : args) s += a + ' ';
  return s;
}

// One synthetic dataset and one uninterrupted reference run. Each test case runs in its own
// process under CTest, so both are kept in a cache folder of the build tree (shared under a file
// lock, and remade when the program or the commands change); the scenarios run in a fresh
// temporary folder.
struct World {
  test::TempDir dir{"convirt-faults"};
  fs::path data;
  fs::path reference;
  double reference_seconds = 0;

  World() {
    const char* env = std::getenv("CONVIRT_FAULT_CACHE");
    const fs::path cache = env != nullptr && *env != '\0' ? fs::path(env) : fs::path(kCacheDir);
    fs::create_directories(cache);
    data = cache / "data";
    reference = cache / "reference";
    const int lock = ::open((cache / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    REQUIRE(lock >= 0);
    REQUIRE(::flock(lock, LOCK_EX) == 0);
    // What the cached results were made with: the program (size, time) and both commands.
    const fs::path cli = test::convirt_cli();
    const std::string key = std::to_string(fs::file_size(cli)) + " " +
                            std::to_string(fs::last_write_time(cli).time_since_epoch().count()) +
                            "\n" + joined(synth_command(data)) + "\n" +
                            joined(pretrain(reference)) + "\n";
    const std::string stamp = read_file(cache / "stamp");
    if (stamp.compare(0, key.size(), key) == 0 && stamp.size() > key.size()) {
      reference_seconds = std::stod(stamp.substr(key.size()));
    } else {
      fs::remove(cache / "stamp");
      fs::remove_all(data);
      fs::remove_all(reference);
      const ChildStatus synth = test::run_child(synth_command(data), log("synth").string());
      if (synth.exit_code != 0)
        FAIL("convirt synth failed (" << synth.exit_code << "):\n" << log_tail(log("synth")));
      const auto t0 = std::chrono::steady_clock::now();
      const ChildStatus ref = test::run_child(pretrain(reference), log("reference").string());
      reference_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (ref.exit_code != 0) FAIL("reference run failed:\n" << log_tail(log("reference")));
      write_file(cache / "stamp", key + std::to_string(reference_seconds));
    }
    ::close(lock);
  }

  // The one command every run of a scenario uses, so that "resume" means "run it again".
  std::vector<std::string> pretrain(const fs::path& out) const {
    return {test::convirt_cli(),
            "pretrain",
            "--data",
            (data / "mimic-cxr-jpg").string(),
            "--out",
            out.string(),
            "--preset",
            "small",
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--vocab-size",
            "300",
            "--max-steps",
            std::to_string(kSteps),
            "--eval-every",
            std::to_string(kEvalEvery),
            "--log-every",
            "1",
            "--threads",
            "1",
            "--workers",
            "1",
            "--seed",
            "5"};
  }

  fs::path log(const std::string& name) const { return dir / (name + ".log"); }
};

World& world() {
  static World w;
  return w;
}

// The temporary file of process `pid`'s checkpoint write exists: it is between creating and
// renaming it.
bool writing_checkpoint(const fs::path& run, pid_t pid) {
  std::error_code ec;
  return fs::exists(run / ("last.ckpt.tmp." + std::to_string(pid)), ec);
}

// Progress lines ("[pretrain] step N/12 ...") the child has printed, and the last N.
int64_t steps_logged(const std::string& log) {
  const std::string text = read_file(log);
  int64_t n = 0;
  for (size_t at = text.find("[pretrain] step "); at != std::string::npos;
       at = text.find("[pretrain] step ", at + 1))
    ++n;
  return n;
}

int64_t last_step_logged(const std::string& log) {
  const std::string text = read_file(log);
  const size_t at = text.rfind("[pretrain] step ");
  return at == std::string::npos ? 0 : std::atoll(text.c_str() + at + 16);
}

// Each line a complete JSON object: nothing half-written survives a failed or killed write.
void require_whole_lines(const fs::path& metrics) {
  const std::string text = read_file(metrics);
  REQUIRE(!text.empty());
  CHECK(text.back() == '\n');
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    INFO("line: " << line);
    CHECK((line.size() >= 2 && line.front() == '{' && line.back() == '}'));
    start = end + 1;
  }
}

// The same command once more, uninterrupted: it must finish as the reference run did, with
// whole metrics lines and no temporary left (a killed writer's is removed by the next run).
void finish_as_the_reference(const World& w, const fs::path& run, const std::string& log_name) {
  const std::string log = w.log(log_name).string();
  const ChildStatus s = test::run_child(w.pretrain(run), log);
  INFO(log_tail(log));
  REQUIRE(s.exit_code == 0);
  test::require_same_models_and_state(run, w.reference);
  CHECK(temporaries(run).empty());
  require_whole_lines(run / "metrics.jsonl");
}

// Brings `run` to a mid-run checkpoint the way a user would: Ctrl-C (SIGTERM) once the first
// checkpoint exists; the program stops after the current step, writes last.ckpt and exits 143.
void stop_after_first_checkpoint(const fs::path& run) {
  const World& w = world();
  Child c(w.pretrain(run), w.log("sigterm").string());
  while (!c.finished() && !fs::exists(run / "last.ckpt"))
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const bool finished_first = c.finished();
  c.signal(SIGTERM);
  const ChildStatus s = c.wait();
  INFO(log_tail(w.log("sigterm")));
  // Stopped by the signal: 128 + SIGTERM, as a shell reports it (0 only if it ended before).
  REQUIRE(s.exit_code == (finished_first ? 0 : 128 + SIGTERM));
  REQUIRE(train::checkpoint_exists((run / "last.ckpt").string()));
}

uint64_t fault_seed() {
  if (const char* env = std::getenv("CONVIRT_FAULT_SEED")) return std::stoull(env);
  return std::random_device{}();
}

}  // namespace

TEST_CASE("kill -9 at random moments, then the same command: the final weights are identical",
          "[reliability]") {
  const World& w = world();
  const uint64_t seed = fault_seed();
  std::printf("fault-injection seed %llu (rerun with CONVIRT_FAULT_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  INFO("fault-injection seed " << seed << " (rerun with CONVIRT_FAULT_SEED=" << seed << ")");
  std::mt19937_64 rng(seed);
  // The comparison can tell states apart: two checkpoints of the reference run differ.
  CHECK(!test::checkpoint_differences((w.reference / "last.ckpt").string(),
                                      (w.reference / "last.ckpt.prev").string())
             .empty());
  const fs::path run = w.dir / "killed";
  int kills = 0, kills_during_checkpoint = 0, finished_early = 0;
  constexpr int kAttempts = 5;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const std::string log = w.log("killed-" + std::to_string(attempt)).string();
    const bool had_checkpoint = train::checkpoint_exists((run / "last.ckpt").string());
    Child c(w.pretrain(run), log);
    // Odd attempts wait for a checkpoint write to start (the riskiest moment). Even ones strike a
    // random time (0.05..0.6 s, often still starting up) or a random 1..4 steps into the run plus
    // up to 0.3 s, whichever comes first; counting steps rather than seconds keeps every attempt
    // short of the end of the run however fast or loaded the machine is, so each one is a kill.
    const bool at_checkpoint = attempt % 2 == 1;
    const double seconds = std::uniform_real_distribution<double>(0.05, 0.6)(rng);
    const int64_t steps = std::uniform_int_distribution<int64_t>(1, 4)(rng);
    const double extra = std::uniform_real_distribution<double>(0.0, 0.3)(rng);
    const auto start = std::chrono::steady_clock::now();
    auto since = [](std::chrono::steady_clock::time_point t) {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
    };
    auto stepped = start;
    bool reached = false;
    while (!c.finished()) {
      if (at_checkpoint) {
        if (writing_checkpoint(run, c.pid())) break;
      } else {
        if (!reached && (steps_logged(log) >= steps || last_step_logged(log) >= kSteps - 1)) {
          reached = true;
          stepped = std::chrono::steady_clock::now();
        }
        if ((reached && since(stepped) >= extra) || (attempt == 0 && since(start) >= seconds))
          break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    c.signal(SIGKILL);
    const ChildStatus s = c.wait();
    const bool mid_write = writing_checkpoint(run, c.pid());
    INFO("attempt " << attempt << ", log:\n" << log_tail(log));
    if (s.signal == SIGKILL) {
      ++kills;
      kills_during_checkpoint += mid_write ? 1 : 0;
    } else {
      REQUIRE(s.exit_code == 0);  // it finished before the kill: fine, never a failed resume
      ++finished_early;
    }
    if (had_checkpoint) CHECK(read_file(log).find("resumed from") != std::string::npos);
  }
  std::printf("%d kills (%d during a checkpoint write), %d runs finished before their kill\n",
              kills, kills_during_checkpoint, finished_early);
  CHECK(kills >= 3);
  CHECK(kills_during_checkpoint >= 1);

  finish_as_the_reference(w, run, "killed-final");
}

TEST_CASE("a corrupted or truncated last.ckpt: the run resumes from .prev and ends identical",
          "[reliability]") {
  const World& w = world();
  const auto payload_size = fs::file_size(w.reference / "last.ckpt") - 24;
  struct Damage {
    const char* what;
    const char* message;
    std::function<void(std::string&)> apply;
  };
  const std::vector<Damage> damages = {
      {"bit flip in the payload", "is corrupt: checksum",
       [&](std::string& b) { b[payload_size / 2] ^= 0x10; }},
      {"truncated to half", "no convirt trailer", [](std::string& b) { b.resize(b.size() / 2); }},
  };
  for (const auto& damage : damages) {
    SECTION(damage.what) {
      const fs::path run = w.dir / "damaged";
      fs::remove_all(run);
      fs::copy(w.reference, run);
      std::string bytes = read_file(run / "last.ckpt");
      damage.apply(bytes);
      write_file(run / "last.ckpt", bytes);
      const std::string log = w.log("damaged").string();
      const ChildStatus s = test::run_child(w.pretrain(run), log);
      const std::string text = read_file(log);
      INFO(log_tail(log));
      REQUIRE(s.exit_code == 0);
      CHECK(text.find(damage.message) != std::string::npos);
      CHECK(text.find("using " + (run / "last.ckpt.prev").string()) != std::string::npos);
      CHECK(text.find("resumed from") != std::string::npos);
      test::require_same_models_and_state(run, w.reference);
    }
  }
}

TEST_CASE("both checkpoints bad: a clear error, the files are left alone, no fresh start",
          "[reliability]") {
  const World& w = world();
  const fs::path run = w.dir / "both-bad";
  fs::remove_all(run);
  fs::copy(w.reference, run);
  std::string last = read_file(run / "last.ckpt");
  last[10] ^= 0x01;
  write_file(run / "last.ckpt", last);
  std::string prev = read_file(run / "last.ckpt.prev");
  prev.resize(prev.size() - 7);
  write_file(run / "last.ckpt.prev", prev);
  const std::string metrics = read_file(run / "metrics.jsonl");

  const std::string log = w.log("both-bad").string();
  const ChildStatus s = test::run_child(w.pretrain(run), log);
  const std::string text = read_file(log);
  INFO(text);
  CHECK(s.exited());
  CHECK(s.exit_code == 1);
  CHECK(text.find("no intact checkpoint") != std::string::npos);
  CHECK(text.find("is corrupt: checksum") != std::string::npos);
  CHECK(text.find("truncated") != std::string::npos);
  CHECK(text.find("resumed from") == std::string::npos);
  CHECK(read_file(run / "last.ckpt") == last);
  CHECK(read_file(run / "last.ckpt.prev") == prev);
  CHECK(read_file(run / "metrics.jsonl") == metrics);
}

TEST_CASE(
    "a full disk (file size limit) while writing: last checkpoint intact, clear error, "
    "resume finishes identical",
    "[reliability]") {
  const World& w = world();
  const fs::path run = w.dir / "full-disk";
  fs::remove_all(run);
  stop_after_first_checkpoint(run);
  const std::string good = read_file(run / "last.ckpt");
  const auto checkpoint_size = static_cast<long long>(good.size());
  int64_t resumed_step = -1;

  {
    // Room for the metrics log and the best model (about a third of a checkpoint), not for a
    // whole new checkpoint.
    const std::string log = w.log("efbig-checkpoint").string();
    const ChildStatus s = test::run_child(w.pretrain(run), log, checkpoint_size / 2);
    const std::string text = read_file(log);
    INFO(text);
    CHECK(s.exit_code == 1);
    CHECK(text.find("cannot write checkpoint") != std::string::npos);
    CHECK(text.find("File too large") != std::string::npos);
    CHECK(read_file(run / "last.ckpt") == good);
    CHECK(temporaries(run).empty());
    const auto at = text.find(" at step ");
    REQUIRE(at != std::string::npos);
    resumed_step = std::stoll(text.substr(at + 9));
  }
  {
    // Room for a few bytes of metrics: the first record of the resumed run does not fit. The
    // records the failed run logged after the checkpoint are dropped first, as every resume does.
    train::JsonLinesWriter((run / "metrics.jsonl").string()).drop_records_after(resumed_step);
    const auto metrics_size = static_cast<long long>(fs::file_size(run / "metrics.jsonl"));
    const std::string log = w.log("efbig-metrics").string();
    const ChildStatus s = test::run_child(w.pretrain(run), log, metrics_size + 16);
    const std::string text = read_file(log);
    INFO(text);
    CHECK(s.exit_code == 1);
    CHECK(text.find("cannot write metrics file") != std::string::npos);
    CHECK(text.find("File too large") != std::string::npos);
    CHECK(fs::file_size(run / "metrics.jsonl") == static_cast<uintmax_t>(metrics_size));
  }
  CHECK(read_file(run / "last.ckpt") == good);
  CHECK(temporaries(run).empty());

  const std::string log = w.log("after-full-disk").string();
  const ChildStatus s = test::run_child(w.pretrain(run), log);
  INFO(log_tail(log));
  REQUIRE(s.exit_code == 0);
  test::require_same_models_and_state(run, w.reference);
  require_whole_lines(run / "metrics.jsonl");
}

TEST_CASE("a real full disk (tmpfs, ENOSPC) while writing a checkpoint", "[reliability]") {
  const World& w = world();
  const fs::path run = w.dir / "enospc";
  fs::remove_all(run);
  stop_after_first_checkpoint(run);
  const std::string good = read_file(run / "last.ckpt");
  uintmax_t used = 0;
  for (const auto& e : fs::directory_iterator(run)) used += fs::file_size(e.path());
  // Room for what is there and half a checkpoint more: the next checkpoint cannot fit.
  const uintmax_t size = used + good.size() / 2;
  const fs::path mnt = w.dir / "enospc-mnt";
  const fs::path after = w.dir / "enospc-after";
  fs::create_directories(mnt);
  fs::create_directories(after);
  std::string command;
  for (const auto& a : w.pretrain(mnt)) command += "'" + a + "' ";
  const std::string script = "mount -t tmpfs -o size=" + std::to_string(size) + " tmpfs '" +
                             mnt.string() + "' || exit 77; cp -a '" + run.string() + "'/. '" +
                             mnt.string() + "'/ || exit 78; " + command + "; rc=$?; cp -a '" +
                             mnt.string() + "'/. '" + after.string() + "'/; exit $rc";
  const std::string log = w.log("enospc").string();
  const ChildStatus s = test::run_child(
      {"/usr/bin/unshare", "--user", "--map-root-user", "--mount", "/bin/sh", "-c", script}, log);
  const std::string text = read_file(log);
  INFO(text);
  const bool no_mount = s.exit_code == 77 || s.exit_code == 127 ||
                        (s.exit_code != 0 && text.find("unshare:") != std::string::npos);
  if (no_mount) {
    WARN("skipped: mounting a private tmpfs is not permitted here (" << text << ")");
    return;
  }
  CHECK(s.exit_code == 1);
  CHECK(text.find("cannot write checkpoint") != std::string::npos);
  CHECK(text.find("No space left on device") != std::string::npos);
  CHECK(read_file(after / "last.ckpt") == good);
  CHECK(temporaries(after).empty());

  // Space returns (the files move to a roomy disk): the same command finishes identically.
  const std::string resume_log = w.log("after-enospc").string();
  const ChildStatus r = test::run_child(w.pretrain(after), resume_log);
  INFO(log_tail(resume_log));
  REQUIRE(r.exit_code == 0);
  test::require_same_models_and_state(after, w.reference);
}

// Every kind of file a pretraining run writes, each killed half way through its write
// (CONVIRT_FAULT_KILL_WRITING, core/fault_injection.h): the kill must land (the run writes that
// kind), nothing under a final name may be half written, and the same command then ends exactly
// as the uninterrupted run.
TEST_CASE("kill -9 half way through writing each kind of file: nothing half written, same result",
          "[reliability]") {
  const World& w = world();
  struct Kill {
    std::string what;  // the writer's name for the file, as its errors give it
    std::string file;  // the file of that kind the kill interrupts
  };
  const Kill checkpoint{"checkpoint", "last.ckpt"};
  // Each scenario: the kills in order, then the same command once more without one.
  const std::vector<std::vector<Kill>> scenarios = {
      {{"run options", "run_options.json"}},
      {{"vocabulary", "vocab.txt"}},
      {{"metrics record", "metrics.jsonl"}},
      {checkpoint},
      {{"weight file", "best_model.pt"}},
      // A run that died after logging steps past its last checkpoint: the rerun rewrites the log
      // without them, and is killed while it does.
      {checkpoint, {"metrics file", "metrics.jsonl"}},
  };
  for (const auto& kills : scenarios) {
    const std::string scenario = kills.back().what;
    SECTION(scenario) {
      const fs::path run = w.dir / ("kill-writing-" + scenario);
      fs::remove_all(run);
      for (const auto& [what, file] : kills) {
        const std::string log = w.log("kill-writing-" + what).string();
        ChildStatus s;
        {
          test::ScopedEnv env(std::map<std::string, std::string>{{kFaultKillWritingEnv, what}});
          s = test::run_child(w.pretrain(run), log);
        }
        INFO("killed while writing " << what << "; log:\n" << log_tail(log));
        REQUIRE(s.signal == SIGKILL);
        test::require_nothing_half_written(run);
        // The interrupted temporary is there: the kill landed inside the write.
        bool interrupted = false;
        for (const auto& t : temporaries(run)) interrupted |= t.rfind(file + ".tmp.", 0) == 0;
        if (what == "metrics record") {
          const std::string text = read_file(run / "metrics.jsonl");
          interrupted = !text.empty() && text.back() != '\n';
        }
        CHECK(interrupted);
      }
      finish_as_the_reference(w, run, "after-kill-writing-" + scenario);
    }
  }
}

// The files of the main job (`convirt reproduce`, here its smallest form: Random init only, on a
// tiny generated dataset), each kind killed half way through its first write; the same command
// then writes the same results as a run that was never killed.
TEST_CASE("kill -9 half way through writing each file of the main job: the rerun ends the same",
          "[reliability]") {
  const World& w = world();
  const auto reproduce = [](const fs::path& out) {
    return std::vector<std::string>{test::convirt_cli(),
                                    "reproduce",
                                    "--out",
                                    out.string(),
                                    "--quick",
                                    "--methods",
                                    "random",
                                    "--linear-seeds",
                                    "1",
                                    "--fractions",
                                    "1",
                                    "--no-finetune",
                                    "--train-studies",
                                    "32",
                                    "--validate-studies",
                                    "8",
                                    "--test-studies",
                                    "4",
                                    "--chexpert-train",
                                    "40",
                                    "--chexpert-valid",
                                    "20",
                                    "--retrieval-candidates",
                                    "8",
                                    "--synthetic-image-size",
                                    "32",
                                    "--image-size",
                                    "32",
                                    "--threads",
                                    "1"};
  };
  // Made once: Catch2 runs the test case from the top for each section.
  static const fs::path reference = [&] {
    const fs::path out = w.dir / "reproduce-reference";
    const std::string log = w.log("reproduce-reference").string();
    const ChildStatus s = test::run_child(reproduce(out), log);
    INFO(log_tail(log));
    REQUIRE(s.exit_code == 0);
    // Options given with --quick keep their values: one label fraction, no fine-tuning.
    const auto results = nlohmann::json::parse(read_file(out / "results.json"));
    REQUIRE(results["linear"]["Random init"]["CheXpert"].size() == 1);
    REQUIRE(results["linear"]["Random init"]["CheXpert"].contains("100"));
    REQUIRE(results["finetune"].empty());
    return out;
  }();
  struct Kill {
    const char* what;  // the writer's name for the file, as its errors give it
    const char* file;  // the file (under the run folder) whose temporary the kill leaves
  };
  const Kill kills[] = {{"synthetic data marker", "data/.convirt_synthetic_complete"},
                        {"results", "results.json"},
                        {"tables", "tables.md"},
                        {"figure", ".svg"},
                        {"report", "report.md"}};
  for (const Kill& kill : kills) {
    SECTION(kill.what) {
      const fs::path run = w.dir / (std::string("reproduce-killed-") + kill.what);
      fs::remove_all(run);
      const std::string log = w.log(std::string("reproduce-killed-") + kill.what).string();
      ChildStatus s;
      {
        test::ScopedEnv env(std::map<std::string, std::string>{{kFaultKillWritingEnv, kill.what}});
        s = test::run_child(reproduce(run), log);
      }
      INFO("killed while writing " << kill.what << "; log:\n" << log_tail(log));
      REQUIRE(s.signal == SIGKILL);
      // The kill landed inside the write: its temporary is there, and no file of that kind is
      // under its final name yet (this is each kind's first write in a fresh folder).
      const fs::path file(kill.file);
      const fs::path folder = run / file.parent_path();
      bool interrupted = false;
      for (const auto& t : temporaries(folder))
        interrupted |= t.find(file.filename().string() + ".tmp.") != std::string::npos;
      CHECK(interrupted);
      for (const auto& e : fs::directory_iterator(folder)) {
        const std::string name = e.path().filename().string();
        if (name.find(".tmp.") != std::string::npos) continue;
        CHECK_FALSE((name == file.filename().string() ||
                     (file.filename() == ".svg" && e.path().extension() == ".svg")));
      }

      const std::string rerun_log = w.log(std::string("reproduce-rerun-") + kill.what).string();
      const ChildStatus r = test::run_child(reproduce(run), rerun_log);
      INFO(log_tail(rerun_log));
      REQUIRE(r.exit_code == 0);
      for (const char* name :
           {"results.json", "tables.md", "report.md", "label_efficiency.svg", "figure3_tsne.svg"}) {
        INFO(name);
        CHECK(read_file(run / name) == read_file(reference / name));
      }
    }
  }
}
