#pragma once
// `convirt pretrain`: the flags of a pipeline::PretrainJob, a run of pipeline::pretrain that Ctrl-C
// (or SIGTERM) stops at a checkpoint, and the run's summary.

#include "subcommand.h"

#include <CLI/CLI.hpp>

namespace convirt::cli {

/// Adds `pretrain` to `app`.
Subcommand add_pretrain(CLI::App& app);

}  // namespace convirt::cli
