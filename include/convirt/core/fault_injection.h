#pragma once
// A kill in the middle of a write, on demand, for the reliability tests: every writer of a file a
// run produces calls kill_point_while_writing() with the name it reports in its errors
// ("checkpoint", "tables", "figure", ...) once part of the data is in its temporary (or, for the
// append-only metrics log, part of a line is in the file). When the environment variable
// CONVIRT_FAULT_KILL_WRITING holds that name (or "*"), the process sends itself SIGKILL there:
// what a power cut or `kill -9` at the worst moment leaves behind, made reproducible. Unset, the
// call costs one getenv.

#include <string>

namespace convirt {

/// The variable's name, for tests and docs.
inline constexpr const char* kFaultKillWritingEnv = "CONVIRT_FAULT_KILL_WRITING";

/// SIGKILLs the process when CONVIRT_FAULT_KILL_WRITING names `what` or is "*"; returns otherwise.
void kill_point_while_writing(const std::string& what);

}  // namespace convirt
