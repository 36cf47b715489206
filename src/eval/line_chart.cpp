#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/eval/line_chart.h>

#include "svg_util.h"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

namespace convirt::eval {
namespace {

using detail::escape_xml;

constexpr int64_t kGap = 20;          // between panels
constexpr int64_t kTitleHeight = 28;  // overall title
constexpr int64_t kPanelTitle = 22;   // each panel's title
constexpr int64_t kAxisLeft = 58;     // room for the y tick labels and the y label
constexpr int64_t kAxisBottom = 42;   // room for the x tick labels and the x label
constexpr int64_t kRight = 12;
constexpr int64_t kLegendWidth = 190;

// An axis maps data values to pixels, on a linear or a log10 scale.
struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double transform(double v) const { return log ? std::log10(v) : v; }
  double fraction(double v) const { return (transform(v) - lo) / (hi - lo); }
};

bool usable(double v, bool log) {
  return std::isfinite(v) && (!log || v > 0);
}

// Range of the points (and their error bars) on the axis' scale, padded by 5 % and widened when
// degenerate, so a single point or a flat line is still drawn inside the frame.
Axis make_axis(const std::vector<double>& values, bool log) {
  Axis a;
  a.log = log;
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (double v : values) {
    if (!usable(v, log)) continue;
    lo = std::min(lo, a.transform(v));
    hi = std::max(hi, a.transform(v));
  }
  if (!std::isfinite(lo)) {
    lo = 0;
    hi = 1;
  }
  if (hi - lo < 1e-12) {
    const double pad = log ? 0.5 : std::max(std::abs(lo) * 0.1, 0.5);
    lo -= pad;
    hi += pad;
  }
  const double pad = 0.05 * (hi - lo);
  a.lo = lo - pad;
  a.hi = hi + pad;
  return a;
}

// Tick values in data units: each power of ten on a log axis, otherwise a 1-2-5 step giving about
// five ticks.
std::vector<double> ticks(const Axis& a) {
  std::vector<double> t;
  if (a.log) {
    for (double e = std::ceil(a.lo); e <= std::floor(a.hi) + 1e-9; e += 1)
      t.push_back(std::pow(10, e));
    if (t.empty()) t.push_back(std::pow(10, (a.lo + a.hi) / 2));
    return t;
  }
  const double raw = (a.hi - a.lo) / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  for (double v = std::ceil(a.lo / step) * step; v <= a.hi + 1e-9 * step; v += step) {
    t.push_back(std::abs(v) < 1e-12 * step ? 0.0 : v);
  }
  return t;
}

std::string number(double v) {
  return fmt::format("{:.6g}", v);
}

void check_panel(const LineChartPanel& p, size_t i) {
  for (size_t s = 0; s < p.series.size(); ++s) {
    const auto& l = p.series[s];
    CONVIRT_CHECK_VALUE(l.x.size() == l.y.size(), "panels[", i, "].series[", s,
                        "]: x and y must have the same length, got ", l.x.size(), " and ",
                        l.y.size());
    CONVIRT_CHECK_VALUE(l.err.empty() || l.err.size() == l.y.size(), "panels[", i, "].series[", s,
                        "].err must be empty or have ", l.y.size(), " values, got ", l.err.size());
    for (size_t k = 0; k < l.err.size(); ++k) {
      CONVIRT_CHECK_VALUE(!(l.err[k] < 0), "panels[", i, "].series[", s, "].err[", k,
                          "] must be >= 0, got ", l.err[k]);
    }
  }
}

}  // namespace

std::string render_line_chart_svg(const std::vector<LineChartPanel>& panels,
                                  const LineChartOptions& options) {
  CONVIRT_CHECK_VALUE(!panels.empty(), "panels must hold at least one panel");
  const int64_t pw = options.panel_width(), ph = options.panel_height();
  CONVIRT_CHECK_VALUE(pw > kAxisLeft + kRight + 20 && ph > kPanelTitle + kAxisBottom + 20,
                      "panel_width must exceed ", kAxisLeft + kRight + 20,
                      " and panel_height must exceed ", kPanelTitle + kAxisBottom + 20, ", got ",
                      pw, " x ", ph);
  // Colours follow the order in which names first appear, across panels.
  std::map<std::string, int64_t> colour_of;
  std::vector<std::string> legend;
  for (size_t i = 0; i < panels.size(); ++i) {
    check_panel(panels[i], i);
    for (const auto& l : panels[i].series) {
      if (colour_of.emplace(l.name, static_cast<int64_t>(legend.size())).second) {
        legend.push_back(l.name);
      }
    }
  }

  const int64_t n = static_cast<int64_t>(panels.size());
  const int64_t top = options.title().empty() ? 0 : kTitleHeight;
  const int64_t width = n * pw + (n - 1) * kGap + kLegendWidth;
  const int64_t height = top + std::max(ph, 30 + 18 * static_cast<int64_t>(legend.size()));
  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  if (!options.title().empty()) {
    svg << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"16\">"
        << escape_xml(options.title()) << "</text>\n";
  }

  for (int64_t i = 0; i < n; ++i) {
    const auto& p = panels[static_cast<size_t>(i)];
    std::vector<double> xs, ys;
    for (const auto& l : p.series) {
      for (size_t k = 0; k < l.x.size(); ++k) {
        if (!usable(l.x[k], p.log_x) || !usable(l.y[k], p.log_y)) continue;
        xs.push_back(l.x[k]);
        const double e = l.err.empty() || !std::isfinite(l.err[k]) ? 0.0 : l.err[k];
        ys.push_back(l.y[k] + e);
        ys.push_back(p.log_y && l.y[k] - e <= 0 ? l.y[k] : l.y[k] - e);
      }
    }
    const Axis ax = make_axis(xs, p.log_x), ay = make_axis(ys, p.log_y);
    const double x0 = static_cast<double>(i * (pw + kGap) + kAxisLeft);
    const double y0 = static_cast<double>(top + kPanelTitle);
    const double w = static_cast<double>(pw - kAxisLeft - kRight);
    const double h = static_cast<double>(ph - kPanelTitle - kAxisBottom);
    auto px = [&](double v) { return x0 + ax.fraction(v) * w; };
    // SVG's y axis points down; larger values are drawn higher, as in any plot.
    auto py = [&](double v) { return y0 + h - ay.fraction(v) * h; };

    svg << "<g class=\"panel\">\n<text x=\"" << x0 + w / 2 << "\" y=\"" << y0 - 6
        << "\" text-anchor=\"middle\" font-size=\"14\">" << escape_xml(p.title) << "</text>\n"
        << "<rect x=\"" << x0 << "\" y=\"" << y0 << "\" width=\"" << w << "\" height=\"" << h
        << "\" fill=\"none\" stroke=\"#999999\"/>\n";
    for (double t : ticks(ax)) {
      svg << "<line x1=\"" << px(t) << "\" y1=\"" << y0 + h << "\" x2=\"" << px(t) << "\" y2=\""
          << y0 + h + 4 << "\" stroke=\"#999999\"/><text x=\"" << px(t) << "\" y=\"" << y0 + h + 16
          << "\" text-anchor=\"middle\" font-size=\"11\">" << number(t) << "</text>\n";
    }
    for (double t : ticks(ay)) {
      svg << "<line x1=\"" << x0 - 4 << "\" y1=\"" << py(t) << "\" x2=\"" << x0 + w << "\" y2=\""
          << py(t) << "\" stroke=\"#eeeeee\"/><text x=\"" << x0 - 6 << "\" y=\"" << py(t) + 4
          << "\" text-anchor=\"end\" font-size=\"11\">" << number(t) << "</text>\n";
    }
    svg << "<text x=\"" << x0 + w / 2 << "\" y=\"" << y0 + h + 34
        << "\" text-anchor=\"middle\" font-size=\"12\">" << escape_xml(p.x_label) << "</text>\n"
        << "<text transform=\"translate(" << x0 - 44 << ' ' << y0 + h / 2
        << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">" << escape_xml(p.y_label)
        << "</text>\n";

    for (const auto& l : p.series) {
      const char* c = detail::palette_colour(colour_of.at(l.name));
      svg << "<g class=\"series\" data-name=\"" << escape_xml(l.name) << "\">\n";
      // A line through consecutive usable points; an unusable point breaks it.
      std::ostringstream path;
      bool open = false;
      for (size_t k = 0; k < l.x.size(); ++k) {
        if (!usable(l.x[k], p.log_x) || !usable(l.y[k], p.log_y)) {
          open = false;
          continue;
        }
        path << (open ? " L" : " M") << px(l.x[k]) << ' ' << py(l.y[k]);
        open = true;
      }
      if (!path.str().empty()) {
        svg << "<path d=\"" << path.str().substr(1) << "\" fill=\"none\" stroke=\"" << c
            << "\" stroke-width=\"1.5\"/>\n";
      }
      const bool dense = l.x.size() > 60;  // a training curve: the line alone reads better
      for (size_t k = 0; k < l.x.size(); ++k) {
        if (!usable(l.x[k], p.log_x) || !usable(l.y[k], p.log_y)) continue;
        const bool has_err = !l.err.empty() && std::isfinite(l.err[k]) && l.err[k] > 0;
        if (has_err) {
          const double lo = p.log_y && l.y[k] - l.err[k] <= 0 ? l.y[k] : l.y[k] - l.err[k];
          const double cx = px(l.x[k]);
          svg << "<path class=\"error-bar\" d=\"M" << cx << ' ' << py(lo) << " L" << cx << ' '
              << py(l.y[k] + l.err[k]) << " M" << cx - 4 << ' ' << py(lo) << " L" << cx + 4 << ' '
              << py(lo) << " M" << cx - 4 << ' ' << py(l.y[k] + l.err[k]) << " L" << cx + 4 << ' '
              << py(l.y[k] + l.err[k]) << "\" stroke=\"" << c << "\" fill=\"none\"/>\n";
        }
        svg << "<circle class=\"point\" cx=\"" << px(l.x[k]) << "\" cy=\"" << py(l.y[k])
            << "\" r=\"" << (dense ? 1.2 : 3.0) << "\" fill=\"" << c << "\" data-x=\""
            << number(l.x[k]) << "\" data-y=\"" << number(l.y[k]) << '"';
        if (!l.err.empty()) svg << " data-err=\"" << number(l.err[k]) << '"';
        svg << "><title>" << escape_xml(l.name) << ": " << number(l.x[k]) << ", " << number(l.y[k]);
        if (has_err) svg << " \xC2\xB1 " << number(l.err[k]);
        svg << "</title></circle>\n";
      }
      svg << "</g>\n";
    }
    svg << "</g>\n";
  }

  const int64_t lx = n * pw + (n - 1) * kGap + 10;
  int64_t ly = top + kPanelTitle;
  svg << "<g class=\"legend\">\n";
  for (size_t k = 0; k < legend.size(); ++k) {
    svg << "<line x1=\"" << lx << "\" y1=\"" << ly + 6 << "\" x2=\"" << lx + 16 << "\" y2=\""
        << ly + 6 << "\" stroke=\"" << detail::palette_colour(static_cast<int64_t>(k))
        << "\" stroke-width=\"2\"/><text x=\"" << lx + 22 << "\" y=\"" << ly + 10
        << "\" font-size=\"12\">" << escape_xml(legend[k]) << "</text>\n";
    ly += 18;
  }
  svg << "</g>\n</svg>\n";
  return svg.str();
}

void write_line_chart_svg(const std::string& path, const std::vector<LineChartPanel>& panels,
                          const LineChartOptions& options) {
  CONVIRT_CHECK_VALUE(!path.empty(), "path must not be empty");
  write_file_atomically(path, render_line_chart_svg(panels, options), "figure");
}

}  // namespace convirt::eval
