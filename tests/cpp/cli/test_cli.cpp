// The `convirt` program itself (built to bin/convirt): `eval linear` on each config format and on
// flags, the results.json it writes, and the exit status and message of bad input.
#include <convirt/eval/tables.h>

#include <sys/wait.h>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fixtures.h"
#include "test_util.h"
// After every header that may pull in glog, whose CHECK would shadow Catch's.
#include <catch2/catch.hpp>

namespace {

struct Run {
  int status = -1;
  std::string output;
};

// Runs the program with `args` (shell words), stdout and stderr captured together.
Run run_convirt(const std::string& args, const std::filesystem::path& log) {
  const std::string cmd =
      std::string("'") + CONVIRT_CLI_PATH + "' " + args + " > '" + log.string() + "' 2>&1";
  const int raw = std::system(cmd.c_str());
  Run r;
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  std::ifstream in(log);
  std::ostringstream ss;
  ss << in.rdbuf();
  r.output = ss.str();
  return r;
}

}  // namespace

TEST_CASE("convirt eval linear from a YAML or JSON config writes results.json", "[cli]") {
  convirt::test::TempDir tmp("convirt-cli");
  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  convirt::test::write_covidx(tmp / "covidx", 24, 12);
  const auto yaml = tmp / "eval.yaml";
  convirt::test::write_text_file(yaml, "model: " + model +
                                           "\n"
                                           "linear:\n"
                                           "  dataset: covidx\n"
                                           "  data-root: " +
                                           (tmp / "covidx").string() +
                                           "\n"
                                           "  fractions: [1.0]\n"
                                           "  seeds: 1\n"
                                           "  max-epochs: 3\n"
                                           "  workers: 1\n"
                                           "  name: From YAML\n");
  const auto out_yaml = tmp / "yaml.json";
  auto r =
      run_convirt("eval linear --config '" + yaml.string() + "' --out '" + out_yaml.string() + "'",
                  tmp / "log1.txt");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(r.output.find("| From YAML |") != std::string::npos);
  auto res = convirt::eval::Results::load(out_yaml.string());
  CHECK(res.classification("linear", "From YAML", "COVIDx", "100").has_value());

  const auto json = tmp / "eval.json";
  convirt::test::write_text_file(json, "{\"model\": \"" + model +
                                           "\", \"dataset\": \"covidx\", \"data-root\": \"" +
                                           (tmp / "covidx").string() +
                                           "\", \"fractions\": [1.0], \"seeds\": 1, "
                                           "\"max-epochs\": 3, \"name\": \"From JSON\"}");
  const auto out_json = tmp / "json.json";
  // A flag given on the command line overrides the file.
  auto j = run_convirt(
      "eval linear --config '" + json.string() + "' --name Flag --out '" + out_json.string() + "'",
      tmp / "log2.txt");
  INFO(j.output);
  REQUIRE(j.status == 0);
  auto jres = convirt::eval::Results::load(out_json.string());
  CHECK(jres.methods("linear") == std::vector<std::string>{"Flag"});
  // Same data, seed and options: the same number, whatever the config format.
  CHECK(jres.classification("linear", "Flag", "COVIDx", "100")->mean ==
        Approx(res.classification("linear", "From YAML", "COVIDx", "100")->mean));
}

TEST_CASE("convirt eval and eval zeroshot refuse a ragged table line unless --skip-bad-rows",
          "[cli]") {
  convirt::test::TempDir tmp("convirt-cli");
  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  const auto root = tmp / "covidx";
  // 24 test rows: one bad row stays inside the 5% bad-sample budget.
  convirt::test::write_covidx(root, 24, 24);
  convirt::test::write_text_file(root / "train.txt",
                                 convirt::test::read_text(root / "train.txt") + "broken\n");
  const std::string args = "eval linear --model '" + model + "' --dataset covidx --data-root '" +
                           root.string() + "' --fractions 1 --seeds 1 --max-epochs 2 --workers 1";
  auto strict = run_convirt(args, tmp / "log1.txt");
  INFO(strict.output);
  CHECK(strict.status != 0);
  CHECK(strict.output.find("train.txt line 25: ragged line") != std::string::npos);
  auto skipping = run_convirt(args + " --skip-bad-rows", tmp / "log2.txt");
  INFO(skipping.output);
  CHECK(skipping.status == 0);
  CHECK(skipping.output.find("ragged line") != std::string::npos);  // listed as skipped

  // eval zeroshot reads the test table alike.
  convirt::test::write_text_file(tmp / "vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nno\n");
  convirt::test::write_text_file(root / "test.txt",
                                 convirt::test::read_text(root / "test.txt") + "broken\n");
  const std::string zs = "eval zeroshot --model '" + model + "' --dataset covidx --data-root '" +
                         root.string() + "' --workers 1";
  auto zs_strict = run_convirt(zs, tmp / "log3.txt");
  INFO(zs_strict.output);
  CHECK(zs_strict.status != 0);
  CHECK(zs_strict.output.find("test.txt line 25: ragged line") != std::string::npos);
  auto zs_skipping = run_convirt(zs + " --skip-bad-rows", tmp / "log4.txt");
  INFO(zs_skipping.output);
  CHECK(zs_skipping.status == 0);
  CHECK(zs_skipping.output.find("ragged line") != std::string::npos);
}

TEST_CASE("convirt reproduce refuses a retrieval set too small for P@50 before it trains",
          "[cli]") {
  convirt::test::TempDir tmp("convirt-cli");
  auto r = run_convirt("reproduce --quick --methods random --out '" + (tmp / "run").string() +
                           "' --retrieval-candidates 2 --train-studies 16 --validate-studies 4 "
                           "--test-studies 2 --chexpert-train 8 --chexpert-valid 8 "
                           "--synthetic-image-size 32 --image-size 32 --threads 1",
                       tmp / "log.txt");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK(r.output.find("retrieval_candidates: Table 2's P@50 needs at least 50 retrieval "
                      "candidates") != std::string::npos);
  CHECK(r.output.find("has 16") != std::string::npos);
  CHECK(r.output.find("protocol done") == std::string::npos);  // nothing was evaluated first
}

TEST_CASE("convirt reports bad configs and options with a message and exit status", "[cli]") {
  convirt::test::TempDir tmp("convirt-cli");
  const auto deep = tmp / "deep.yaml";
  convirt::test::write_text_file(deep, "a: " + std::string(50, '[') + std::string(50, ']') + "\n");
  auto r = run_convirt("synth --config '" + deep.string() + "'", tmp / "log.txt");
  CHECK(r.status == 2);
  CHECK(r.output.find("deeper than the limit") != std::string::npos);

  const auto bad = tmp / "bad.json";
  convirt::test::write_text_file(bad, "{\"out\": ");
  r = run_convirt("synth --config '" + bad.string() + "'", tmp / "log.txt");
  CHECK(r.status == 2);
  CHECK(r.output.find("invalid JSON") != std::string::npos);

  const std::string model = (tmp / "model.pt").string();
  convirt::test::write_small_model(model);
  r = run_convirt("eval linear --model '" + model + "' --dataset imagenet", tmp / "log.txt");
  CHECK(r.status == 1);
  CHECK(r.output.find("dataset must be one of") != std::string::npos);
  r = run_convirt("eval finetune --model '" + model + "' --dataset mura", tmp / "log.txt");
  CHECK(r.status == 1);
  CHECK(r.output.find("data_root must be set for dataset mura") != std::string::npos);
  r = run_convirt("eval linear --help", tmp / "log.txt");
  CHECK(r.status == 0);
  CHECK(r.output.find("--dataset") != std::string::npos);
  CHECK(r.output.find("--data-root") != std::string::npos);
}
