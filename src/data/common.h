#pragma once
// Internals shared by the dataset readers (not installed).

#include <convirt/core/check.h>
#include <convirt/data/csv.h>
#include <convirt/data/sample.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace convirt::data::detail {

using convirt::detail::shape_str;

/// splitmix64: a bijective mixer; chained to derive independent seeds from (seed, epoch, index,
/// ...).
inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
inline uint64_t mix64(uint64_t a, uint64_t b) {
  return mix64(mix64(a) ^ (b * 0xD6E8FEB86659FD93ULL));
}

/// FNV-1a of a string: a hash that, unlike std::hash, is the same in every standard library.
inline uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

/// Uniform integer in [0, n) from a 64-bit value, identical on every platform (unlike
/// std::uniform_int_distribution, whose algorithm differs between standard libraries).
inline uint64_t bounded(uint64_t r, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * n) >> 64);
}

/// Decodes an image for a dataset sample: a missing, unreadable, corrupt or unsupported file
/// becomes a BadSampleError. `channels`: 0 keep, 1 gray, 3 gray decoded then replicated after the
/// transform.
at::Tensor load_image(const std::string& path, int64_t channels);

/// Applies the transform (when set) with `seed`, then replicates gray to 3 channels when asked, and
/// checks that the transform returned a float [C, H, W] tensor.
at::Tensor finish_image(at::Tensor image, const ImageTransform& transform, uint64_t seed,
                        int64_t channels, const std::string& path);

/// Checks the channels option (0, 1 or 3).
void check_channels(int64_t channels, const char* what);

/// Resolves a path written in a dataset CSV relative to `root`. Official CSVs name images relative
/// to the folder above the dataset folder ("CheXpert-v1.0-small/train/..."), and users point `root`
/// either there or at the dataset folder itself, so both are tried; the first existing candidate
/// wins and the plain join is returned when none exists (the missing file is then reported under
/// that name).
std::filesystem::path resolve_path(const std::filesystem::path& root, const std::string& relative);

/// Offset of the first byte of `text` in [begin, end) that does not start a well-formed UTF-8
/// sequence (overlong forms, surrogates and code points past U+10FFFF are invalid), or npos.
size_t invalid_utf8_at(const std::string& text, size_t begin, size_t end);

/// Reads a dataset table with the reader's skip_bad_rows option; each row left out (ragged, or
/// invalid UTF-8) is recorded in `log` as "<path> line N" with its reason, so it is listed and
/// counted with the reader's other skipped samples. Add `table.skipped.size()` to the total the
/// reader's max_bad_fraction is checked against.
CsvTable read_table(const std::string& path, bool skip_bad_rows, BadSampleLog& log,
                    bool has_header = true);

/// Reads a text file; throws BadSampleError for a missing or unreadable file.
std::string read_text_file(const std::string& path);

/// Lower-cases ASCII.
std::string lower(std::string s);
/// Trims ASCII whitespace.
std::string trim(const std::string& s);

}  // namespace convirt::data::detail
