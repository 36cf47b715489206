#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>
#include <convirt/core/atomic_file.h>
#include <convirt/core/fault_injection.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>

namespace convirt {
namespace {

// Throws with the current errno's text after removing the temporary, so no failed write leaves a
// file behind.
[[noreturn]] void fail(const std::string& tmp, const std::string& what, const std::string& action,
                       const std::string& path) {
  const std::string why = std::strerror(errno);
  ::unlink(tmp.c_str());
  C10_THROW_ERROR(Error, c10::str("cannot ", action, " ", what, " '", path, "': ", why));
}

}  // namespace

void write_file_atomically(const std::string& path, std::string_view data,
                           const std::string& what) {
  write_file_atomically(path, std::vector<std::string_view>{data}, what);
}

void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts,
                           const std::string& what, const std::function<void()>& before_replace) {
  const std::filesystem::path target(path);
  if (target.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec) {
      C10_THROW_ERROR(
          Error, c10::str("cannot create the folder of ", what, " '", path, "': ", ec.message()));
    }
  }
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, what, "create", tmp);
  size_t total = 0;
  for (const auto& part : parts) total += part.size();
  // The fault-injection kill lands half way through the data (tests only; see fault_injection.h).
  const size_t kill_at = total / 2;
  size_t written = 0;
  bool at_kill_point = false;
  for (const auto& data : parts) {
    size_t done = 0;
    while (done < data.size()) {
      if (!at_kill_point && written >= kill_at) {
        at_kill_point = true;
        kill_point_while_writing(what);
      }
      size_t chunk = data.size() - done;
      if (written < kill_at && written + chunk > kill_at) chunk = kill_at - written;
      const ssize_t n = ::write(fd, data.data() + done, chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = errno;
        ::close(fd);
        errno = err;
        fail(tmp, what, "write", tmp);
      }
      done += static_cast<size_t>(n);
      written += static_cast<size_t>(n);
    }
  }
  if (!at_kill_point) kill_point_while_writing(what);
  if (::fsync(fd) != 0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    fail(tmp, what, "flush", tmp);
  }
  // close() is where some file systems (NFS, quotas) finally report a failed write.
  if (::close(fd) != 0) fail(tmp, what, "close", tmp);
  if (before_replace) {
    try {
      before_replace();
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail(tmp, what, "move into place", path);
  // Makes the rename itself durable; folders that cannot be synced (EINVAL) are left as they are.
  const std::string dir = target.has_parent_path() ? target.parent_path().string() : ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

int remove_dead_temporaries(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    const auto at = file.rfind(".tmp.");
    if (at == std::string::npos) continue;
    const std::string pid = file.substr(at + 5);
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos)
      continue;
    const pid_t owner = static_cast<pid_t>(std::stol(pid));
    if (owner == ::getpid()) continue;
    if (::kill(owner, 0) == 0 || errno == EPERM) continue;  // still alive
    std::error_code rm;
    if (std::filesystem::remove(entry.path(), rm)) ++removed;
  }
  return removed;
}

}  // namespace convirt
