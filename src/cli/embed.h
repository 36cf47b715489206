#pragma once
// `convirt embed`: embeddings of an image folder (or CSV) and a text file into one file
// (pipeline::embed). main adds it with add_embed.

#include "subcommand.h"

#include <convirt/pipeline/embed.h>

#include <CLI/CLI.hpp>

namespace convirt::cli {

class EmbedCommand {
 public:
  /// Adds the `embed` subcommand and its options to `app`.
  explicit EmbedCommand(CLI::App* app);
  CLI::App* app() const { return app_; }
  /// Embeds, printing progress to stderr and the files written to stdout. Neither --images nor
  /// --texts is a usage error (status 2).
  int run();

 private:
  CLI::App* app_ = nullptr;
  pipeline::EmbedOptions options_;
  bool quiet_ = false;
};

/// Adds `embed` to `app`.
Subcommand add_embed(CLI::App& app);

}  // namespace convirt::cli
