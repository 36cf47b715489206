#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/pipeline/report.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace convirt::pipeline {
namespace {

namespace fs = std::filesystem;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Reads a number field of a JSON-lines record; NaN where the record lacks it or holds null.
double number_or_nan(const nlohmann::json& record, const char* key) {
  const auto it = record.find(key);
  return it != record.end() && it->is_number() ? it->get<double>() : kNaN;
}

const char* protocol_title(const std::string& protocol) {
  return protocol == "linear" ? "linear protocol" : "fine-tuning";
}

}  // namespace

std::vector<eval::LineChartPanel> label_efficiency_panels(const eval::Results& results) {
  std::vector<eval::LineChartPanel> panels;
  for (const std::string protocol : {"linear", "finetune"}) {
    for (const auto& task : results.tasks(protocol)) {
      eval::LineChartPanel panel;
      panel.title = task + ", " + protocol_title(protocol);
      panel.x_label = "labels (%)";
      panel.y_label = task == "COVIDx" ? "accuracy (%)" : "AUC (%)";
      panel.log_x = true;
      for (const auto& method : results.methods(protocol)) {
        eval::LineSeries line;
        line.name = method;
        bool any_err = false;
        for (const auto& key : results.fractions(protocol, task)) {
          const auto cell = results.classification(protocol, method, task, key);
          if (!cell) continue;
          line.x.push_back(std::stod(key));
          line.y.push_back(cell->mean);
          line.err.push_back(cell->stddev);
          any_err = any_err || std::isfinite(cell->stddev);
        }
        if (!any_err) line.err.clear();
        if (!line.x.empty()) panel.series.push_back(std::move(line));
      }
      if (!panel.series.empty()) panels.push_back(std::move(panel));
    }
  }
  return panels;
}

std::vector<eval::LineChartPanel> pretraining_panels(
    const std::vector<std::pair<std::string, std::string>>& logs) {
  eval::LineChartPanel train{"training loss", "step", "loss", false, false, {}};
  eval::LineChartPanel val{"validation loss", "step", "loss", false, false, {}};
  eval::LineChartPanel lr{"learning rate", "step", "lr", false, true, {}};
  for (const auto& [name, path] : logs) {
    std::ifstream in(path);
    CONVIRT_CHECK_VALUE(in.good(), "pretraining log of '", name, "' cannot be read: '", path, "'");
    eval::LineSeries t{name, {}, {}, {}}, v{name, {}, {}, {}}, r{name, {}, {}, {}};
    std::string line;
    while (std::getline(in, line)) {
      const auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!record.is_object() || !record.contains("type") || !record["type"].is_string()) continue;
      const std::string type = record["type"].get<std::string>();
      const double step = number_or_nan(record, "step");
      if (type == "train") {
        t.x.push_back(step);
        t.y.push_back(number_or_nan(record, "loss"));
        r.x.push_back(step);
        r.y.push_back(number_or_nan(record, "lr"));
      } else if (type == "eval") {
        v.x.push_back(step);
        v.y.push_back(number_or_nan(record, "val_loss"));
      }
    }
    train.series.push_back(std::move(t));
    val.series.push_back(std::move(v));
    lr.series.push_back(std::move(r));
  }
  return {train, val, lr};
}

ReportFiles write_report(const ReportInputs& in) {
  CONVIRT_CHECK_VALUE(!in.run_dir.empty(), "run_dir must not be empty");
  const fs::path dir(in.run_dir);
  ReportFiles files;
  std::ostringstream md;
  md << "# ConVIRT reproduction report\n\n"
     << "Tables: [tables.md](" << in.tables_md << "); numbers: [results.json](" << in.results_json
     << ").\n\n";

  const auto efficiency = label_efficiency_panels(in.results);
  if (!efficiency.empty()) {
    files.label_efficiency_svg = (dir / "label_efficiency.svg").string();
    eval::write_line_chart_svg(files.label_efficiency_svg, efficiency,
                               eval::LineChartOptions().title(
                                   "Label efficiency (mean and standard deviation over seeds)"));
    md << "## Label efficiency\n\n![label efficiency](label_efficiency.svg)\n\n";
  }
  if (!in.tables.empty()) md << in.tables << "\n";
  if (!in.pretraining_logs.empty()) {
    files.pretraining_svg = (dir / "pretraining_curves.svg").string();
    eval::write_line_chart_svg(files.pretraining_svg, pretraining_panels(in.pretraining_logs),
                               eval::LineChartOptions().title("Pretraining"));
    md << "## Pretraining\n\n![pretraining curves](pretraining_curves.svg)\n\n";
    for (const auto& [name, path] : in.pretraining_logs) {
      const auto rel = fs::path(path).lexically_relative(dir);
      md << "- " << name << ": [" << rel.string() << "](" << rel.string() << ")\n";
    }
    md << "\n";
  }
  if (!in.tsne_svg.empty() && fs::exists(dir / in.tsne_svg)) {
    md << "## Figure 3: t-SNE of the image embeddings\n\n![t-SNE](" << in.tsne_svg << ")\n";
  }
  files.report_md = (dir / "report.md").string();
  write_file_atomically(files.report_md, md.str(), "report");
  return files;
}

}  // namespace convirt::pipeline
