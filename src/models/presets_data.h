#pragma once
// The preset files embedded at build time (cmake/EmbedPresets.cmake generates the definition).

#include <string>
#include <vector>

namespace convirt::models::detail {

struct EmbeddedPreset {
  const char* name;  ///< the file's name without ".json"
  const char* json;  ///< the file's text
};

/// Every src/models/presets/*.json listed in src/models/CMakeLists.txt, in that order.
const std::vector<EmbeddedPreset>& embedded_presets();

}  // namespace convirt::models::detail
