// Config files of the `convirt` program: JSON and YAML map to the same arguments, sections select
// the subcommand, and hostile text (too big, too deep, alias bombs, wrong types) is refused with a
// message that names the file and the problem.
#include "config_file.h"

#include <fstream>
#include <stdexcept>

#include "test_util.h"
// After every header that may pull in glog, whose CHECK would shadow Catch's.
#include <catch2/catch.hpp>

namespace cli = convirt::cli;
using Args = std::vector<std::string>;

namespace {

Args json_args(const std::string& text, const std::string& sub = "pretrain") {
  return cli::config_to_args(text, sub, "cfg.json", cli::ConfigFormat::kJson);
}
Args yaml_args(const std::string& text, const std::string& sub = "pretrain") {
  return cli::config_to_args(text, sub, "cfg.yaml", cli::ConfigFormat::kYaml);
}

}  // namespace

TEST_CASE("JSON config: options, lists, flags and sections", "[cli][config]") {
  auto args = json_args(
      R"({"out": "runs/x", "max-steps": 2000, "lr": 0.5, "fractions": [0.01, 1],
          "no-resume": true, "finetune": false, "vocab": null,
          "pretrain": {"seed": 3}, "reproduce": {"seed": 4}})");
  // Keys come out in name order (options are named, so order does not matter to the parser).
  CHECK(args == Args{"--finetune=false", "--fractions", "0.01", "1", "--lr", "0.5", "--max-steps",
                     "2000", "--no-resume=true", "--out", "runs/x", "--seed", "3"});
  CHECK(json_args(R"({"reproduce": {"seed": 4}})", "reproduce") == Args{"--seed", "4"});
}

#if CONVIRT_HAVE_YAML
TEST_CASE("YAML config maps to the same arguments as JSON", "[cli][config]") {
  const std::string yaml =
      "# a comment\n"
      "out: runs/x\n"
      "max-steps: 2000\n"
      "lr: 0.5\n"
      "fractions: [0.01, 1]\n"
      "no-resume: true\n"
      "finetune: false\n"
      "vocab: ~\n"
      "pretrain:\n"
      "  seed: 3\n"
      "reproduce:\n"
      "  seed: 4\n";
  const std::string json =
      R"({"out": "runs/x", "max-steps": 2000, "lr": 0.5, "fractions": [0.01, 1],
          "no-resume": true, "finetune": false, "vocab": null,
          "pretrain": {"seed": 3}, "reproduce": {"seed": 4}})";
  CHECK(yaml_args(yaml) == json_args(json));
  // Block lists, and a quoted "true" stays text.
  CHECK(yaml_args("methods:\n  - random\n  - convirt\nname: 'true'\n") ==
        Args{"--methods", "random", "convirt", "--name", "true"});
  CHECK(yaml_args("# nothing set yet\n") == Args{});  // an empty YAML file holds no options
  CHECK_THROWS_WITH(yaml_args("- a\n- b\n"), Catch::Contains("must hold a YAML mapping"));
  CHECK_THROWS_WITH(yaml_args("out: [a\n"), Catch::Contains("cfg.yaml: invalid YAML"));
  CHECK_THROWS_WITH(yaml_args("out: a\nout: b\n"), Catch::Contains("'out' is given twice"));
  CHECK_THROWS_WITH(yaml_args("? [a, b]\n: c\n"), Catch::Contains("keys must be option names"));
  CHECK_THROWS_WITH(yaml_args("pretrain:\n  opt:\n    deeper: 1\n"),
                    Catch::Contains("'pretrain.opt' is nested too deeply"));
}

TEST_CASE("YAML limits: depth, size and alias expansion", "[cli][config]") {
  CHECK_THROWS_WITH(yaml_args(std::string(100000, '[') + std::string(100000, ']')),
                    Catch::Contains("cfg.yaml") && Catch::Contains("YAML"));
  CHECK_THROWS_WITH(yaml_args("a: " + std::string(40, '[') + std::string(40, ']') + "\n"),
                    Catch::Contains("deeper than the limit of 16"));
  std::string block = "a:\n";
  for (int i = 1; i < 30; ++i) block += std::string(static_cast<size_t>(2 * i), ' ') + "b:\n";
  CHECK_THROWS_WITH(yaml_args(block), Catch::Contains("deeper than the limit"));
  // "Billion laughs": 9 levels of 10 aliases expand to 10^9 values.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) bomb += (j ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  CHECK_THROWS_WITH(yaml_args(bomb), Catch::Contains("more than 100000 values"));
  CHECK_THROWS_WITH(yaml_args("out: " + std::string(cli::kMaxConfigBytes, 'x') + "\n"),
                    Catch::Contains("more than the limit of 1048576"));
}
#endif

TEST_CASE("JSON limits and errors", "[cli][config]") {
  CHECK_THROWS_WITH(json_args(std::string(200000, '[') + std::string(200000, ']')),
                    Catch::Contains("deeper than the limit of 16"));
  CHECK_THROWS_WITH(json_args(R"({"a": )" + std::string(17, '[') + std::string(17, ']') + "}"),
                    Catch::Contains("deeper than the limit of 16"));
  CHECK_THROWS_WITH(json_args("{\"out\": \"" + std::string(cli::kMaxConfigBytes, 'x') + "\"}"),
                    Catch::Contains("cfg.json: config is") && Catch::Contains("bytes"));
  CHECK_THROWS_WITH(json_args("{\"out\": "), Catch::Contains("cfg.json: invalid JSON"));
  CHECK_THROWS_WITH(json_args("[1, 2]"), Catch::Contains("must hold a JSON object"));
  CHECK_THROWS_WITH(json_args(R"({"pretrain": {"a": {"b": 1}}})"),
                    Catch::Contains("'pretrain.a' is nested too deeply"));
  CHECK_THROWS_WITH(json_args(R"({"fractions": [[1]]})"), Catch::Contains("option 'fractions'"));
}

TEST_CASE("expand_config_args reads .json and .yaml files", "[cli][config]") {
  convirt::test::TempDir tmp("convirt-config");
  const auto json = (tmp / "a.json").string(), yaml = (tmp / "b.YML").string();
  std::ofstream(json) << R"({"out": "from-json", "seed": 1})";
  std::ofstream(yaml) << "eval:\n  seeds: 2\n";
  CHECK(cli::config_format_for(yaml) == cli::ConfigFormat::kYaml);
  CHECK(cli::config_format_for(json) == cli::ConfigFormat::kJson);
  auto out = cli::expand_config_args({"convirt", "pretrain", "--config", json, "--seed", "7"});
  CHECK(out == Args{"convirt", "pretrain", "--out", "from-json", "--seed", "1", "--seed", "7"});
#if CONVIRT_HAVE_YAML
  CHECK(cli::expand_config_args({"convirt", "eval", "--config=" + yaml}) ==
        Args{"convirt", "eval", "--seeds", "2"});
#endif
  CHECK_THROWS_WITH(cli::expand_config_args({"convirt", "synth", "--config"}),
                    Catch::Contains("--config needs a file name"));
  CHECK_THROWS_WITH(cli::expand_config_args({"convirt", "synth", "--config", "/no/such.json"}),
                    Catch::Contains("cannot read '/no/such.json'"));
  // A big file is refused without being read whole.
  {
    std::ofstream big(tmp / "big.json");
    big << "{\"out\": \"" << std::string(cli::kMaxConfigBytes + 10, 'x') << "\"}";
  }
  CHECK_THROWS_WITH(
      cli::expand_config_args({"convirt", "synth", "--config", (tmp / "big.json").string()}),
      Catch::Contains("more than the limit"));
}
