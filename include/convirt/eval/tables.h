#pragma once
// The results of a reproduction run, shaped like the paper's Tables 1(a), 1(b) and 2, serialised to
// the results.json layout (values in percent, as the paper prints them):
//   {"linear":    {METHOD: {TASK: {"1": x, "10": x, "100": x}}},
//    "finetune":  {METHOD: {TASK: {...}}},
//    "retrieval": {METHOD: {"image_image": {"5": x, "10": x, "50": x}, "text_image": {...}}},
//    "zeroshot":  {METHOD: {TASK: x}},                                       (only when set)
//    "std":       {"linear": {...}, "finetune": {...}, "retrieval": {...}}}   (only when known)
// Methods and tasks keep the order in which they were first set (the tables' row/column order).

#include <convirt/eval/protocol.h>
#include <convirt/eval/retrieval.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace convirt::eval {

/// One table cell in percent; stddev is NaN when unknown (a single run).
struct ResultValue {
  double mean = 0.0;
  double stddev = 0.0;
};

/// "1", "10", "100" for fractions 0.01, 0.1, 1 (the label-fraction keys of results.json).
std::string fraction_key(double fraction);

/// The numbers of a reproduction run.
///
/// Example:
///   convirt::eval::Results results;
///   results.set_classification("linear", "ConVIRT", "CheXpert", "1", 85.9, 0.4);
///   results.set_retrieval("ConVIRT", "text_image", 10, 57.5);
///   std::cout << convirt::eval::format_classification_table(results, "linear");
///   results.save("run/results.json");
class Results {
 public:
  /// `protocol` is "linear" or "finetune"; `fraction` a key such as "1", "10", "100".
  void set_classification(const std::string& protocol, const std::string& method,
                          const std::string& task, const std::string& fraction, double mean,
                          double stddev = kUnknown);
  /// `direction` is "image_image" or "text_image"; k as in Precision@k.
  void set_retrieval(const std::string& method, const std::string& direction, int64_t k,
                     double mean, double stddev = kUnknown);

  /// Zero-shot classification from text prompts (no labels used): the task's metric in percent.
  void set_zero_shot(const std::string& method, const std::string& task, double value);

  std::optional<ResultValue> classification(const std::string& protocol, const std::string& method,
                                            const std::string& task,
                                            const std::string& fraction) const;
  std::optional<ResultValue> retrieval(const std::string& method, const std::string& direction,
                                       int64_t k) const;

  std::optional<double> zero_shot(const std::string& method, const std::string& task) const;

  /// Methods / tasks / fraction keys of a section ("linear", "finetune", "retrieval" or
  /// "zeroshot"), in first-set order. For "retrieval", tasks() lists directions and fractions() the
  /// k values.
  std::vector<std::string> methods(const std::string& section) const;
  std::vector<std::string> tasks(const std::string& section) const;
  std::vector<std::string> fractions(const std::string& section, const std::string& task) const;
  bool empty() const { return entries_.empty(); }
  /// Adds every cell of `other` (its value wins where both have one), keeping first-set order, so
  /// per-method runs combine into one table.
  ///
  /// Example:
  ///   convirt::eval::Results all;
  ///   all.merge(convirt::pipeline::evaluate(random_opts));
  ///   all.merge(convirt::pipeline::evaluate(convirt_opts));
  void merge(const Results& other);

  /// The results.json text (see the file comment); NaN values are written as null.
  std::string to_json(int indent = 2) const;
  /// Reads what to_json writes; unknown top-level keys are ignored. ValueError on a malformed file,
  /// naming the offending key path.
  static Results from_json(const std::string& text);
  /// Writes to_json() to `path` atomically (temporary file, then rename).
  void save(const std::string& path) const;
  static Results load(const std::string& path);

  static constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();

 private:
  struct Entry {
    std::string section, method, group, key;
    ResultValue value;
  };
  void set(const std::string& section, const std::string& method, const std::string& group,
           const std::string& key, double mean, double stddev);
  const Entry* find(const std::string& section, const std::string& method, const std::string& group,
                    const std::string& key) const;
  std::vector<Entry> entries_;
};

/// Records a label-fraction sweep (metrics in [0, 1]) as percent, one cell per fraction.
///
/// Example:
///   convirt::eval::add_sweep(results, "linear", "ConVIRT", "CheXpert", cells);
void add_sweep(Results& results, const std::string& protocol, const std::string& method,
               const std::string& task, const std::vector<SweepCell>& cells);

/// Records a retrieval result (fractions in [0, 1]) as percent under `direction`.
void add_retrieval(Results& results, const std::string& method, const std::string& direction,
                   const RetrievalResult& retrieval);

/// A Markdown table shaped like Table 1(a) (protocol "linear") or 1(b) ("finetune"): one row per
/// method, one column per task and label fraction, "mean ± std" (or "mean") with `decimals` digits,
/// "-" where a cell is missing.
std::string format_classification_table(const Results& results, const std::string& protocol,
                                        int decimals = 1);

/// A Markdown table of the zero-shot results: one row per method, one column per task ("-" where a
/// cell is missing).
std::string format_zero_shot_table(const Results& results, int decimals = 1);

/// A Markdown table shaped like Table 2: one row per method, Precision@k columns for image->image
/// and then text->image.
std::string format_retrieval_table(const Results& results, int decimals = 1);

}  // namespace convirt::eval
