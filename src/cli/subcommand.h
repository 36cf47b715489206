#pragma once
// What main needs of each `convirt` subcommand. Every src/cli/<command>.cpp has one
// add_<command>(CLI::App&) that adds the subcommand with its options and returns it; main adds them
// all, parses, and runs the one that was parsed.

#include <CLI/CLI.hpp>

#include <functional>

namespace convirt::cli {

/// A subcommand and how to run it. The options write into state that `run` owns (its closure holds
/// it), so the Subcommand stays valid after the add_<command> function that made it returns.
struct Subcommand {
  CLI::App* app = nullptr;
  /// Runs the command once the arguments are parsed; returns the process's exit status. Errors are
  /// exceptions, which main reports (status 1).
  std::function<int()> run;
};

}  // namespace convirt::cli
