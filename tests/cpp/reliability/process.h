#pragma once
// Running the real `convirt` program as a child process, so that faults hit it as they would in
// production: SIGKILL at any instruction, a file size limit, a full filesystem.

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;  // declared by <unistd.h> only with _GNU_SOURCE

namespace convirt::test {

/// The `convirt` program under test: $CONVIRT_CLI when set, else the one built with these tests.
inline std::string convirt_cli() {
  const char* env = std::getenv("CONVIRT_CLI");
  return env != nullptr && *env != '\0' ? env : CONVIRT_CLI_PATH;
}

/// How a child ended: its exit code, or the signal that killed it.
struct ChildStatus {
  int exit_code = -1;
  int signal = 0;
  bool exited() const { return signal == 0; }
};

inline ChildStatus decode_status(int status) {
  ChildStatus s;
  if (WIFEXITED(status)) s.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) s.signal = WTERMSIG(status);
  return s;
}

/// A started child process. `file_size_limit` >= 0 runs it under RLIMIT_FSIZE with SIGXFSZ
/// ignored (an ignored disposition survives exec), so a write past the limit fails with EFBIG as
/// it would on a full disk, instead of killing the process. stdout and stderr go to `log_path`.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log_path,
        long long file_size_limit = -1) {
    // Everything the child needs is built before fork: between fork and exec only
    // async-signal-safe calls are made, as the test process may run other threads.
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_storage = {"OMP_WAIT_POLICY=PASSIVE"};
    for (char** e = environ; *e != nullptr; ++e)
      if (std::string(*e).rfind("OMP_WAIT_POLICY=", 0) != 0) env_storage.emplace_back(*e);
    std::vector<char*> env;
    for (auto& e : env_storage) env.push_back(e.data());
    env.push_back(nullptr);
    struct rlimit lim;
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(file_size_limit);

    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
      if (file_size_limit >= 0) {
        ::signal(SIGXFSZ, SIG_IGN);
        if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(125);
      }
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
  }
  ~Child() {
    if (!done_) {
      ::kill(pid_, SIGKILL);
      wait();
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  /// Whether it has ended (reaps it if so).
  bool finished() {
    if (done_) return true;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = decode_status(status);
      done_ = true;
    }
    return done_;
  }

  ChildStatus wait() {
    if (!done_) {
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      status_ = decode_status(status);
      done_ = true;
    }
    return status_;
  }

  void signal(int sig) {
    if (!done_) ::kill(pid_, sig);
  }

 private:
  pid_t pid_ = -1;
  bool done_ = false;
  ChildStatus status_;
};

/// Runs to completion.
inline ChildStatus run_child(const std::vector<std::string>& argv, const std::string& log_path,
                             long long file_size_limit = -1) {
  Child c(argv, log_path, file_size_limit);
  return c.wait();
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

}  // namespace convirt::test
