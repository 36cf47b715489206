#pragma once
// `convirt synth`: writes the synthetic paired dataset (pipeline::ensure_synthetic). Its generator
// options are shared with `convirt reproduce`.

#include "subcommand.h"

#include <convirt/data/synthetic/generator.h>

#include <CLI/CLI.hpp>

namespace convirt::cli {

/// Adds `synth` to `app`.
Subcommand add_synth(CLI::App& app);

/// The synthetic generator's flags (--train-studies ... --data-seed), bound to `o`.
void add_synthetic_options(CLI::App* app, data::synthetic::SyntheticOptions& o);

}  // namespace convirt::cli
