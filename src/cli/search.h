#pragma once
// `convirt search`: the nearest entries of an embeddings file to a text or an image
// (pipeline::search). main adds it with add_search.

#include "subcommand.h"

#include <convirt/pipeline/embed.h>

#include <CLI/CLI.hpp>

namespace convirt::cli {

class SearchCommand {
 public:
  /// Adds the `search` subcommand and its options to `app`.
  explicit SearchCommand(CLI::App* app);
  CLI::App* app() const { return app_; }
  /// Prints the top k as "rank score item" lines, or as JSON with --json. A query that is neither
  /// or both of --text and --image is a usage error (status 2).
  int run();

 private:
  CLI::App* app_ = nullptr;
  pipeline::SearchOptions options_;
  bool json_ = false;
};

/// Adds `search` to `app`.
Subcommand add_search(CLI::App& app);

}  // namespace convirt::cli
