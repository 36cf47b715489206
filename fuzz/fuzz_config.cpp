// Config files of the command line (src/cli/config_file.h): the text parsers that turn a JSON or
// YAML config into arguments, under their documented size, depth and value-count limits. The first
// byte picks the format and whether the subcommand section is looked for.
#include "config_file.h"

#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace convirt::cli;
  if (size < 1) return 0;
  const ConfigFormat format = (data[0] & 1) ? ConfigFormat::kYaml : ConfigFormat::kJson;
  const std::string subcommand = (data[0] & 2) ? "" : "pretrain";
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  // Every problem must be a std::invalid_argument (the documented contract), so anything else
  // escapes expect_clean's catch only if it is not a std::exception at all.
  convirt::fuzz::expect_clean([&] { config_to_args(text, subcommand, "<fuzz>", format); });
  return 0;
}
