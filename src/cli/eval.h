#pragma once
// `convirt eval`: the linear and fine-tuning protocols (pipeline::evaluate), zero-shot retrieval
// (pipeline::evaluate_retrieval) and zero-shot classification (eval_zeroshot.h) of a checkpoint.

#include "subcommand.h"

#include <CLI/CLI.hpp>

#include <vector>

namespace convirt::cli {

/// Adds `eval` to `app` and returns its subcommands: linear, finetune, retrieval, zeroshot.
std::vector<Subcommand> add_eval(CLI::App& app);

}  // namespace convirt::cli
