#pragma once
// Line charts with optional error bars, in SVG: the label-efficiency curves (AUC against the label
// fraction, one line per method) and the pretraining curves (loss and learning rate against the
// step) that the main job draws next to its tables. Every point carries its values as data-x /
// data-y / data-err attributes and a <title>, so a figure can be read back by a program as well as
// by eye.

#include <torch/arg.h>

#include <string>
#include <vector>

namespace convirt::eval {

/// One line: points (x[i], y[i]) in order, with optional symmetric error bars err[i] (empty =
/// none).
struct LineSeries {
  std::string name;
  std::vector<double> x;
  std::vector<double> y;
  std::vector<double> err;
};

/// One panel of a chart: its axes and lines. Non-finite points (a validation loss not measured at
/// that step, say) are skipped, and the line is broken there.
struct LineChartPanel {
  std::string title;
  std::string x_label;
  std::string y_label;
  /// Logarithmic x axis (label fractions 1 %, 10 %, 100 % are evenly spaced on it); x must be > 0.
  bool log_x = false;
  /// Logarithmic y axis (a learning rate decayed by halvings); y must be > 0.
  bool log_y = false;
  std::vector<LineSeries> series;
};

/// Options of render_line_chart_svg / write_line_chart_svg.
///
/// Example:
///   auto opts = convirt::eval::LineChartOptions().title("Label efficiency");
struct LineChartOptions {
  /// Overall title above the panels; empty = none.
  TORCH_ARG(std::string, title) = "";
  TORCH_ARG(int64_t, panel_width) = 420;
  TORCH_ARG(int64_t, panel_height) = 300;
};

/// The SVG document of the panels, side by side, one shared legend (series are coloured by name, so
/// a method has the same colour in every panel).
///
/// Example:
///   convirt::eval::LineChartPanel p{"CheXpert, linear", "labels (%)", "AUC (%)", true, false,
///                                   {{"ConVIRT", {1, 10, 100}, {80, 88, 91}, {1.2, 0.8, 0.3}}}};
///   std::string svg = convirt::eval::render_line_chart_svg({p});
std::string render_line_chart_svg(const std::vector<LineChartPanel>& panels,
                                  const LineChartOptions& options = LineChartOptions());

/// Writes render_line_chart_svg(panels, options) to `path`, replacing it whole (temporary file,
/// flush, rename).
void write_line_chart_svg(const std::string& path, const std::vector<LineChartPanel>& panels,
                          const LineChartOptions& options = LineChartOptions());

}  // namespace convirt::eval
