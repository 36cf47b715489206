// Named model configurations: the JSON files of src/models/presets/, embedded at build time
// (presets_data.h), and the config specs the command line and Python accept.
#include <convirt/core/check.h>
#include <convirt/models/presets.h>

#include "presets_data.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace convirt::models {
namespace {

std::string known_presets() {
  std::string s;
  for (const auto& p : detail::embedded_presets())
    s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

const detail::EmbeddedPreset* find_preset(const std::string& name) {
  for (const auto& p : detail::embedded_presets())
    if (name == p.name) return &p;
  return nullptr;
}

bool is_json_text(const std::string& spec) {
  const auto first = spec.find_first_not_of(" \t\r\n");
  return first != std::string::npos && spec[first] == '{';
}

bool is_json_path(const std::string& spec) {
  return std::filesystem::path(spec).extension() == ".json";
}

}  // namespace

ModelConfig paper_preset() {
  return preset("paper");
}

ModelConfig small_preset(int64_t vocab_size) {
  auto config = preset("small");
  config.bert().config().vocab_size(vocab_size);
  return config;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : detail::embedded_presets()) names.emplace_back(p.name);
  return names;
}

ModelConfig preset(const std::string& name) {
  const auto* p = find_preset(name);
  CONVIRT_CHECK_VALUE(p != nullptr, "unknown model preset '", name, "'; known: ", known_presets());
  try {
    return ModelConfig::from_json(p->json);
  } catch (const c10::Error& e) {
    // The build checks that every preset is a JSON object; a field it cannot check lands here.
    CONVIRT_CHECK_VALUE(false, "model preset '", name, "' (src/models/presets/", name,
                        ".json) is not a valid model config: ", e.what_without_backtrace());
  }
  return {};
}

bool is_preset_spec(const std::string& spec) {
  return !is_json_text(spec) && !is_json_path(spec);
}

ModelConfig config_from(const std::string& spec, const std::string& argument) {
  if (is_json_text(spec)) return ModelConfig::from_json(spec);
  if (is_json_path(spec)) {
    std::ifstream in(spec, std::ios::binary);
    CONVIRT_CHECK_VALUE(in.good(), argument, ": cannot read the model config file '", spec, "'");
    std::ostringstream text;
    text << in.rdbuf();
    return ModelConfig::from_json(text.str());
  }
  CONVIRT_CHECK_VALUE(find_preset(spec) != nullptr, argument, ": unknown model preset '", spec,
                      "'; known: ", known_presets(),
                      " (or ModelConfig JSON text, or a .json file path)");
  return preset(spec);
}

}  // namespace convirt::models
