#pragma once
// What makes a run folder trustworthy: one writer at a time (an flock on out/run.lock naming its
// holder), and a record of every option that shaped the run (out/run_options.json) that a resume
// is checked against, so that a changed learning rate, batch size or model is refused instead of
// silently mixed into the run.

#include <convirt/models/config.h>
#include <convirt/text/wordpiece.h>
#include <convirt/train/pretrainer.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace convirt::train {

/// An exclusive lock on a run folder: `dir/run.lock` held with flock(2), with "pid host" written
/// inside so that a refused second writer can name the holder. The kernel releases an flock when
/// its process dies, so a killed run never leaves a stale lock behind. Locks are per process:
/// taking one again in the process that holds it succeeds (the last release unlocks), so a
/// program may hold its folder across several Pretrainer runs.
///
/// Example:
///   convirt::train::RunFolderLock lock("runs/demo");  // throws if another process holds it
class RunFolderLock {
 public:
  /// Creates `dir` when missing. Throws a c10::Error naming the holder's pid and host when another
  /// process holds the lock.
  explicit RunFolderLock(const std::string& dir);
  ~RunFolderLock();
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

 private:
  std::string key_;
};

/// Options that may change between a run and its resume (`allow_option_change`): budgets and
/// reporting, none of which changes what a step computes.
const std::vector<std::string>& budget_option_names();

/// The record of a run: every PretrainOptions field that affects training, the model config
/// (whose image_size and max_length say what the data pipeline fed), the vocabulary's size and a
/// hash of its tokens, and the dataset sizes, as a JSON object (the world size is checked by the
/// checkpoint itself) (pretty-printed).
std::string run_options_json(const PretrainOptions& options, const models::ModelConfig& model,
                             const text::WordPieceTokenizer& tokenizer, int64_t train_pairs,
                             int64_t val_pairs);
/// As above for any text side: the vocabulary's size and hash when there is one, nothing else.
std::string run_options_json(const PretrainOptions& options, const models::ModelConfig& model,
                             const std::optional<models::VocabularyRecord>& vocabulary,
                             int64_t train_pairs, int64_t val_pairs);

/// The differences between a recorded and a current run_options_json(), one line each as
/// "name: recorded X, now Y" (nested names dotted: "model.image_size"). With
/// `allow_budget_changes` the budget options (budget_option_names()) are not reported.
std::vector<std::string> run_option_differences(const std::string& recorded_json,
                                                const std::string& current_json,
                                                bool allow_budget_changes);

/// Checks a resume against `dir/run_options.json`: throws a ValueError listing every difference
/// (and how to allow the safe ones) when the run may not continue. A folder without the file (a
/// run from before it was written) is accepted. Reads only; see write_run_options().
void check_resume_options(const std::string& dir, const std::string& current_json,
                          bool allow_budget_changes);

/// Writes `dir/run_options.json` atomically, unless it already holds exactly `json`.
void write_run_options(const std::string& dir, const std::string& json);

}  // namespace convirt::train
