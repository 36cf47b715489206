#pragma once
// `convirt embed`: embeddings of an image folder (or CSV) and a text file into one file
// (pipeline::embed). Kept out of main.cpp, which only creates it and runs it when parsed.

#include <convirt/pipeline/embed.h>

#include <CLI/CLI.hpp>

namespace convirt::cli {

class EmbedCommand {
 public:
  /// Adds the `embed` subcommand and its options to `app`.
  explicit EmbedCommand(CLI::App* app);
  bool parsed() const { return app_->parsed(); }
  /// Embeds, printing progress to stderr and the files written to stdout. Neither --images nor
  /// --texts is a usage error (status 2).
  int run();

 private:
  CLI::App* app_ = nullptr;
  pipeline::EmbedOptions options_;
  bool quiet_ = false;
};

}  // namespace convirt::cli
