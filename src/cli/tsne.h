#pragma once
// `convirt tsne`: the t-SNE figure of candidate image embeddings (pipeline::tsne_figure).

#include "subcommand.h"

#include <CLI/CLI.hpp>

namespace convirt::cli {

/// Adds `tsne` to `app`.
Subcommand add_tsne(CLI::App& app);

}  // namespace convirt::cli
