#pragma once
// `convirt search`: the nearest entries of an embeddings file to a text or an image
// (pipeline::search). Kept out of main.cpp, which only creates it and runs it when parsed.

#include <convirt/pipeline/embed.h>

#include <CLI/CLI.hpp>

namespace convirt::cli {

class SearchCommand {
 public:
  /// Adds the `search` subcommand and its options to `app`.
  explicit SearchCommand(CLI::App* app);
  bool parsed() const { return app_->parsed(); }
  /// Prints the top k as "rank score item" lines, or as JSON with --json. A query that is neither
  /// or both of --text and --image is a usage error (status 2).
  int run();

 private:
  CLI::App* app_ = nullptr;
  pipeline::SearchOptions options_;
  bool json_ = false;
};

}  // namespace convirt::cli
