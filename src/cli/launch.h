#pragma once
// `convirt launch`: N processes of a command with torchrun's variables (dist::launch); a convirt
// subcommand after `--` names this very program.

#include "subcommand.h"

#include <CLI/CLI.hpp>

namespace convirt::cli {

/// Adds `launch` to `app`.
Subcommand add_launch(CLI::App& app);

}  // namespace convirt::cli
