#pragma once
// The figures and the report a reproduction run writes beside its tables: label-efficiency curves
// (metric against the label fraction, one line per method, error bars over seeds), the pretraining
// curves read back from each method's metrics.jsonl, and report.md linking tables and figures.

#include <convirt/eval/line_chart.h>
#include <convirt/eval/tables.h>

#include <string>
#include <utility>
#include <vector>

namespace convirt::pipeline {

/// One panel per protocol ("linear", "finetune") and task of `results`: a line per method through
/// its label fractions (x in percent, log scale), error bars from the standard deviations where
/// known.
///
/// Example:
///   auto panels = convirt::pipeline::label_efficiency_panels(convirt::eval::Results::load(path));
std::vector<eval::LineChartPanel> label_efficiency_panels(const eval::Results& results);

/// Three panels, training loss, validation loss and learning rate against the step, a line per
/// (name, metrics.jsonl path). Unreadable lines of a log are skipped (a log cut by a kill ends in a
/// partial line); a missing file is an error naming it.
std::vector<eval::LineChartPanel> pretraining_panels(
    const std::vector<std::pair<std::string, std::string>>& logs);

/// What write_report needs: the run folder and what the run produced in it.
struct ReportInputs {
  std::string run_dir;
  eval::Results results;
  /// (method, path of its metrics.jsonl), in table order.
  std::vector<std::pair<std::string, std::string>> pretraining_logs;
  /// The Markdown tables, as printed (embedded in report.md).
  std::string tables;
  /// File names inside run_dir to link, when present ("" = none).
  std::string results_json = "results.json";
  std::string tables_md = "tables.md";
  std::string tsne_svg = "figure3_tsne.svg";
};

/// Paths of the files write_report wrote.
struct ReportFiles {
  std::string label_efficiency_svg;
  std::string pretraining_svg;
  std::string report_md;
};

/// Writes label_efficiency.svg, pretraining_curves.svg and report.md into run_dir, each replaced
/// whole. The label-efficiency figure is left out when results has no classification cell, the
/// pretraining figure when no log is given.
ReportFiles write_report(const ReportInputs& inputs);

}  // namespace convirt::pipeline
