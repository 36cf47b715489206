// Run folders a researcher can trust, tested on the real `convirt pretrain` program: the options a
// run was started with are recorded and a resume that changes them is refused (budgets only with
// --allow-option-change), one process at a time holds the folder, a signal stops the run with a
// checkpoint, a record and the shell's exit status, the saved model records the image size it was
// trained at, a missing --vocab is an error, and usage errors exit 2.

#include <convirt/io/checkpoint.h>
#include <convirt/train/run_folder.h>

#include <torch/torch.h>
// After LibTorch, whose logging headers may define their own CHECK.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "../reliability/process.h"
#include "test_util.h"

namespace fs = std::filesystem;
using namespace convirt;
using Catch::Matchers::Contains;

namespace {

struct Ran {
  test::ChildStatus status;
  std::string output;
};

Ran run(const std::vector<std::string>& args, const fs::path& log) {
  std::vector<std::string> argv{test::convirt_cli()};
  argv.insert(argv.end(), args.begin(), args.end());
  Ran r;
  r.status = test::run_child(argv, log.string());
  r.output = test::read_file(log);
  return r;
}

// A tiny synthetic dataset (32 training pairs at 32 px), made once per test process.
struct Data {
  test::TempDir dir{"convirt-runint"};
  fs::path root;
  Data() {
    const auto r = run(
        {"synth", "--out", (dir / "data").string(), "--train-studies", "32", "--validate-studies",
         "8", "--test-studies", "2", "--chexpert-train", "4", "--chexpert-valid", "4",
         "--retrieval-candidates", "10", "--synthetic-image-size", "32", "--data-seed", "4"},
        dir / "synth.log");
    REQUIRE(r.status.exit_code == 0);
    root = dir / "data" / "mimic-cxr-jpg";
  }
};

Data& dataset() {
  static Data d;
  return d;
}

// `convirt pretrain` into `out` with small, fast options; `extra` is appended (later flags win).
std::vector<std::string> pretrain(const fs::path& out, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a{"pretrain",
                             "--data",
                             dataset().root.string(),
                             "--out",
                             out.string(),
                             "--image-size",
                             "32",
                             "--batch-size",
                             "4",
                             "--vocab-size",
                             "200",
                             "--max-steps",
                             "2",
                             "--eval-every",
                             "2",
                             "--log-every",
                             "1",
                             "--threads",
                             "1",
                             "--workers",
                             "1",
                             "--seed",
                             "1"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  const auto at = t.rfind('\n');
  return at == std::string::npos ? t : t.substr(at + 1);
}

}  // namespace

TEST_CASE("run options: differences name each option, budgets pass only when allowed",
          "[train][run_folder]") {
  const std::string recorded =
      R"({"learning_rate": 0.0001, "batch_size": 32, "max_steps": 10, "workers": 2,
          "model": {"image_size": 64, "resnet": {"base_width": 32}}})";
  const std::string now =
      R"({"learning_rate": 0.001, "batch_size": 32, "max_steps": 20, "workers": 1,
          "model": {"image_size": 32, "resnet": {"base_width": 32}}, "seed": 3})";
  const auto all = train::run_option_differences(recorded, now, false);
  REQUIRE(all.size() == 5);
  CHECK(all[0] == "learning_rate: recorded 0.0001, now 0.001");
  CHECK(all[1] == "max_steps: recorded 10, now 20");
  CHECK(all[2] == "model.image_size: recorded 64, now 32");
  CHECK(all[3] == "seed: recorded (absent), now 3");
  CHECK(all[4] == "workers: recorded 2, now 1");
  const auto unsafe = train::run_option_differences(recorded, now, true);
  REQUIRE(unsafe.size() == 3);
  CHECK(unsafe[0].rfind("learning_rate:", 0) == 0);
  CHECK(unsafe[1].rfind("model.image_size:", 0) == 0);
  CHECK(unsafe[2].rfind("seed:", 0) == 0);
  CHECK(train::run_option_differences(recorded, recorded, false).empty());
  CHECK_THROWS_WITH(train::run_option_differences("[1]", now, false),
                    Contains("must be a JSON object"));
}

TEST_CASE("run folder lock: re-entered in one process, refused to another naming the holder",
          "[train][run_folder]") {
  test::TempDir tmp("convirt-lock");
  const fs::path dir = tmp / "run";
  {
    train::RunFolderLock a(dir.string());
    train::RunFolderLock b(dir.string());  // the same process: a program around its Pretrainer
    const std::string text = test::read_file(dir / "run.lock");
    CHECK(text.rfind(std::to_string(::getpid()) + " ", 0) == 0);
    // Another process is refused at once, with our pid in the message.
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      int code = 3;
      try {
        train::RunFolderLock c(dir.string());
        code = 0;
      } catch (const c10::Error& e) {
        const std::string what = e.what();
        code = what.find("in use by another process (pid " + std::to_string(::getppid())) !=
                       std::string::npos
                   ? 1
                   : 2;
      }
      ::_exit(code);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
  }
  // Released with the last holder: another process now gets it.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    try {
      train::RunFolderLock c(dir.string());
      ::_exit(0);
    } catch (...) {
      ::_exit(1);
    }
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

TEST_CASE("convirt pretrain records its options and refuses a resume that changes them",
          "[train][run_folder][cli]") {
  test::TempDir tmp("convirt-runopts");
  const fs::path out = tmp / "run";
  auto r = run(pretrain(out), tmp / "first.log");
  INFO(r.output);
  REQUIRE(r.status.exit_code == 0);
  const std::string recorded = test::read_file(out / "run_options.json");
  CHECK_THAT(recorded, Contains("\"learning_rate\": 0.0001"));
  CHECK_THAT(recorded, Contains("\"batch_size\": 4"));
  CHECK_THAT(recorded, Contains("\"vocab_hash\""));
  CHECK_THAT(recorded, Contains("\"image_size\": 32"));

  // The saved model records the resolution it was trained at (not the preset's 64).
  CHECK(io::load_convirt((out / "model.pt").string())->config().image_size() == 32);

  // A changed learning rate, batch size or image size is refused, each difference named, and the
  // run folder is left as it was.
  const std::string ckpt_before = test::read_file(out / "last.ckpt");
  r = run(pretrain(out, {"--lr", "0.001", "--batch-size", "8", "--image-size", "48"}),
          tmp / "changed.log");
  CHECK(r.status.exit_code == 1);
  CHECK_THAT(r.output, Contains("learning_rate: recorded 0.0001, now 0.001"));
  CHECK_THAT(r.output, Contains("batch_size: recorded 4, now 8"));
  CHECK_THAT(r.output, Contains("model.image_size: recorded 32, now 48"));
  CHECK_THAT(r.output, Contains("--allow-option-change"));
  CHECK(test::read_file(out / "last.ckpt") == ckpt_before);
  CHECK(test::read_file(out / "run_options.json") == recorded);

  // A larger step budget is a change too, unless allowed; the flag never allows an unsafe one.
  r = run(pretrain(out, {"--max-steps", "3"}), tmp / "budget.log");
  CHECK(r.status.exit_code == 1);
  CHECK_THAT(r.output, Contains("max_steps: recorded 2, now 3"));
  r = run(pretrain(out, {"--max-steps", "3", "--lr", "0.001", "--allow-option-change"}),
          tmp / "unsafe.log");
  CHECK(r.status.exit_code == 1);
  CHECK_THAT(r.output, Contains("learning_rate: recorded 0.0001, now 0.001"));
  CHECK_THAT(r.output, !Contains("max_steps"));
  r = run(pretrain(out, {"--max-steps", "3", "--allow-option-change"}), tmp / "allowed.log");
  INFO(r.output);
  CHECK(r.status.exit_code == 0);
  CHECK_THAT(r.output, Contains("after 3 steps"));
  CHECK_THAT(test::read_file(out / "run_options.json"), Contains("\"max_steps\": 3"));
}

TEST_CASE("convirt pretrain: a startup summary, skipped.tsv, the vocabulary inside the model",
          "[train][run_folder][cli]") {
  test::TempDir tmp("convirt-runsummary");
  const fs::path out = tmp / "run";
  auto r = run(pretrain(out), tmp / "run.log");
  INFO(r.output);
  REQUIRE(r.status.exit_code == 0);
  // The generator writes a few unusable reports on purpose; they are counted by reason.
  CHECK_THAT(r.output, Contains("[pretrain] pairs: "));
  CHECK_THAT(r.output, Contains(" validation ("));
  CHECK_THAT(r.output, Contains("built from the reports into " + (out / "vocab.txt").string()));
  CHECK_THAT(r.output, Contains("trainable"));
  CHECK_THAT(r.output, Contains("device cpu, precision fp32, batch 4 x 1 rank(s)"));
  CHECK(test::read_file(out / "skipped.tsv").rfind("split\tstage\tpath\treason\n", 0) == 0);
  const auto tokens = io::read_convirt_vocabulary((out / "model.pt").string()).tokens;
  CHECK(tokens.size() > 5);
  CHECK(test::read_file(out / "vocab.txt").rfind(tokens[0] + "\n" + tokens[1] + "\n", 0) == 0);

  // Retrieval with another run's vocabulary is refused, both fingerprints named; without --vocab
  // the model's own is used.
  const fs::path retrieval = dataset().root.parent_path() / "chexpert-8x200";
  const fs::path other = tmp / "other";
  r = run(pretrain(other, {"--vocab-size", "150"}), tmp / "other.log");
  REQUIRE(r.status.exit_code == 0);
  r = run({"eval", "retrieval", "--model", (out / "model.pt").string(), "--retrieval-dir",
           retrieval.string(), "--image-root", (dataset().root.parent_path() / "chexpert").string(),
           "--vocab", (other / "vocab.txt").string()},
          tmp / "mismatch.log");
  CHECK(r.status.exit_code == 1);
  CHECK_THAT(r.output, Contains("is not the vocabulary the model"));
  r = run(
      {"eval", "retrieval", "--model", (out / "model.pt").string(), "--retrieval-dir",
       retrieval.string(), "--image-root", (dataset().root.parent_path() / "chexpert").string()},
      tmp / "own.log");
  INFO(r.output);
  CHECK(r.status.exit_code == 0);
  CHECK_THAT(r.output, Contains("text"));

  // A budget of bad pairs below what the data has stops the run with the list.
  const fs::path broken = tmp / "broken";
  fs::copy(dataset().root, broken, fs::copy_options::recursive);
  // The generator's first study is a training study (mimic-cxr-2.0.0-split.csv).
  REQUIRE(fs::remove(broken / "files" / "p10" / "p10000000" / "s50000000.txt"));
  std::vector<std::string> args = pretrain(tmp / "strict", {"--max-bad-fraction", "0"});
  args[2] = broken.string();
  r = run(args, tmp / "strict.log");
  CHECK(r.status.exit_code == 1);
  CHECK_THAT(r.output, Contains("too many bad samples"));
  args = pretrain(tmp / "lenient", {"--max-bad-fraction", "0.5"});
  args[2] = broken.string();
  r = run(args, tmp / "lenient.log");
  INFO(r.output);
  CHECK(r.status.exit_code == 0);
  CHECK_THAT(test::read_file(tmp / "lenient" / "skipped.tsv"), Contains("missing report file"));
}

TEST_CASE("convirt pretrain: a held run folder, a missing --vocab and usage errors fail at once",
          "[train][run_folder][cli]") {
  test::TempDir tmp("convirt-runerr");
  const fs::path out = tmp / "run";
  {
    train::RunFolderLock held(out.string());
    const auto r = run(pretrain(out), tmp / "locked.log");
    CHECK(r.status.exit_code == 1);
    CHECK_THAT(r.output, Contains("in use by another process (pid " + std::to_string(::getpid())));
    CHECK_FALSE(fs::exists(out / "vocab.txt"));  // refused before reading or writing anything
  }
  const fs::path missing = tmp / "no-such-vocab.txt";
  auto r = run(pretrain(out, {"--vocab", missing.string()}), tmp / "vocab.log");
  CHECK(r.status.exit_code == 1);
  CHECK_THAT(r.output, Contains("vocab: no such file"));
  CHECK_FALSE(fs::exists(missing));

  r = run({"pretrain", "--data", dataset().root.string(), "--no-such-flag"}, tmp / "flag.log");
  CHECK(r.status.exit_code == 2);
  r = run(pretrain(out, {"--batch-size", "many"}), tmp / "value.log");
  CHECK(r.status.exit_code == 2);
  CHECK_THAT(r.output, Contains("--batch-size"));
  r = run({"pretrain", "--help"}, tmp / "help.log");
  CHECK(r.status.exit_code == 0);
}

TEST_CASE("convirt pretrain stopped by SIGINT or SIGTERM checkpoints, records it and exits 128+N",
          "[train][run_folder][cli]") {
  test::TempDir tmp("convirt-runsig");
  const fs::path out = tmp / "run";
  const auto args = pretrain(out, {"--max-steps", "100000", "--eval-every", "100000"});
  std::vector<std::string> argv{test::convirt_cli()};
  argv.insert(argv.end(), args.begin(), args.end());
  for (const auto& [sig, name, code] :
       {std::tuple<int, std::string, int>{SIGINT, "SIGINT", 130}, {SIGTERM, "SIGTERM", 143}}) {
    INFO(name);
    const fs::path log = tmp / (name + ".log");
    test::Child child(argv, log.string());
    // Signalled once training runs (a step has been logged after this start).
    const auto start = std::chrono::steady_clock::now();
    const std::string before = test::read_file(out / "metrics.jsonl");
    for (;;) {
      const std::string now = test::read_file(out / "metrics.jsonl");
      if (now.size() > before.size() && now.find("\"train\"", before.size()) != std::string::npos)
        break;
      REQUIRE_FALSE(child.finished());
      REQUIRE(std::chrono::steady_clock::now() - start < std::chrono::seconds(120));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    child.signal(sig);
    const auto status = child.wait();
    const std::string output = test::read_file(log);
    INFO(output);
    CHECK(status.exit_code == code);
    CHECK_THAT(output, Contains("interrupted by " + name));
    CHECK_THAT(output, !Contains("pretraining stopped"));
    CHECK_FALSE(fs::exists(out / "model.pt"));
    CHECK(fs::exists(out / "last.ckpt"));
    const std::string record = last_line(test::read_file(out / "metrics.jsonl"));
    CHECK_THAT(record, Contains("\"event\":\"interrupted\""));
    CHECK_THAT(record, Contains("\"signal\":\"" + name + "\""));
    CHECK_THAT(record, Contains("\"step\":"));
  }
}
