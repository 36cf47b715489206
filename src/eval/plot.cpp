#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/eval/plot.h>

#include "svg_util.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

namespace convirt::eval {
namespace {

using detail::escape_xml;

constexpr int64_t kMargin = 30;
constexpr int64_t kTitleHeight = 28;
constexpr int64_t kLegendWidth = 180;

std::string category_name(const ScatterPlotOptions& o, int64_t id) {
  if (id >= 0 && id < static_cast<int64_t>(o.category_names().size())) {
    return o.category_names()[static_cast<size_t>(id)];
  }
  return "class " + std::to_string(id);
}

const char* colour(int64_t id) {
  return detail::palette_colour(id);
}

}  // namespace

std::string render_scatter_svg(const std::vector<ScatterPanel>& panels,
                               const ScatterPlotOptions& options) {
  CONVIRT_CHECK_VALUE(!panels.empty(), "panels must hold at least one panel");
  CONVIRT_CHECK_VALUE(options.panel_width() > 2 * kMargin && options.panel_height() > 2 * kMargin,
                      "panel_width and panel_height must exceed ", 2 * kMargin, ", got ",
                      options.panel_width(), " x ", options.panel_height());
  CONVIRT_CHECK_VALUE(options.point_radius() > 0, "point_radius must be > 0, got ",
                      options.point_radius());
  std::vector<std::pair<at::Tensor, at::Tensor>> data;
  std::map<int64_t, bool> categories;
  for (size_t i = 0; i < panels.size(); ++i) {
    const auto& p = panels[i];
    CONVIRT_CHECK_VALUE(p.points.defined() && p.points.dim() == 2 && p.points.size(1) == 2,
                        "panels[", i, "].points must be [N, 2], got ",
                        p.points.defined() ? convirt::detail::shape_str(p.points.sizes())
                                           : std::string("undefined"));
    CONVIRT_CHECK_VALUE(
        p.labels.defined() && p.labels.dim() == 1 && p.labels.size(0) == p.points.size(0),
        "panels[", i, "].labels must be [N] with N = ", p.points.size(0), ", got ",
        p.labels.defined() ? convirt::detail::shape_str(p.labels.sizes())
                           : std::string("undefined"));
    CONVIRT_CHECK_TYPE(!at::isFloatingType(p.labels.scalar_type()), "panels[", i,
                       "].labels must hold integer category ids, got ", p.labels.scalar_type());
    auto pts = p.points.detach().to(at::kCPU).to(at::kDouble).contiguous();
    CONVIRT_CHECK_VALUE(at::isfinite(pts).all().item<bool>(), "panels[", i,
                        "].points must be finite");
    auto lab = p.labels.detach().to(at::kCPU).to(at::kLong).contiguous();
    for (int64_t k = 0; k < lab.size(0); ++k) categories[lab.data_ptr<int64_t>()[k]] = true;
    data.emplace_back(pts, lab);
  }

  const int64_t pw = options.panel_width(), ph = options.panel_height();
  const int64_t top = options.title().empty() ? 0 : kTitleHeight;
  const int64_t width = pw * static_cast<int64_t>(panels.size()) + kLegendWidth;
  const int64_t legend_height = 24 + 18 * static_cast<int64_t>(categories.size());
  const int64_t height = top + std::max(ph + kTitleHeight, legend_height + kTitleHeight);
  std::ostringstream svg;
  svg.precision(6);
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!options.title().empty()) {
    svg << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"16\">"
        << escape_xml(options.title()) << "</text>\n";
  }
  for (size_t i = 0; i < panels.size(); ++i) {
    const auto& [pts, lab] = data[i];
    const int64_t x0 = pw * static_cast<int64_t>(i), y0 = top + kTitleHeight;
    svg << "<g class=\"panel\">\n"
        << "<text x=\"" << x0 + pw / 2 << "\" y=\"" << top + 20
        << "\" text-anchor=\"middle\" font-size=\"14\">" << escape_xml(panels[i].title)
        << "</text>\n"
        << "<rect x=\"" << x0 + kMargin / 2 << "\" y=\"" << y0 << "\" width=\"" << pw - kMargin
        << "\" height=\"" << ph - kMargin << "\" fill=\"none\" stroke=\"#cccccc\"/>\n";
    const int64_t n = pts.size(0);
    if (n > 0) {
      auto mins = std::get<0>(pts.min(0)), maxs = std::get<0>(pts.max(0));
      const double xmin = mins[0].item<double>(), ymin = mins[1].item<double>();
      // A degenerate extent (one point, or all equal) maps to the panel's centre.
      const double xr = std::max(maxs[0].item<double>() - xmin, 1e-12);
      const double yr = std::max(maxs[1].item<double>() - ymin, 1e-12);
      const double inner_w = static_cast<double>(pw - 2 * kMargin);
      const double inner_h = static_cast<double>(ph - 2 * kMargin);
      const double* xy = pts.data_ptr<double>();
      const int64_t* l = lab.data_ptr<int64_t>();
      for (int64_t k = 0; k < n; ++k) {
        const double cx = static_cast<double>(x0 + kMargin) + (xy[2 * k] - xmin) / xr * inner_w;
        // SVG's y axis points down; flip so larger values are higher as in a usual plot.
        const double cy =
            static_cast<double>(y0 + kMargin / 2) + inner_h - (xy[2 * k + 1] - ymin) / yr * inner_h;
        svg << "<circle cx=\"" << cx << "\" cy=\"" << cy << "\" r=\"" << options.point_radius()
            << "\" fill=\"" << colour(l[k]) << "\" fill-opacity=\"" << options.point_opacity()
            << "\"/>\n";
      }
    }
    svg << "</g>\n";
  }
  const int64_t lx = pw * static_cast<int64_t>(panels.size()) + 10;
  int64_t ly = top + kTitleHeight + 10;
  svg << "<g class=\"legend\">\n";
  for (const auto& [id, unused] : categories) {
    (void)unused;
    svg << "<circle cx=\"" << lx + 6 << "\" cy=\"" << ly + 6 << "\" r=\"5\" fill=\"" << colour(id)
        << "\"/><text x=\"" << lx + 18 << "\" y=\"" << ly + 10 << "\" font-size=\"12\">"
        << escape_xml(category_name(options, id)) << "</text>\n";
    ly += 18;
  }
  svg << "</g>\n</svg>\n";
  return svg.str();
}

void write_scatter_svg(const std::string& path, const std::vector<ScatterPanel>& panels,
                       const ScatterPlotOptions& options) {
  CONVIRT_CHECK_VALUE(!path.empty(), "path must not be empty");
  const std::string svg = render_scatter_svg(panels, options);
  write_file_atomically(path, svg, "figure");
}

}  // namespace convirt::eval
