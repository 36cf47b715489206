#include <convirt/core/atomic_file.h>
#include <convirt/core/check.h>
#include <convirt/train/checkpoint.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

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

// Makes the renames themselves durable. Some filesystems cannot sync a folder (EINVAL, ENOTSUP):
// nothing more can be done there, so only real I/O errors count.
void fsync_dir(const std::filesystem::path& dir, const std::string& path) {
  const char* name = dir.empty() ? "." : dir.c_str();
  int fd = ::open(name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  CONVIRT_CHECK(fd >= 0, "cannot open folder '", name, "' to flush checkpoint '", path,
                "': ", system_error());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  errno = err;
  CONVIRT_CHECK(rc == 0 || err == EINVAL || err == ENOTSUP, "cannot flush folder '", name,
                "' after writing checkpoint '", path, "': ", system_error());
}

bool process_alive(long pid) {
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// A writer killed mid-write leaves `<name>.tmp.<pid>` (or `<name>.prev.tmp.<pid>`) behind, as large
// as a checkpoint: a job killed and resumed many times would otherwise fill the disk with them.
// Only files of dead writers are removed, so a concurrent writer's file is never pulled away.
void remove_stale_temporaries(const std::filesystem::path& target) {
  const std::filesystem::path dir =
      target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  const std::string name = target.filename().string();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    for (const std::string& prefix : {name + ".tmp.", name + ".prev.tmp."}) {
      if (file.size() <= prefix.size() || file.compare(0, prefix.size(), prefix) != 0) continue;
      const std::string pid = file.substr(prefix.size());
      if (pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (!process_alive(std::stol(pid))) std::filesystem::remove(entry.path(), ec);
    }
  }
}

bool intact(const std::string& path) {
  try {
    read_checkpoint_file(path);
    return true;
  } catch (const c10::Error&) {
    return false;
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
  remove_stale_temporaries(target);
  std::string trailer(kMagic, sizeof(kMagic));
  put_u64(trailer, payload.size());
  put_u64(trailer, fnv1a64(payload.data(), payload.size()));

  // The current file becomes `.prev` only when it is intact: a file corrupted on disk must never
  // push out the good `.prev` that read_latest_checkpoint would fall back to. It is hard-linked
  // into place first, so `path` names an intact checkpoint at every moment, even if the process
  // dies between the two renames; where hard links are not supported, a rename does the same with
  // a window in which only `.prev` exists (read_latest_checkpoint handles that too).
  const auto keep_previous = [&] {
    const std::string prev = path + ".prev";
    if (!std::filesystem::exists(target) || !intact(path)) return;
    const std::string staged = prev + ".tmp." + std::to_string(::getpid());
    ::unlink(staged.c_str());
    const bool linked = ::link(path.c_str(), staged.c_str()) == 0;
    const std::string& from = linked ? staged : path;
    if (::rename(from.c_str(), prev.c_str()) != 0) {
      const std::string why = system_error();
      if (linked) ::unlink(staged.c_str());
      CONVIRT_CHECK(false, "cannot keep previous checkpoint '", path, "' as '", prev, "': ", why);
    }
  };
  write_file_atomically(path, {payload, trailer}, "checkpoint", keep_previous);
  fsync_dir(target.parent_path(), path);
}

std::string read_checkpoint_file(const std::string& path) {
  // One read into a buffer of the file's size: checkpoints are large, and streaming them through
  // an ostringstream was several times slower than the checksum itself.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  CONVIRT_CHECK(fd >= 0, "checkpoint '", path, "' cannot be opened: ", system_error());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const std::string why = system_error();
    ::close(fd);
    CONVIRT_CHECK(false, "checkpoint '", path, "' cannot be read: ", why);
  }
  std::string data(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = system_error();
      ::close(fd);
      CONVIRT_CHECK(false, "checkpoint '", path, "' cannot be read: ", why);
    }
    if (n == 0) break;  // shrank while being read: judged by what was there
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  data.resize(done);
  CONVIRT_CHECK(data.size() >= kTrailer, "checkpoint '", path, "' is truncated: ", data.size(),
                " bytes, shorter than its ", kTrailer, "-byte trailer");
  const char* t = data.data() + data.size() - kTrailer;
  CONVIRT_CHECK(std::memcmp(t, kMagic, sizeof(kMagic)) == 0, "checkpoint '", path,
                "' has no convirt trailer (truncated, or not a convirt checkpoint)");
  const uint64_t size = get_u64(t + 8);
  const uint64_t sum = get_u64(t + 16);
  CONVIRT_CHECK(size == data.size() - kTrailer, "checkpoint '", path,
                "' is truncated or corrupt: its trailer records ", size,
                " payload bytes, the file has ", data.size() - kTrailer);
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
  // Starting over here would silently throw away the run's work: the caller decides that, not us.
  CONVIRT_CHECK(false, "no intact checkpoint at '", path, "' or '", path, ".prev'", errors,
                "\n  the run cannot resume; move these files away (or turn resuming off) to start "
                "over");
  return {};
}

bool checkpoint_exists(const std::string& path) {
  return std::filesystem::exists(path) || std::filesystem::exists(path + ".prev");
}

}  // namespace convirt::train
