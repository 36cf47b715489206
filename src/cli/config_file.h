#pragma once
// Config files for the `convirt` command line: a JSON object whose keys are the long option names
// of the subcommand (e.g. {"out": "runs/x", "max-steps": 2000, "fractions": [0.01, 0.1, 1]}),
// optionally nested under the subcommand's name ({"pretrain": {...}}). Its entries become
// command-line arguments placed before the user's own, so flags given on the command line override
// the file.

#include <string>
#include <vector>

namespace convirt::cli {

/// Rewrites argv: removes every `--config FILE` / `--config=FILE` and inserts FILE's options right
/// after the subcommand path (the leading arguments that do not start with '-'). Errors (unreadable
/// file, invalid JSON, nesting deeper than the subcommand level, non-scalar values) name the file
/// and the key.
std::vector<std::string> expand_config_args(const std::vector<std::string>& args);

/// The options a JSON object stands for, as "--key value..." arguments.
std::vector<std::string> config_to_args(const std::string& json_text, const std::string& subcommand,
                                        const std::string& source_name);

}  // namespace convirt::cli
