// The single-machine launcher: fork/exec of nproc ranks with torchrun's environment, and a
// supervisor loop that stops the survivors as soon as one rank fails.

#include <convirt/core/check.h>
#include <convirt/dist/launch.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace convirt::dist {
namespace {

struct Child {
  pid_t pid = -1;
  int64_t rank = 0;
  bool running = false;
};

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    return std::string("was killed by signal ") + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  return "exited with code " + std::to_string(exit_status(status));
}

// Non-blocking reap of every child that ended; returns false when none is left running.
bool reap(std::vector<Child>& children, int64_t* failed_rank, int* failed_status) {
  bool any_running = false;
  for (auto& c : children) {
    if (!c.running) continue;
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
    if (r == c.pid) {
      c.running = false;
      if (exit_status(status) != 0 && *failed_rank < 0) {
        *failed_rank = c.rank;
        *failed_status = status;
      }
    } else {
      any_running = true;
    }
  }
  return any_running;
}

void signal_all(std::vector<Child>& children, int sig) {
  for (auto& c : children) {
    if (c.running) ::kill(c.pid, sig);
  }
}

}  // namespace

int find_free_port(const std::string& host) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  CONVIRT_CHECK(fd >= 0, "find_free_port: socket() failed: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    CONVIRT_CHECK_VALUE(false, "find_free_port: host must be an IPv4 address, got '", host, "'");
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int err = errno;
    ::close(fd);
    CONVIRT_CHECK(false, "find_free_port: bind to ", host, " failed: ", std::strerror(err));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

int launch(const LaunchOptions& o, const std::vector<std::string>& argv) {
  CONVIRT_CHECK_VALUE(!argv.empty() && !argv[0].empty(),
                      "argv must name the command to run, got an empty command");
  CONVIRT_CHECK_VALUE(o.nproc() >= 1, "nproc must be >= 1, got ", o.nproc());
  CONVIRT_CHECK_VALUE(o.nnodes() >= 1, "nnodes must be >= 1, got ", o.nnodes());
  CONVIRT_CHECK_VALUE(o.node_rank() >= 0 && o.node_rank() < o.nnodes(), "node_rank must be in [0, ",
                      o.nnodes(), "), got ", o.node_rank());
  CONVIRT_CHECK_VALUE(o.master_port() >= 0 && o.master_port() <= 65535,
                      "master_port must be in [0, 65535], got ", o.master_port());
  CONVIRT_CHECK_VALUE(o.master_port() != 0 || o.nnodes() == 1,
                      "master_port 0 (pick a free port) works on one machine only; with nnodes ",
                      o.nnodes(), " every node must be given the same port");
  CONVIRT_CHECK_VALUE(o.kill_grace_seconds() >= 0, "kill_grace_seconds must be >= 0, got ",
                      o.kill_grace_seconds());

  const int64_t port = o.master_port() != 0 ? o.master_port() : find_free_port("127.0.0.1");
  const int64_t world = o.nproc() * o.nnodes();
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  std::vector<Child> children;
  for (int64_t local = 0; local < o.nproc(); ++local) {
    const int64_t rank = o.node_rank() * o.nproc() + local;
    // The environment is built before fork: between fork and exec only async-signal-safe calls.
    const std::vector<std::pair<std::string, std::string>> env = {
        {"RANK", std::to_string(rank)},
        {"WORLD_SIZE", std::to_string(world)},
        {"LOCAL_RANK", std::to_string(local)},
        {"LOCAL_WORLD_SIZE", std::to_string(o.nproc())},
        {"GROUP_RANK", std::to_string(o.node_rank())},
        {"MASTER_ADDR", o.master_addr()},
        {"MASTER_PORT", std::to_string(port)},
    };
    std::vector<std::string> envp_storage;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry(*e);
      bool overridden = false;
      for (const auto& kv : env) overridden |= entry.rfind(kv.first + "=", 0) == 0;
      if (!overridden) envp_storage.push_back(entry);
    }
    for (const auto& kv : env) envp_storage.push_back(kv.first + "=" + kv.second);
    std::vector<char*> envp;
    for (auto& e : envp_storage) envp.push_back(e.data());
    envp.push_back(nullptr);

    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) {
      const int err = errno;
      signal_all(children, SIGKILL);
      for (auto& c : children) ::waitpid(c.pid, nullptr, 0);
      CONVIRT_CHECK(false, "launch: fork for rank ", rank, " failed: ", std::strerror(err));
    }
    if (pid == 0) {
      ::execvpe(cargv[0], cargv.data(), envp.data());
      const char msg[] = "convirt launch: exec failed for the rank's command\n";
      [[maybe_unused]] auto n = ::write(2, msg, sizeof(msg) - 1);
      ::_exit(127);
    }
    children.push_back({pid, rank, true});
  }

  int64_t failed_rank = -1;
  int failed_status = 0;
  while (reap(children, &failed_rank, &failed_status)) {
    if (failed_rank >= 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failed_rank >= 0) {
    std::fprintf(stderr, "convirt launch: rank %lld %s; stopping the other ranks\n",
                 static_cast<long long>(failed_rank), describe_status(failed_status).c_str());
    signal_all(children, SIGTERM);
    const auto deadline =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(o.kill_grace_seconds() * 1000));
    int64_t ignored_rank = -1;
    int ignored_status = 0;
    while (reap(children, &ignored_rank, &ignored_status) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    signal_all(children, SIGKILL);
    for (auto& c : children) {
      if (c.running) ::waitpid(c.pid, nullptr, 0);
    }
    return exit_status(failed_status);
  }
  return 0;
}

int launch_local(int64_t nproc, const std::vector<std::string>& argv) {
  return launch(LaunchOptions().nproc(nproc), argv);
}

}  // namespace convirt::dist
