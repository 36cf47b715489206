#pragma once
// Checkpoint files that survive a crash: written to a temporary file, flushed to disk, then renamed
// over the old one (which is kept as `<path>.prev`), and sealed with a checksum so that a truncated
// or corrupted file is detected on load and the previous good one is used instead.
//
// File layout: payload bytes, then a 24-byte trailer: magic "CVRTCKP1", payload size (u64 LE),
// FNV-1a 64 checksum of the payload (u64 LE). The payload is whatever the caller serialised (the
// trainer writes a torch::serialize::OutputArchive).

#include <cstdint>
#include <string>
#include <vector>

namespace convirt::train {

/// FNV-1a 64-bit hash of a byte range.
uint64_t fnv1a64(const void* data, size_t size);

/// Atomically replaces `path` with `payload` + trailer. The previous file becomes `path + ".prev"`
/// if it is intact (a corrupt one never displaces a good `.prev`), and `path` names an intact file
/// at every moment where the filesystem supports hard links. Temporaries left by writers that were
/// killed (`path.tmp.<pid>` of a process no longer running) are removed first. The folder is
/// created if needed. Every write, fsync, close and rename is checked: errors (disk full, EFBIG,
/// EIO) throw naming the file and the system's reason, and leave the previous checkpoint as it was.
///
/// Example:
///   convirt::train::write_checkpoint_file("runs/x/last.ckpt", bytes);
void write_checkpoint_file(const std::string& path, const std::string& payload);

/// Reads and verifies `path`; returns the payload. Throws (naming the path and what is wrong:
/// missing, truncated, bad magic, size or checksum mismatch) when the file is not intact.
std::string read_checkpoint_file(const std::string& path);

/// The payload of the newest intact checkpoint among `path` and `path + ".prev"`; `used_path` says
/// which; `problems` collects why a newer file was rejected. Throws when neither is usable, naming
/// both files and what is wrong with each: never an empty payload that would start a run afresh.
///
/// Example:
///   std::string used;
///   auto payload = convirt::train::read_latest_checkpoint("runs/x/last.ckpt", &used);
std::string read_latest_checkpoint(const std::string& path, std::string* used_path = nullptr,
                                   std::vector<std::string>* problems = nullptr);

/// Whether `path` or its `.prev` exists (a resumable run).
bool checkpoint_exists(const std::string& path);

}  // namespace convirt::train
