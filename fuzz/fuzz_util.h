#pragma once
// Shared helpers of the libFuzzer targets (not installed).
//
// A target feeds its input to one parser and must return normally whatever the bytes are: a
// documented error (c10::Error, which every CONVIRT_CHECK throws, or another std::exception) is the
// expected outcome for malformed input, while a crash, a sanitizer report, a leak, a hang or an
// out-of-memory is a finding.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include <unistd.h>

namespace convirt::fuzz {

/// A folder private to this process, removed at exit (readers that only take paths get their
/// input through files in it).
inline const std::filesystem::path& scratch_dir() {
  struct Dir {
    std::filesystem::path path;
    Dir() {
      path = std::filesystem::temp_directory_path() /
             ("convirt-fuzz-" + std::to_string(static_cast<long>(::getpid())));
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static Dir dir;
  return dir.path;
}

/// Writes `size` bytes to `name` inside scratch_dir() (parent folders created) and returns its
/// path.
inline std::string write_file(const std::string& name, const void* data, size_t size) {
  const auto path = scratch_dir() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path.string();
}

inline std::string write_file(const std::string& name, const std::string& text) {
  return write_file(name, text.data(), text.size());
}

/// Runs `fn`, treating the library's documented errors as the normal answer to bad input.
template <typename Fn>
void expect_clean(Fn&& fn) {
  try {
    fn();
  } catch (const std::exception&) {
    // c10::Error (ValueError, IndexError, TypeError...), BadSampleError, std::filesystem errors.
  }
}

/// Splits `data` at the first occurrence of `sep` (the part after it is empty when absent); lets a
/// target that needs two files take both from one input.
inline std::pair<std::string, std::string> split_once(const uint8_t* data, size_t size,
                                                      const std::string& sep) {
  std::string all(reinterpret_cast<const char*>(data), size);
  const size_t at = all.find(sep);
  if (at == std::string::npos) return {all, std::string()};
  return {all.substr(0, at), all.substr(at + sep.size())};
}

}  // namespace convirt::fuzz
