#pragma once
// Config files for the `convirt` command line: a JSON object or a YAML mapping whose keys are the
// long option names of the subcommand (e.g. {"out": "runs/x", "max-steps": 2000, "fractions":
// [0.01, 0.1, 1]}), optionally nested under the subcommand's name ({"pretrain": {...}}). Its
// entries become command-line arguments placed before the user's own, so flags given on the command
// line override the file. Both formats map to the same keys; a file is read as YAML when its name
// ends in .yaml or .yml, else as JSON.
//
// The parsers take untrusted text: it is refused above kMaxConfigBytes, and nesting deeper than
// kMaxConfigDepth is an error raised while parsing (before the parser recurses that deep).

#include <cstddef>
#include <string>
#include <vector>

namespace convirt::cli {

enum class ConfigFormat { kJson, kYaml };

/// Largest config text accepted (1 MiB: a config is a few hundred bytes).
constexpr std::size_t kMaxConfigBytes = std::size_t{1} << 20;
/// Deepest nesting of objects/lists accepted (a config needs 3: sections, lists, scalars).
constexpr int kMaxConfigDepth = 16;
/// Most values (scalars, lists, mappings) a config may expand to; YAML aliases can multiply a small
/// text into an exponential number of values.
constexpr std::size_t kMaxConfigValues = 100000;

/// kYaml for names ending in .yaml / .yml (any case), else kJson.
ConfigFormat config_format_for(const std::string& path);

/// Rewrites argv: removes every `--config FILE` / `--config=FILE` and inserts FILE's options right
/// after the subcommand path (the leading arguments that do not start with '-'). Errors (unreadable
/// file, invalid JSON or YAML, a file over the limits, nesting deeper than the subcommand level,
/// non-scalar values) are std::invalid_argument naming the file and the key.
std::vector<std::string> expand_config_args(const std::vector<std::string>& args);

/// The options a config text stands for, as "--key value..." arguments; entries of sections other
/// than `subcommand` are left out. `source_name` names the text in errors. Never crashes on bad
/// input: every problem is a std::invalid_argument.
///
/// Example:
///   auto args = convirt::cli::config_to_args("out: runs/x\nfractions: [0.1, 1]\n", "pretrain",
///                                            "run.yaml", convirt::cli::ConfigFormat::kYaml);
///   // {"--out", "runs/x", "--fractions", "0.1", "1"}
std::vector<std::string> config_to_args(const std::string& text, const std::string& subcommand,
                                        const std::string& source_name,
                                        ConfigFormat format = ConfigFormat::kJson);

}  // namespace convirt::cli
