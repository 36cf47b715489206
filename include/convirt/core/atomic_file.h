#pragma once
// Whole-file writes that a crash, a kill or a full disk cannot leave half done: the data goes to a
// temporary file beside the target, is flushed to disk, and only then renamed over the target. A
// reader therefore sees the old file or the new one, never a truncated mix.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace convirt {

/// Writes `data` to `path` atomically: `<path>.tmp.<pid>`, fsync, close, rename, fsync of the
/// folder (where the file system supports it). Creates missing parent folders. Every system call is
/// checked; on failure the temporary is removed, the previous `path` (if any) is left untouched,
/// and a c10::Error names `what`, the file and the system's reason (e.g. "No space left on
/// device").
///
/// Example:
///   convirt::write_file_atomically("runs/x/vocab.txt", text, "vocabulary");
void write_file_atomically(const std::string& path, std::string_view data,
                           const std::string& what = "file");

/// The same for data in `parts`, written one after the other (a large payload and its trailer
/// need not be joined in memory), with `before_replace` called once the data is on disk and just
/// before the rename: a writer that keeps the previous version (checkpoints keep `.prev`) moves it
/// there. When `before_replace` throws, the temporary is removed and the error passes through.
void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts,
                           const std::string& what,
                           const std::function<void()>& before_replace = {});

/// Removes the `<name>.tmp.<pid>` files in `dir` whose writing process is gone: what a writer
/// killed between creating and renaming its temporary leaves behind. A live process's temporary
/// is never touched. Returns how many were removed. A run calls it once it holds its folder.
int remove_dead_temporaries(const std::string& dir);

}  // namespace convirt
