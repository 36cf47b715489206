#include <convirt/core/check.h>
#include <convirt/train/checkpoint.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace convirt::train {
namespace {

constexpr char kMagic[8] = {'C', 'V', 'R', 'T', 'C', 'K', 'P', '1'};
constexpr size_t kTrailer = 24;

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

std::string system_error() {
  return std::strerror(errno);
}

void write_all(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = system_error();
      ::close(fd);
      ::unlink(path.c_str());
      CONVIRT_CHECK(false, "cannot write checkpoint '", path, "': ", why);
    }
    done += static_cast<size_t>(n);
  }
}

void fsync_dir(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

void write_checkpoint_file(const std::string& path, const std::string& payload) {
  const std::filesystem::path target(path);
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path());
  std::string trailer(kMagic, sizeof(kMagic));
  put_u64(trailer, payload.size());
  put_u64(trailer, fnv1a64(payload.data(), payload.size()));

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CONVIRT_CHECK(fd >= 0, "cannot create checkpoint '", tmp, "': ", system_error());
  write_all(fd, payload, tmp);
  write_all(fd, trailer, tmp);
  if (::fsync(fd) != 0) {
    const std::string why = system_error();
    ::close(fd);
    ::unlink(tmp.c_str());
    CONVIRT_CHECK(false, "cannot flush checkpoint '", tmp, "' to disk: ", why);
  }
  ::close(fd);
  // Keep the last good file until the new one is in place: a crash between the two renames leaves
  // `.prev` intact, which read_latest_checkpoint falls back to.
  std::error_code ec;
  if (std::filesystem::exists(target, ec)) {
    std::filesystem::rename(target, path + ".prev", ec);
    CONVIRT_CHECK(!ec, "cannot keep previous checkpoint '", path, "': ", ec.message());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = system_error();
    ::unlink(tmp.c_str());
    CONVIRT_CHECK(false, "cannot move checkpoint into place at '", path, "': ", why);
  }
  fsync_dir(target.parent_path());
}

std::string read_checkpoint_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK(in.good(), "checkpoint '", path, "' cannot be opened: ", system_error());
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string data = ss.str();
  CONVIRT_CHECK(data.size() >= kTrailer, "checkpoint '", path, "' is truncated: ", data.size(),
                " bytes, shorter than its ", kTrailer, "-byte trailer");
  const char* t = data.data() + data.size() - kTrailer;
  CONVIRT_CHECK(std::memcmp(t, kMagic, sizeof(kMagic)) == 0, "checkpoint '", path,
                "' has no convirt trailer (truncated, or not a convirt checkpoint)");
  const uint64_t size = get_u64(t + 8);
  const uint64_t sum = get_u64(t + 16);
  CONVIRT_CHECK(size == data.size() - kTrailer, "checkpoint '", path,
                "' is truncated: trailer says ", size, " payload bytes, file has ",
                data.size() - kTrailer);
  const uint64_t actual = fnv1a64(data.data(), size);
  CONVIRT_CHECK(actual == sum, "checkpoint '", path, "' is corrupt: checksum ", actual,
                " does not match the recorded ", sum);
  data.resize(size);
  return data;
}

std::string read_latest_checkpoint(const std::string& path, std::string* used_path,
                                   std::vector<std::string>* problems) {
  std::string errors;
  for (const std::string& candidate : {path, path + ".prev"}) {
    if (!std::filesystem::exists(candidate)) continue;
    try {
      std::string payload = read_checkpoint_file(candidate);
      if (used_path) *used_path = candidate;
      return payload;
    } catch (const c10::Error& e) {
      if (problems) problems->push_back(e.what_without_backtrace());
      errors += std::string("\n  ") + e.what_without_backtrace();
    }
  }
  CONVIRT_CHECK(false, "no intact checkpoint at '", path, "' or '", path, ".prev'", errors);
  return {};
}

bool checkpoint_exists(const std::string& path) {
  return std::filesystem::exists(path) || std::filesystem::exists(path + ".prev");
}

}  // namespace convirt::train
