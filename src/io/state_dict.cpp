// Module <-> state dict, and the format-sniffing reader.
#include <convirt/core/check.h>
#include <convirt/io/safetensors.h>
#include <convirt/io/state_dict.h>
#include <convirt/io/torch_file.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace convirt::io {
namespace {

std::string join(const std::vector<std::string>& names, size_t limit = 50) {
  std::ostringstream os;
  for (size_t i = 0; i < names.size() && i < limit; ++i) os << (i ? ", " : "") << names[i];
  if (names.size() > limit) os << ", ... (" << names.size() - limit << " more)";
  return os.str();
}

}  // namespace

std::string LoadReport::summary() const {
  std::ostringstream os;
  os << "missing keys (" << missing.size() << "): " << join(missing) << "\n";
  os << "unexpected keys (" << unexpected.size() << "): " << join(unexpected) << "\n";
  if (!skipped.empty()) os << "skipped keys (" << skipped.size() << "): " << join(skipped) << "\n";
  if (!converted.empty())
    os << "converted keys (" << converted.size() << "): " << join(converted) << "\n";
  return os.str();
}

StateDict module_state_dict(const torch::nn::Module& module) {
  StateDict sd;
  for (const auto& p : module.named_parameters(true)) sd.insert(p.key(), p.value().detach());
  for (const auto& b : module.named_buffers(true)) sd.insert(b.key(), b.value().detach());
  return sd;
}

LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict) {
  LoadReport report;
  auto targets = module_state_dict(module);
  std::vector<std::string> mismatched;
  for (const auto& t : targets) {
    const at::Tensor* src = state.find(t.key());
    if (!src) {
      report.missing.push_back(t.key());
    } else if (src->sizes() != t.value().sizes()) {
      mismatched.push_back(t.key() + ": expected " + detail::shape_str(t.value().sizes()) +
                           ", got " + detail::shape_str(src->sizes()));
    }
  }
  for (const auto& s : state)
    if (!targets.contains(s.key())) report.unexpected.push_back(s.key());
  CONVIRT_CHECK_VALUE(mismatched.empty(), "shape mismatch for ", mismatched.size(),
                      " key(s): ", join(mismatched));
  CONVIRT_CHECK_VALUE(!strict || report.complete(),
                      "state dict does not match the module (strict):\n", report.summary());
  at::NoGradGuard no_grad;
  for (auto& t : targets) {
    if (const at::Tensor* src = state.find(t.key())) t.value().copy_(*src);
  }
  return report;
}

StateDict read_state_dict(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  CONVIRT_CHECK_VALUE(in.good(), "cannot open weight file '", path, "' for reading");
  char magic[4] = {0, 0, 0, 0};
  in.read(magic, 4);
  if (in.gcount() == 4 && std::memcmp(magic, "PK\x03\x04", 4) == 0)
    return read_torch_state_dict(path);
  return read_safetensors(path).tensors;
}

}  // namespace convirt::io
