#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/eval/tables.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace convirt::eval {
namespace {

using Json = nlohmann::ordered_json;

const char* const kSections[] = {"linear", "finetune", "retrieval"};

// Zero-shot cells have no fraction or k: they are stored under this key and written one level
// shallower ({"zeroshot": {METHOD: {TASK: x}}}).
constexpr const char* kZeroShot = "zeroshot";
constexpr const char* kZeroShotKey = "value";

void check_section(const std::string& s) {
  CONVIRT_CHECK_VALUE(s == "linear" || s == "finetune" || s == "retrieval" || s == kZeroShot,
                      "section must be \"linear\", \"finetune\", \"retrieval\" or \"zeroshot\", "
                      "got \"",
                      s, "\"");
}

void check_protocol(const std::string& p) {
  CONVIRT_CHECK_VALUE(p == "linear" || p == "finetune",
                      "protocol must be \"linear\" or \"finetune\", got \"", p, "\"");
}

void check_direction(const std::string& d) {
  CONVIRT_CHECK_VALUE(d == "image_image" || d == "text_image",
                      "direction must be \"image_image\" or \"text_image\", got \"", d, "\"");
}

Json number_or_null(double v) {
  return std::isfinite(v) ? Json(v) : Json(nullptr);
}

double read_number(const Json& j, const std::string& where) {
  if (j.is_null()) return Results::kUnknown;
  CONVIRT_CHECK_VALUE(j.is_number(), "results: ", where, " must be a number or null, got ",
                      j.dump());
  return j.get<double>();
}

std::string format_cell(const std::optional<ResultValue>& v, int decimals) {
  if (!v || !std::isfinite(v->mean)) return "-";
  if (std::isfinite(v->stddev)) {
    return fmt::format("{:.{}f} ± {:.{}f}", v->mean, decimals, v->stddev, decimals);
  }
  return fmt::format("{:.{}f}", v->mean, decimals);
}

void write_atomically(const std::string& path, const std::string& text) {
  CONVIRT_CHECK_VALUE(!path.empty(), "path must not be empty");
  write_file_atomically(path, text, "results");
}

}  // namespace

std::string fraction_key(double fraction) {
  CONVIRT_CHECK_VALUE(fraction > 0.0 && fraction <= 1.0, "fraction must be in (0, 1], got ",
                      fraction);
  return fmt::format("{:g}", fraction * 100.0);
}

void Results::set(const std::string& section, const std::string& method, const std::string& group,
                  const std::string& key, double mean, double stddev) {
  CONVIRT_CHECK_VALUE(!method.empty(), "method must not be empty");
  CONVIRT_CHECK_VALUE(!group.empty(), "task must not be empty");
  CONVIRT_CHECK_VALUE(!key.empty(), "fraction/k key must not be empty");
  for (auto& e : entries_) {
    if (e.section == section && e.method == method && e.group == group && e.key == key) {
      e.value = {mean, stddev};
      return;
    }
  }
  entries_.push_back({section, method, group, key, {mean, stddev}});
}

void Results::merge(const Results& other) {
  for (const auto& e : other.entries_) {
    set(e.section, e.method, e.group, e.key, e.value.mean, e.value.stddev);
  }
}

const Results::Entry* Results::find(const std::string& section, const std::string& method,
                                    const std::string& group, const std::string& key) const {
  for (const auto& e : entries_) {
    if (e.section == section && e.method == method && e.group == group && e.key == key) return &e;
  }
  return nullptr;
}

void Results::set_classification(const std::string& protocol, const std::string& method,
                                 const std::string& task, const std::string& fraction, double mean,
                                 double stddev) {
  check_protocol(protocol);
  set(protocol, method, task, fraction, mean, stddev);
}

void Results::set_retrieval(const std::string& method, const std::string& direction, int64_t k,
                            double mean, double stddev) {
  check_direction(direction);
  CONVIRT_CHECK_VALUE(k >= 1, "k must be >= 1, got ", k);
  set("retrieval", method, direction, std::to_string(k), mean, stddev);
}

void Results::set_zero_shot(const std::string& method, const std::string& task, double value) {
  set(kZeroShot, method, task, kZeroShotKey, value, kUnknown);
}

std::optional<double> Results::zero_shot(const std::string& method, const std::string& task) const {
  const Entry* e = find(kZeroShot, method, task, kZeroShotKey);
  return e ? std::optional<double>(e->value.mean) : std::nullopt;
}

std::optional<ResultValue> Results::classification(const std::string& protocol,
                                                   const std::string& method,
                                                   const std::string& task,
                                                   const std::string& fraction) const {
  check_protocol(protocol);
  const Entry* e = find(protocol, method, task, fraction);
  return e ? std::optional<ResultValue>(e->value) : std::nullopt;
}

std::optional<ResultValue> Results::retrieval(const std::string& method,
                                              const std::string& direction, int64_t k) const {
  check_direction(direction);
  const Entry* e = find("retrieval", method, direction, std::to_string(k));
  return e ? std::optional<ResultValue>(e->value) : std::nullopt;
}

namespace {
void push_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}
}  // namespace

std::vector<std::string> Results::methods(const std::string& section) const {
  check_section(section);
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (e.section == section) push_unique(out, e.method);
  }
  return out;
}

std::vector<std::string> Results::tasks(const std::string& section) const {
  check_section(section);
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (e.section == section) push_unique(out, e.group);
  }
  return out;
}

std::vector<std::string> Results::fractions(const std::string& section,
                                            const std::string& task) const {
  check_section(section);
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (e.section == section && e.group == task) push_unique(out, e.key);
  }
  // Numeric order ("1" < "10" < "100"), whatever the order they were set in.
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return std::atof(a.c_str()) < std::atof(b.c_str());
  });
  return out;
}

std::string Results::to_json(int indent) const {
  Json root = Json::object();
  Json stds = Json::object();
  bool any_std = false;
  for (const char* s : kSections) {
    root[s] = Json::object();
    stds[s] = Json::object();
  }
  for (const auto& e : entries_) {
    if (e.section == kZeroShot) {
      root[kZeroShot][e.method][e.group] = number_or_null(e.value.mean);
      continue;
    }
    root[e.section][e.method][e.group][e.key] = number_or_null(e.value.mean);
    if (std::isfinite(e.value.stddev)) {
      stds[e.section][e.method][e.group][e.key] = e.value.stddev;
      any_std = true;
    }
  }
  if (any_std) root["std"] = stds;
  return root.dump(indent, ' ', /*ensure_ascii=*/false) + "\n";
}

Results Results::from_json(const std::string& text) {
  Json root;
  try {
    root = Json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    CONVIRT_CHECK_VALUE(false, "results: not valid JSON: ", e.what());
  }
  CONVIRT_CHECK_VALUE(root.is_object(), "results: the top level must be an object, got ",
                      root.type_name());
  Results r;
  const Json* stds = root.contains("std") ? &root["std"] : nullptr;
  for (const char* s : kSections) {
    if (!root.contains(s)) continue;
    const Json& sec = root[s];
    CONVIRT_CHECK_VALUE(sec.is_object(), "results: \"", s, "\" must be an object");
    for (const auto& [method, groups] : sec.items()) {
      CONVIRT_CHECK_VALUE(groups.is_object(), "results: ", s, ".", method, " must be an object");
      for (const auto& [group, keys] : groups.items()) {
        CONVIRT_CHECK_VALUE(keys.is_object(), "results: ", s, ".", method, ".", group,
                            " must be an object");
        if (std::string(s) == "retrieval") check_direction(group);
        for (const auto& [key, value] : keys.items()) {
          const std::string where = std::string(s) + "." + method + "." + group + "." + key;
          const double mean = read_number(value, where);
          double sd = kUnknown;
          if (stds != nullptr && stds->is_object() && stds->contains(s)) {
            const Json& ss = (*stds)[s];
            if (ss.contains(method) && ss[method].contains(group) &&
                ss[method][group].contains(key)) {
              sd = read_number(ss[method][group][key], "std." + where);
            }
          }
          r.set(s, method, group, key, mean, sd);
        }
      }
    }
  }
  if (root.contains(kZeroShot)) {
    const Json& sec = root[kZeroShot];
    CONVIRT_CHECK_VALUE(sec.is_object(), "results: \"zeroshot\" must be an object");
    for (const auto& [method, tasks] : sec.items()) {
      CONVIRT_CHECK_VALUE(tasks.is_object(), "results: zeroshot.", method, " must be an object");
      for (const auto& [task, value] : tasks.items()) {
        r.set_zero_shot(method, task, read_number(value, "zeroshot." + method + "." + task));
      }
    }
  }
  return r;
}

void Results::save(const std::string& path) const {
  write_atomically(path, to_json());
}

Results Results::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open results file \"", path, "\"");
  std::ostringstream ss;
  ss << in.rdbuf();
  return from_json(ss.str());
}

void add_sweep(Results& results, const std::string& protocol, const std::string& method,
               const std::string& task, const std::vector<SweepCell>& cells) {
  for (const auto& c : cells) {
    results.set_classification(protocol, method, task, fraction_key(c.fraction), 100.0 * c.mean,
                               c.values.size() > 1 ? 100.0 * c.stddev : Results::kUnknown);
  }
}

void add_retrieval(Results& results, const std::string& method, const std::string& direction,
                   const RetrievalResult& retrieval) {
  for (const auto& [k, p] : retrieval.precision) {
    results.set_retrieval(method, direction, k, 100.0 * p);
  }
}

std::string format_classification_table(const Results& results, const std::string& protocol,
                                        int decimals) {
  check_protocol(protocol);
  CONVIRT_CHECK_VALUE(decimals >= 0 && decimals <= 6, "decimals must be in [0, 6], got ", decimals);
  const auto methods = results.methods(protocol);
  const auto tasks = results.tasks(protocol);
  std::ostringstream os;
  os << "| Method |";
  std::vector<std::pair<std::string, std::string>> cols;
  for (const auto& t : tasks) {
    for (const auto& f : results.fractions(protocol, t)) {
      cols.emplace_back(t, f);
      os << ' ' << t << ' ' << f << "% |";
    }
  }
  os << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) os << "---|";
  os << '\n';
  for (const auto& m : methods) {
    os << "| " << m << " |";
    for (const auto& [t, f] : cols) {
      os << ' ' << format_cell(results.classification(protocol, m, t, f), decimals) << " |";
    }
    os << '\n';
  }
  return os.str();
}

std::string format_zero_shot_table(const Results& results, int decimals) {
  CONVIRT_CHECK_VALUE(decimals >= 0 && decimals <= 6, "decimals must be in [0, 6], got ", decimals);
  const auto tasks = results.tasks(kZeroShot);
  std::ostringstream os;
  os << "| Method |";
  for (const auto& t : tasks) os << ' ' << t << " |";
  os << "\n|---|";
  for (size_t i = 0; i < tasks.size(); ++i) os << "---|";
  os << '\n';
  for (const auto& m : results.methods(kZeroShot)) {
    os << "| " << m << " |";
    for (const auto& t : tasks) {
      const auto v = results.zero_shot(m, t);
      os << ' '
         << format_cell(
                v ? std::optional<ResultValue>(ResultValue{*v, Results::kUnknown}) : std::nullopt,
                decimals)
         << " |";
    }
    os << '\n';
  }
  return os.str();
}

std::string format_retrieval_table(const Results& results, int decimals) {
  CONVIRT_CHECK_VALUE(decimals >= 0 && decimals <= 6, "decimals must be in [0, 6], got ", decimals);
  const auto methods = results.methods("retrieval");
  std::vector<std::pair<std::string, std::string>> cols;
  std::ostringstream os;
  os << "| Method |";
  for (const char* d : {"image_image", "text_image"}) {
    const char* label = std::string(d) == "image_image" ? "image→image" : "text→image";
    for (const auto& k : results.fractions("retrieval", d)) {
      cols.emplace_back(d, k);
      os << ' ' << label << " P@" << k << " |";
    }
  }
  os << "\n|---|";
  for (size_t i = 0; i < cols.size(); ++i) os << "---|";
  os << '\n';
  for (const auto& m : methods) {
    os << "| " << m << " |";
    for (const auto& [d, k] : cols) {
      os << ' ' << format_cell(results.retrieval(m, d, std::stoll(k)), decimals) << " |";
    }
    os << '\n';
  }
  return os.str();
}

}  // namespace convirt::eval
