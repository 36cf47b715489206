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

/// Atomically replaces `path` with `payload` + trailer. The previous file, if any, becomes
/// `path + ".prev"`. The folder is created if needed. Errors name the path and the system reason.
void write_checkpoint_file(const std::string& path, const std::string& payload);

/// Reads and verifies `path`; returns the payload. Throws (naming the path and what is wrong:
/// missing, truncated, bad magic, size or checksum mismatch) when the file is not intact.
std::string read_checkpoint_file(const std::string& path);

/// The payload of the newest intact checkpoint among `path` and `path + ".prev"`; `used_path` says
/// which; `problems` collects why a newer file was rejected. Throws when neither is usable.
std::string read_latest_checkpoint(const std::string& path, std::string* used_path = nullptr,
                                   std::vector<std::string>* problems = nullptr);

/// Whether `path` or its `.prev` exists (a resumable run).
bool checkpoint_exists(const std::string& path);

}  // namespace convirt::train
