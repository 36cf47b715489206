#include "launch.h"

#include <convirt/dist/launch.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace convirt::cli {
namespace {

struct LaunchArgs {
  dist::LaunchOptions launch;
  std::vector<std::string> launch_command;
};

int run_launch(LaunchArgs& args) {
  const auto& launch = args.launch;
  auto& launch_command = args.launch_command;
  // `convirt launch -- pretrain ...`: a convirt subcommand names this very program.
  static const std::set<std::string> kSubcommands{"synth", "pretrain", "eval", "tsne", "reproduce"};
  if (kSubcommands.count(launch_command.front()) > 0)
    launch_command.insert(launch_command.begin(), fs::read_symlink("/proc/self/exe").string());
  return dist::launch(launch, launch_command);
}

}  // namespace

Subcommand add_launch(CLI::App& app) {
  auto args = std::make_shared<LaunchArgs>();
  auto& launch = args->launch;
  auto& launch_command = args->launch_command;
  auto* c_launch = app.add_subcommand(
      "launch",
      "Start N processes of a command with torchrun's variables (RANK, WORLD_SIZE, "
      "LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and supervise them");
  c_launch->add_option("--nproc", launch.nproc(), "Processes on this machine")
      ->capture_default_str();
  c_launch->add_option("--nnodes", launch.nnodes(), "Machines")->capture_default_str();
  c_launch->add_option("--node-rank", launch.node_rank(), "This machine's index")
      ->capture_default_str();
  c_launch->add_option("--master-addr", launch.master_addr())->capture_default_str();
  c_launch->add_option("--master-port", launch.master_port(), "0: a free port")
      ->capture_default_str();
  c_launch->add_option("command", launch_command, "The command after --")->required();
  return {c_launch, [args] { return run_launch(*args); }};
}

}  // namespace convirt::cli
