#pragma once
// What every SVG figure of the eval area shares: text escaping and the colour palette, so a method
// or a category is drawn the same way in every figure.

#include <cstdint>
#include <string>

namespace convirt::eval::detail {

// matplotlib's "tab10": distinguishable and familiar from the paper's figure style.
inline const char* palette_colour(int64_t index) {
  static const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  constexpr int64_t kSize = 10;
  return kPalette[((index % kSize) + kSize) % kSize];
}

inline std::string escape_xml(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace convirt::eval::detail
