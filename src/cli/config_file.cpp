#include "config_file.h"

#include <nlohmann/json.hpp>
#if CONVIRT_HAVE_YAML
#include <yaml-cpp/yaml.h>
#endif

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace convirt::cli {
namespace {

using nlohmann::json;

std::string scalar_text(const json& v, const std::string& source, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number_unsigned()) return std::to_string(v.get<uint64_t>());
  if (v.is_number_float()) {
    std::ostringstream os;
    os.precision(17);
    os << v.get<double>();
    return os.str();
  }
  throw std::invalid_argument(source + ": option '" + key +
                              "' must be a string, a number, a boolean or a list of those");
}

void append_option(std::vector<std::string>& out, const std::string& key, const json& v,
                   const std::string& source) {
  if (v.is_null()) return;
  if (v.is_boolean()) {
    // CLI11 flags accept --flag=true/false, so a false in the file can switch a default-on flag
    // off.
    out.push_back("--" + key + "=" + (v.get<bool>() ? "true" : "false"));
    return;
  }
  if (v.is_array()) {
    out.push_back("--" + key);
    for (const auto& item : v) out.push_back(scalar_text(item, source, key));
    return;
  }
  out.push_back("--" + key);
  out.push_back(scalar_text(v, source, key));
}

std::string depth_error(const std::string& source) {
  return source + ": nesting is deeper than the limit of " + std::to_string(kMaxConfigDepth) +
         " levels (a config needs at most 3: sections, lists, values)";
}

json parse_json(const std::string& text, const std::string& source) {
  // The callback sees each value's depth while the (iterative) parser reads it, so a deep text is
  // refused before a recursive destructor or conversion could meet it.
  json::parser_callback_t limit = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxConfigDepth) throw std::invalid_argument(depth_error(source));
    return true;
  };
  try {
    return json::parse(text, limit);
  } catch (const json::exception& e) {
    throw std::invalid_argument(source + ": invalid JSON: " + e.what());
  }
}

#if CONVIRT_HAVE_YAML
// YAML 1.2 core-schema reading of a plain scalar: booleans and null are typed, everything else
// stays text (CLI11 converts numbers itself and reports bad ones with the option's name).
json yaml_scalar(const YAML::Node& node) {
  const std::string& v = node.Scalar();
  if (node.Tag() == "!") return v;  // quoted: always a string
  if (v == "true" || v == "True" || v == "TRUE") return true;
  if (v == "false" || v == "False" || v == "FALSE") return false;
  if (v.empty() || v == "~" || v == "null" || v == "Null" || v == "NULL") return nullptr;
  return v;
}

json yaml_to_json(const YAML::Node& node, int depth, size_t& values, const std::string& source) {
  if (depth > kMaxConfigDepth) throw std::invalid_argument(depth_error(source));
  if (++values > kMaxConfigValues) {
    throw std::invalid_argument(source + ": the config expands to more than " +
                                std::to_string(kMaxConfigValues) + " values (YAML aliases?)");
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return yaml_scalar(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item, depth + 1, values, source));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          throw std::invalid_argument(source + ": mapping keys must be option names (text), got " +
                                      (kv.first.IsSequence() ? "a list" : "a mapping"));
        }
        const std::string key = kv.first.Scalar();
        if (out.contains(key)) {
          throw std::invalid_argument(source + ": option '" + key + "' is given twice");
        }
        out[key] = yaml_to_json(kv.second, depth + 1, values, source);
      }
      return out;
    }
  }
  return nullptr;
}

json parse_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    // yaml-cpp's own recursion guard (DeepRecursion) lands here too.
    throw std::invalid_argument(source + ": invalid YAML: " + e.what());
  }
  size_t values = 0;
  return yaml_to_json(root, 1, values, source);
}
#else
json parse_yaml(const std::string&, const std::string& source) {
  throw std::invalid_argument(source +
                              ": this build reads JSON configs only (it was built without "
                              "yaml-cpp); rename the file to .json and write it as JSON");
}
#endif

}  // namespace

ConfigFormat config_format_for(const std::string& path) {
  std::string lower = path;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto ends_with = [&](const std::string& suffix) {
    return lower.size() >= suffix.size() &&
           lower.compare(lower.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".yaml") || ends_with(".yml") ? ConfigFormat::kYaml : ConfigFormat::kJson;
}

std::vector<std::string> config_to_args(const std::string& text, const std::string& subcommand,
                                        const std::string& source_name, ConfigFormat format) {
  if (text.size() > kMaxConfigBytes) {
    throw std::invalid_argument(source_name + ": config is " + std::to_string(text.size()) +
                                " bytes, more than the limit of " +
                                std::to_string(kMaxConfigBytes));
  }
  const bool yaml = format == ConfigFormat::kYaml;
  json doc = yaml ? parse_yaml(text, source_name) : parse_json(text, source_name);
  // An empty YAML document (or only comments) is a config that sets nothing.
  if (yaml && doc.is_null()) return {};
  if (!doc.is_object()) {
    throw std::invalid_argument(source_name + ": a config file must hold " +
                                (yaml ? "a YAML mapping" : "a JSON object") + " of options, got " +
                                std::string(doc.type_name()));
  }
  std::vector<std::string> out;
  for (const auto& [key, value] : doc.items()) {
    if (value.is_object()) {
      // A section for a subcommand: used only when it is the one being run.
      if (key != subcommand) continue;
      for (const auto& [k, v] : value.items()) {
        if (v.is_object()) {
          throw std::invalid_argument(source_name + ": option '" + key + "." + k +
                                      "' is nested too deeply (one level of sections at most)");
        }
        append_option(out, k, v, source_name);
      }
      continue;
    }
    append_option(out, key, value, source_name);
  }
  return out;
}

std::vector<std::string> expand_config_args(const std::vector<std::string>& args) {
  std::vector<std::string> rest;
  std::vector<std::string> files;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--config") {
      if (i + 1 >= args.size()) throw std::invalid_argument("--config needs a file name");
      files.push_back(args[++i]);
    } else if (a.rfind("--config=", 0) == 0) {
      files.push_back(a.substr(9));
    } else {
      rest.push_back(a);
    }
  }
  if (files.empty()) return rest;
  // The subcommand path: leading words (after the program name) that are not options.
  size_t insert_at = 1;
  std::string subcommand;
  while (insert_at < rest.size() && !rest[insert_at].empty() && rest[insert_at][0] != '-') {
    subcommand = rest[insert_at];
    ++insert_at;
  }
  std::vector<std::string> from_files;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) throw std::invalid_argument("--config: cannot read '" + f + "'");
    // Read one byte past the limit, so an oversized file is refused without reading all of it.
    std::string text(kMaxConfigBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    auto more = config_to_args(text, subcommand, f, config_format_for(f));
    from_files.insert(from_files.end(), more.begin(), more.end());
  }
  std::vector<std::string> out(rest.begin(), rest.begin() + static_cast<long>(insert_at));
  out.insert(out.end(), from_files.begin(), from_files.end());
  out.insert(out.end(), rest.begin() + static_cast<long>(insert_at), rest.end());
  return out;
}

}  // namespace convirt::cli
