#include <convirt/core/fault_injection.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>

namespace convirt {

void kill_point_while_writing(const std::string& what) {
  const char* target = std::getenv(kFaultKillWritingEnv);
  if (target == nullptr || *target == '\0') return;
  if (what != target && std::string(target) != "*") return;
  ::kill(::getpid(), SIGKILL);
  // SIGKILL cannot be caught or ignored; the pause only waits for its delivery.
  for (;;) ::pause();
}

}  // namespace convirt
