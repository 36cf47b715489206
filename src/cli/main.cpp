// The `convirt` program: synth, pretrain, eval (linear | finetune | retrieval |
// zeroshot), embed, search, tsne, reproduce, launch. Each subcommand lives in
// src/cli/<command>.cpp, where add_<command> adds its options and says how to
// run it; it calls the library (convirt::pipeline and the areas under it), so
// no experiment logic lives here. main only builds the app, parses, and runs
// the subcommand that was parsed.

#include "config_file.h"
#include "embed.h"
#include "eval.h"
#include "launch.h"
#include "pretrain.h"
#include "reproduce.h"
#include "search.h"
#include "subcommand.h"
#include "synth.h"
#include "tsne.h"

#include <convirt/core/version.h>

#include <c10/util/Exception.h>
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

using namespace convirt;

namespace {

// libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main). Its
// default lets idle OpenMP threads spin, which on a small machine steals the
// cores from the data-loading threads: pretraining ran 10x slower on 2 busy
// cores. So unless the user chose a policy, the program re-executes itself once
// with the passive one.
void ensure_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe",
          argv);  // returns only on failure: then carry on as we are
}

}  // namespace

int main(int argc, char** argv) {
  ensure_passive_openmp(argv);
  std::vector<std::string> args(argv, argv + argc);
  try {
    args = cli::expand_config_args(args);
  } catch (const std::exception& e) {
    std::cerr << "convirt: " << e.what() << "\n";
    return 2;
  }
  CLI::App app{"convirt " + version() +
               ": ConVIRT contrastive pretraining of medical image encoders "
               "from paired reports"};
  app.set_version_flag("--version", version());
  app.require_subcommand(1);
  // Before any subcommand is added: each copies the option defaults when it is
  // created.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.footer(
      "Every subcommand also takes --config FILE (.json, or "
      ".yaml/.yml): a JSON object or YAML "
      "mapping of its long option names, optionally under a section "
      "named after the subcommand; "
      "flags on the command line override the file.");

  // In the order `convirt --help` lists them.
  std::vector<cli::Subcommand> commands;
  commands.push_back(cli::add_synth(app));
  commands.push_back(cli::add_pretrain(app));
  for (auto& c : cli::add_eval(app)) commands.push_back(std::move(c));
  commands.push_back(cli::add_embed(app));
  commands.push_back(cli::add_search(app));
  commands.push_back(cli::add_tsne(app));
  commands.push_back(cli::add_reproduce(app));
  commands.push_back(cli::add_launch(app));

  std::vector<const char*> cargs;
  for (const auto& s : args) cargs.push_back(s.c_str());
  try {
    app.parse(static_cast<int>(cargs.size()), cargs.data());
  } catch (const CLI::ParseError& e) {
    // --help and --version are "errors" with status 0; every real usage error
    // is status 2.
    return app.exit(e) == 0 ? 0 : 2;
  }

  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
  } catch (const c10::Error& e) {
    std::cerr << "convirt: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "convirt: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
