#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/train/objective.h>
#include <convirt/train/precision.h>
#include <convirt/train/run_folder.h>

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

namespace convirt::train {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

constexpr const char* kLockName = "run.lock";
constexpr const char* kOptionsName = "run_options.json";

// The locks this process holds, by folder: flock conflicts between two descriptors of one
// process, and a program legitimately holds its folder around the Pretrainer that also takes it.
// A forked child inherits this table but not the ownership: it must not re-enter its parent's lock.
struct HeldLock {
  int fd = -1;
  int count = 0;
  pid_t owner = 0;
};
std::mutex& held_mutex() {
  static std::mutex m;
  return m;
}
std::map<std::string, HeldLock>& held_locks() {
  static std::map<std::string, HeldLock> held;
  return held;
}

std::string host_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown host";
  return buf;
}

// Leaves of a JSON object as "a.b.c" -> value, so a difference deep in the model config reads as
// "model.resnet.base_width".
void flatten(const Json& j, const std::string& prefix, std::map<std::string, Json>* out) {
  if (j.is_object() && !j.empty()) {
    for (const auto& [key, value] : j.items())
      flatten(value, prefix.empty() ? key : prefix + "." + key, out);
    return;
  }
  (*out)[prefix] = j;
}

std::map<std::string, Json> parse_flat(const std::string& text, const std::string& what) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    CONVIRT_CHECK_VALUE(false, what, " is not valid JSON: ", e.what());
  }
  CONVIRT_CHECK_VALUE(j.is_object(), what, " must be a JSON object, got ", j.type_name());
  std::map<std::string, Json> flat;
  flatten(j, "", &flat);
  return flat;
}

std::string shown(const Json* value) {
  return value ? value->dump() : "(absent)";
}

}  // namespace

RunFolderLock::RunFolderLock(const std::string& dir) {
  fs::create_directories(dir);
  key_ = fs::weakly_canonical(fs::absolute(dir)).string();
  std::lock_guard<std::mutex> guard(held_mutex());
  auto& held = held_locks()[key_];
  if (held.count > 0 && held.owner != ::getpid()) held = HeldLock();
  if (held.count > 0) {
    ++held.count;
    return;
  }
  const std::string path = (fs::path(key_) / kLockName).string();
  // The lock file is the one file of the folder not written through write_file_atomically: a
  // rename would replace the inode the lock is held on, so it is opened in place and never
  // replaced.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    held_locks().erase(key_);
    CONVIRT_CHECK(false, "cannot open the run folder lock ", path, ": ", std::strerror(errno));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder, host;  // "pid host", as the holder wrote it
    std::ifstream(path) >> holder >> host;
    ::close(fd);
    held_locks().erase(key_);
    CONVIRT_CHECK(err != EWOULDBLOCK, "the run folder ", dir, " is in use by another process (pid ",
                  holder.empty() ? std::string("unknown") : holder,
                  host.empty() ? std::string() : " on " + host, ", lock ", path,
                  "); wait for it to finish or choose another output folder");
    CONVIRT_CHECK(false, "cannot lock the run folder ", path, ": ", std::strerror(err));
  }
  const std::string who = std::to_string(::getpid()) + " " + host_name() + "\n";
  // Best effort: the lock itself is what excludes; the text only names the holder.
  if (::ftruncate(fd, 0) == 0) {
    [[maybe_unused]] const ssize_t n = ::pwrite(fd, who.data(), who.size(), 0);
  }
  held.fd = fd;
  held.count = 1;
  held.owner = ::getpid();
}

RunFolderLock::~RunFolderLock() {
  std::lock_guard<std::mutex> guard(held_mutex());
  auto it = held_locks().find(key_);
  if (it == held_locks().end() || it->second.owner != ::getpid() || --it->second.count > 0) return;
  // Unlocking before close: another process may take the folder as soon as it is released.
  ::flock(it->second.fd, LOCK_UN);
  ::close(it->second.fd);
  held_locks().erase(it);
}

const std::vector<std::string>& budget_option_names() {
  static const std::vector<std::string> names{"max_steps",       "max_evals", "max_seconds",
                                              "log_every",       "verbose",   "workers",
                                              "max_bad_fraction"};
  return names;
}

std::string run_options_json(const PretrainOptions& o, const models::ModelConfig& model,
                             const text::WordPieceTokenizer& tokenizer, int64_t train_pairs,
                             int64_t val_pairs) {
  return run_options_json(o, model, vocabulary_record(tokenizer), train_pairs, val_pairs);
}

std::string run_options_json(const PretrainOptions& o, const models::ModelConfig& model,
                             const std::optional<models::VocabularyRecord>& vocabulary,
                             int64_t train_pairs, int64_t val_pairs) {
  Json j;
  j["objective"] = objective_name(o.objective());
  // Recorded when not the default: folders written before the option existed resume (adam).
  if (o.optimizer() != "adam") j["optimizer"] = o.optimizer();
  j["learning_rate"] = o.learning_rate();
  j["weight_decay"] = o.weight_decay();
  j["batch_size"] = o.batch_size();
  j["temperature"] = o.temperature();
  j["image_to_text_weight"] = o.image_to_text_weight();
  j["learn_temperature"] = o.learn_temperature();
  j["eval_every"] = o.eval_every();
  j["lr_patience"] = o.lr_patience();
  j["lr_decay"] = o.lr_decay();
  j["grad_clip_norm"] = o.grad_clip_norm();
  j["precision"] = to_string(o.precision());
  // Recorded when chosen explicitly: folders written before the option existed resume (auto).
  if (o.sync_batch_norm() != SyncBatchNormMode::kAuto)
    j["sync_batch_norm"] = to_string(o.sync_batch_norm());
  j["max_bad_steps"] = o.max_bad_steps();
  j["max_bad_fraction"] = o.max_bad_fraction();
  j["max_length"] = o.max_length();
  j["seed"] = o.seed();
  j["max_steps"] = o.max_steps();
  j["max_evals"] = o.max_evals();
  j["max_seconds"] = o.max_seconds();
  j["log_every"] = o.log_every();
  j["verbose"] = o.verbose();
  j["workers"] = o.workers();
  j["train_pairs"] = train_pairs;
  j["val_pairs"] = val_pairs;
  if (vocabulary) {
    j["vocab_size"] = static_cast<int64_t>(vocabulary->tokens.size());
    j["vocab_hash"] = text::vocab_fingerprint(vocabulary->tokens);
  }
  j["model"] = Json::parse(model.to_json());
  return j.dump(2) + "\n";
}

std::vector<std::string> run_option_differences(const std::string& recorded_json,
                                                const std::string& current_json,
                                                bool allow_budget_changes) {
  const auto recorded = parse_flat(recorded_json, "the recorded run options");
  const auto current = parse_flat(current_json, "the current run options");
  const auto& budget = budget_option_names();
  std::set<std::string> names;
  for (const auto& kv : recorded) names.insert(kv.first);
  for (const auto& kv : current) names.insert(kv.first);
  std::vector<std::string> out;
  for (const auto& name : names) {
    if (allow_budget_changes && std::find(budget.begin(), budget.end(), name) != budget.end())
      continue;
    const auto r = recorded.find(name);
    const auto c = current.find(name);
    const Json* rv = r == recorded.end() ? nullptr : &r->second;
    const Json* cv = c == current.end() ? nullptr : &c->second;
    if (rv && cv && *rv == *cv) continue;
    out.push_back(name + ": recorded " + shown(rv) + ", now " + shown(cv));
  }
  return out;
}

void check_resume_options(const std::string& dir, const std::string& current_json,
                          bool allow_budget_changes) {
  const fs::path path = fs::path(dir) / kOptionsName;
  if (!fs::exists(path)) return;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  const auto differences = run_option_differences(text.str(), current_json, allow_budget_changes);
  if (differences.empty()) return;
  std::string list;
  for (const auto& d : differences) list += "\n  " + d;
  const auto& budget = budget_option_names();
  std::string safe;
  for (const auto& b : budget) safe += (safe.empty() ? "" : ", ") + b;
  CONVIRT_CHECK_VALUE(false, "cannot resume the run in ", dir, ": its options (", path.string(),
                      ") differ from this run's:", list,
                      "\nstart a new run in another folder (or pass --no-resume / resume=False to "
                      "start this one over)",
                      allow_budget_changes ? std::string()
                                           : "; only budgets may change on resume, with "
                                             "--allow-option-change / allow_option_change=True (" +
                                                 safe + ")");
}

void write_run_options(const std::string& dir, const std::string& json) {
  // A resume with unchanged options writes nothing: the record is already there, and a run that
  // only continues should not need disk space for it.
  const fs::path path = fs::path(dir) / kOptionsName;
  if (fs::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (text.str() == json) return;
  }
  write_file_atomically((fs::path(dir) / kOptionsName).string(), json, "run options");
}

}  // namespace convirt::train
