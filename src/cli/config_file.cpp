#include "config_file.h"

#include <nlohmann/json.hpp>

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

}  // namespace

std::vector<std::string> config_to_args(const std::string& json_text, const std::string& subcommand,
                                        const std::string& source_name) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw std::invalid_argument(source_name + ": invalid JSON: " + e.what());
  }
  if (!doc.is_object()) {
    throw std::invalid_argument(source_name + ": a config file must hold a JSON object, got " +
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
    std::ifstream in(f);
    if (!in) throw std::invalid_argument("--config: cannot read '" + f + "'");
    std::ostringstream ss;
    ss << in.rdbuf();
    auto more = config_to_args(ss.str(), subcommand, f);
    from_files.insert(from_files.end(), more.begin(), more.end());
  }
  std::vector<std::string> out(rest.begin(), rest.begin() + static_cast<long>(insert_at));
  out.insert(out.end(), from_files.begin(), from_files.end());
  out.insert(out.end(), rest.begin() + static_cast<long>(insert_at), rest.end());
  return out;
}

}  // namespace convirt::cli
