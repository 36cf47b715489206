#pragma once
// Scatter plots coloured by category, in SVG (no image library needed; any browser opens them),
// laid out like the paper's Figure 3: one panel per encoder, side by side, one shared legend.

#include <torch/arg.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace convirt::eval {

/// One panel: 2-D points [N, 2] and their integer category ids [N].
struct ScatterPanel {
  std::string title;
  torch::Tensor points;
  torch::Tensor labels;
};

/// Options of render_scatter_svg / write_scatter_svg.
///
/// Example:
///   auto opts = convirt::eval::ScatterPlotOptions().title("Figure 3").category_names(names);
struct ScatterPlotOptions {
  /// Overall title above the panels; empty = none.
  TORCH_ARG(std::string, title) = "";
  /// Legend text of category id i; ids outside the list are shown as "class <id>".
  TORCH_ARG(std::vector<std::string>, category_names) = {};
  TORCH_ARG(int64_t, panel_width) = 420;
  TORCH_ARG(int64_t, panel_height) = 420;
  TORCH_ARG(double, point_radius) = 2.5;
  TORCH_ARG(double, point_opacity) = 0.8;
};

/// The SVG document of the panels. Each panel is scaled to its own bounding box (t-SNE coordinates
/// have no shared scale). Categories are coloured with the 10-colour "tab10" palette (cycled).
///
/// Example:
///   std::string svg = convirt::eval::render_scatter_svg({{"ConVIRT", layout, labels}});
std::string render_scatter_svg(const std::vector<ScatterPanel>& panels,
                               const ScatterPlotOptions& options = ScatterPlotOptions());

/// Writes render_scatter_svg(panels, options) to `path` (through a temporary file and a rename, so
/// a reader never sees half a file). Fails with a clear error when the folder is not writable.
///
/// Example:
///   convirt::eval::write_scatter_svg("run/figure3.svg", {{"ImageNet", a, la}, {"ConVIRT", b, lb}},
///                                    convirt::eval::ScatterPlotOptions().category_names(names));
void write_scatter_svg(const std::string& path, const std::vector<ScatterPanel>& panels,
                       const ScatterPlotOptions& options = ScatterPlotOptions());

}  // namespace convirt::eval
