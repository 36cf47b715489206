#pragma once
// `convirt reproduce`: the whole pipeline on synthetic data (pipeline::reproduce), with --quick for
// a smoke test.

#include "subcommand.h"

#include <CLI/CLI.hpp>

namespace convirt::cli {

/// Adds `reproduce` to `app`.
Subcommand add_reproduce(CLI::App& app);

}  // namespace convirt::cli
