#pragma once
// `convirt eval zeroshot`: zero-shot classification of a labelled dataset from text prompts
// (pipeline::zero_shot). Kept out of main.cpp, which only creates it under `eval` and runs it when
// parsed.

#include <convirt/pipeline/zero_shot.h>

#include <CLI/CLI.hpp>

#include <string>

namespace convirt::cli {

class EvalZeroShotCommand {
 public:
  /// Adds the `zeroshot` subcommand and its options to `eval`.
  explicit EvalZeroShotCommand(CLI::App* eval);
  bool parsed() const { return app_->parsed(); }
  /// Runs the evaluation, prints the metric (and per-label AUCs) and writes --out when given.
  int run();

 private:
  CLI::App* app_ = nullptr;
  pipeline::ZeroShotOptions options_;
  std::string dataset_ = "chexpert";
  std::string out_;
};

}  // namespace convirt::cli
