#pragma once
// `convirt eval zeroshot`: zero-shot classification of a labelled dataset from text prompts
// (pipeline::zero_shot). `convirt eval` (eval.cpp) adds it with add_eval_zeroshot.

#include "subcommand.h"

#include <convirt/pipeline/zero_shot.h>

#include <CLI/CLI.hpp>

#include <string>

namespace convirt::cli {

class EvalZeroShotCommand {
 public:
  /// Adds the `zeroshot` subcommand and its options to `eval`.
  explicit EvalZeroShotCommand(CLI::App* eval);
  CLI::App* app() const { return app_; }
  /// Runs the evaluation, prints the metric (and per-label AUCs) and writes --out when given.
  int run();

 private:
  CLI::App* app_ = nullptr;
  pipeline::ZeroShotOptions options_;
  std::string dataset_ = "chexpert";
  std::string out_;
};

/// Adds `zeroshot` to `eval`.
Subcommand add_eval_zeroshot(CLI::App& eval);

}  // namespace convirt::cli
