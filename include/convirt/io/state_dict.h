#pragma once
// A state dict is what PyTorch's Module.state_dict() holds: parameter and buffer names mapped to
// tensors, in registration order. Every weight format convirt reads or writes goes through this one
// type, and every load into a module goes through load_state_dict(), so missing, unexpected and
// mismatched keys are reported the same way for torchvision files, Hugging Face folders and convirt
// checkpoints.

#include <torch/nn/module.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <string>
#include <vector>

namespace convirt::io {

/// Names -> tensors, in order (the LibTorch twin of a Python state_dict).
using StateDict = torch::OrderedDict<std::string, torch::Tensor>;

/// What a load did, key by key.
struct LoadReport {
  std::vector<std::string> missing;     ///< in the module, not in the file
  std::vector<std::string> unexpected;  ///< in the file, not in the module
  std::vector<std::string> skipped;  ///< in the file, ignored on purpose (e.g. pretraining heads)
  std::vector<std::string>
      converted;  ///< loaded after a documented conversion (e.g. RGB -> 1 channel)
  /// True when nothing is missing or unexpected.
  bool complete() const { return missing.empty() && unexpected.empty(); }
  /// One line per category, for logs and error messages.
  std::string summary() const;
};

/// Parameters and buffers of `module` (recursively), detached, with the names
/// Module::named_parameters gives ("layer1.0.conv1.weight").
///
/// Example:
///   auto sd = convirt::io::module_state_dict(*resnet);
StateDict module_state_dict(const torch::nn::Module& module);

/// Copies `state` into `module`'s parameters and buffers without recording autograd history. Shapes
/// must match exactly (a ValueError lists every mismatched key with both shapes); dtypes are
/// converted. When `strict`, missing or unexpected keys are a ValueError listing them by name;
/// otherwise they are reported.
///
/// Example:
///   auto report = convirt::io::load_state_dict(*model, sd, /*strict=*/false);
///   std::cout << report.summary();
LoadReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict = true);

/// Reads a weight file in any format convirt knows, chosen by content (not by extension):
/// safetensors, or the zip format of Python's torch.save (state_dict saved with torch.save,
/// pytorch_model.bin).
StateDict read_state_dict(const std::string& path);

}  // namespace convirt::io
